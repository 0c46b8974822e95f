#!/usr/bin/env python3
"""Writes the transformer fixtures of workloads/fixtures/onnx/ (run once by a developer, not
in CI): python3 tools/onnx-fixtures/transformers.py workloads/fixtures/onnx

Needs the `onnx` and `numpy` packages from PyPI (tested with onnx 1.23.2, numpy 2.4). The
graphs are written node by node (opset 20, for the Gelu op) with attention in the form with
separate query, key and value projections, not exported from a framework: each head split
by Reshape [1, S, H, d] and Transpose
([0, 2, 1, 3] for queries and values, [0, 2, 3, 1] for keys), the scores by MatMul and Div
by sqrt(d), an additive causal mask (0 on and below the diagonal, -1e9 above) for the
decoder, Softmax over the last axis, the context by MatMul, Transpose and Reshape back to
[1, S, F]. The input is the embedded sequence [1, S, F] (token and position tables are not
part of these graphs).

- tiny_encoder.onnx: one BERT layer (post-norm: attention, residual, LayerNormalization,
  a GELU feed-forward block, residual, LayerNormalization; S 6, F 16, 2 heads, FFN 32),
  the mean over the tokens (ReduceMean) and a 4-way classifier; seeded weights.
- tiny_decoder.onnx: one GPT-2 layer (pre-norm, causal mask, a final LayerNormalization,
  its GELU written with Erf as torch.onnx.export writes it before opset 20), the same sizes
  and head; seeded weights.
- struct_bert_base.onnx: BERT-base's encoder (12 post-norm layers, F 768, 12 heads, FFN
  3072, epsilon 1e-12) over a 128-token embedded sequence, its output the last layer's
  [1, 128, 768]. Every weight is a placeholder (ConstantOfShape, as the ONNX project's
  structure-only models), so the file is a few tens of kilobytes; its 85,054,464
  parameters are BERT-base's 109,482,240 less the token, position and segment tables and
  their LayerNorm (23,837,184) and the pooler (590,592).

The importer's tests compare cramulator's float executor with tract on all three
(workloads/tests/tract_reference.rs) and pin the structure-only model's totals.
"""

import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common import finish

OPSET = 20


class Graph:
    """Nodes and initializers of one model; weights seeded or placeholders."""

    def __init__(self, seed, placeholder):
        self.nodes, self.inits = [], []
        self.r = np.random.RandomState(seed)
        self.placeholder = placeholder

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def weight(self, name, *shape, scale=None):
        """A weight: seeded N(0, scale²), or a ConstantOfShape placeholder."""
        if self.placeholder:
            dims = name + "__SHAPE"
            self.const(dims, np.array(shape, dtype=np.int64))
            self.nodes.append(
                helper.make_node(
                    "ConstantOfShape",
                    [dims],
                    [name],
                    value=helper.make_tensor("", TensorProto.FLOAT, [1], [0.02]),
                )
            )
            return name
        return self.const(name, (self.r.randn(*shape) * scale).astype(np.float32))

    def node(self, op, inputs, out, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def dense(g, x, p, n_in, n_out):
    """x·W + b over the last axis (MatMul, then Add of the bias)."""
    w = g.weight(p + ".w", n_in, n_out, scale=1 / math.sqrt(n_in))
    b = g.weight(p + ".b", n_out, scale=0.1)
    return g.node("Add", [g.node("MatMul", [x, w], p + ".mm"), b], p)


def layer_norm(g, x, p, f, eps):
    if g.placeholder:
        gamma = g.weight(p + ".g", f)
    else:
        gamma = g.const(p + ".g", (1 + 0.1 * g.r.randn(f)).astype(np.float32))
    beta = g.weight(p + ".b", f, scale=0.1)
    return g.node("LayerNormalization", [x, gamma, beta], p, axis=-1, epsilon=eps)


def attention(g, x, p, s, f, heads, causal):
    """Multi-head self-attention of x [1, S, F] with separate Q, K and V projections."""
    d = f // heads
    split = g.const(p + ".split", np.array([1, s, heads, d], dtype=np.int64))
    merge = g.const(p + ".merge", np.array([1, s, f], dtype=np.int64))

    def head(name, perm):
        y = dense(g, x, f"{p}.{name}", f, f)
        y = g.node("Reshape", [y, split], f"{p}.{name}.heads")
        return g.node("Transpose", [y], f"{p}.{name}.t", perm=perm)

    q = head("q", [0, 2, 1, 3])
    k = head("k", [0, 2, 3, 1])
    v = head("v", [0, 2, 1, 3])
    sc = g.node("MatMul", [q, k], p + ".scores")
    root = g.const(p + ".sqrt_d", np.array(math.sqrt(d), dtype=np.float32))
    sc = g.node("Div", [sc, root], p + ".scaled")
    if causal:
        mask = np.triu(np.full((s, s), -1e9, dtype=np.float32), k=1)
        sc = g.node("Add", [sc, g.const(p + ".mask", mask)], p + ".masked")
    pr = g.node("Softmax", [sc], p + ".probs", axis=-1)
    c = g.node("MatMul", [pr, v], p + ".context")
    c = g.node("Transpose", [c], p + ".context.t", perm=[0, 2, 1, 3])
    c = g.node("Reshape", [c, merge], p + ".context.seq")
    return dense(g, c, p + ".out", f, f)


def ffn(g, x, p, f, hidden, erf=False):
    """The feed-forward block; its GELU the Gelu op, or (`erf`) x·0.5·(1 + Erf(x/√2)) as
    torch.onnx.export writes it before opset 20."""
    u = dense(g, x, p + ".up", f, hidden)
    if erf:
        root2 = g.const(p + ".sqrt2", np.array(math.sqrt(2), dtype=np.float32))
        one = g.const(p + ".one", np.array(1, dtype=np.float32))
        half = g.const(p + ".half", np.array(0.5, dtype=np.float32))
        e = g.node("Erf", [g.node("Div", [u, root2], p + ".div")], p + ".erf")
        e = g.node("Add", [e, one], p + ".erf1")
        h = g.node("Mul", [g.node("Mul", [u, e], p + ".xerf"), half], p + ".gelu")
    else:
        h = g.node("Gelu", [u], p + ".gelu")
    return dense(g, h, p + ".down", hidden, f)


def bert_layer(g, x, p, s, f, heads, hidden, eps):
    a = g.node("Add", [attention(g, x, p + ".attn", s, f, heads, False), x], p + ".res1")
    a = layer_norm(g, a, p + ".ln1", f, eps)
    y = g.node("Add", [ffn(g, a, p + ".ffn", f, hidden), a], p + ".res2")
    return layer_norm(g, y, p + ".ln2", f, eps)


def gpt_layer(g, x, p, s, f, heads, hidden, eps):
    h = layer_norm(g, x, p + ".ln1", f, eps)
    x = g.node("Add", [x, attention(g, h, p + ".attn", s, f, heads, True)], p + ".res1")
    h = layer_norm(g, x, p + ".ln2", f, eps)
    return g.node("Add", [x, ffn(g, h, p + ".ffn", f, hidden, erf=True)], p + ".res2")


def classify(g, x, f, classes):
    axes = g.const("pool.axes", np.array([1], dtype=np.int64))
    m = g.node("ReduceMean", [x, axes], "pool", keepdims=0)
    return dense(g, m, "cls", f, classes)


def model(name, g, inp, out, out_dims):
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, inp)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_dims)],
        g.inits,
    )
    return finish(graph, "cramulator tools/onnx-fixtures", OPSET)


def tiny(name, layer, final_norm, seed):
    s, f, heads, hidden, classes = 6, 16, 2, 32, 4
    g = Graph(seed, placeholder=False)
    x = layer(g, "x", "l0", s, f, heads, hidden, 1e-5)
    if final_norm:
        x = layer_norm(g, x, "ln_f", f, 1e-5)
    return model(name, g, [1, s, f], classify(g, x, f, classes), [1, classes])


def struct_bert_base():
    s, f, heads, hidden = 128, 768, 12, 3072
    g = Graph(0, placeholder=True)
    x = "x"
    for i in range(12):
        x = bert_layer(g, x, f"layer{i}", s, f, heads, hidden, 1e-12)
    return model("struct_bert_base", g, [1, s, f], x, [1, s, f])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "workloads/fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    for name, m in [
        ("tiny_encoder", tiny("tiny_encoder", bert_layer, False, 11)),
        ("tiny_decoder", tiny("tiny_decoder", gpt_layer, True, 12)),
        ("struct_bert_base", struct_bert_base()),
    ]:
        path = os.path.join(out, f"{name}.onnx")
        onnx.save(m, path)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
