#!/usr/bin/env python3
"""Writes the hand-built ONNX fixtures of workloads/fixtures/onnx/ (run once by a developer,
not in CI): python3 tools/onnx-fixtures/make.py workloads/fixtures/onnx

Needs the `onnx` and `numpy` packages from PyPI (tested with onnx 1.23.2, numpy 2.4). Every
tensor comes from a seeded numpy generator, so the files are the same on every run.

Beside each float model it writes NAME.in.npy (a seeded input, NCHW) and NAME.out.npy (the
output of the `onnx` package's own reference evaluator, onnx.reference.ReferenceEvaluator,
on it): the importer's tests compare cramulator's float executor with them. The evaluator's
LRN (onnx 1.23.2, onnx/reference/ops/op_lrn.py) loops over the batch axis where the
specification sums over channels, so with batch 1 only channel 0 is normalized; LRN is
evaluated here by the specification instead (`SpecLRN`).

- tiny_cnn_float.onnx: a small float CNN with real (seeded) weights: Conv+bias,
  BatchNormalization, Relu, MaxPool, Conv, Relu, GlobalAveragePool, Flatten, Gemm.
- tiny_cnn_qdq.onnx: the same network, BatchNorm folded, in QDQ form: int8 weights per
  output channel, uint8 activations, QuantizeLinear/DequantizeLinear around every layer.
- tiny_graph_ops.onnx: the graph plumbing of real exports on a small network with real
  weights: an input normalization (Sub, Div), an NHWC input transposed at once, Pad before
  a Conv, a pre-activation BatchNorm after a Concat unfolded into Mul/Add by unsqueezed
  constants (as the Caffe2 exports of the ONNX model zoo), a three-input Sum, ReduceMean
  over H and W, and a torch-style flatten (Shape, Gather, Unsqueeze, Concat, Reshape)
  before the Gemm.
- tiny_shuffle.onnx: the channel plumbing of ShuffleNet-style exports: a channel shuffle
  (Reshape to [1, g, C/g, H, W], Transpose, Reshape back), Split on channels, AveragePool
  leaving its padding out of the divisor (count_include_pad = 0), Slice and Gather of
  channels.
- tiny_lrn.onnx: local response normalization (LRN, odd and even windows) between
  convolutions, as AlexNet and GoogLeNet have it.
- tiny_activations.onnx: the activations and gates of mobile networks on a small network
  with real weights: HardSwish, a squeeze-and-excitation gate (GlobalAveragePool, 1×1
  convolutions, HardSigmoid, Mul of two activations) as in MobileNetV3, SiLU as Sigmoid and
  Mul as in EfficientNet, the older exports' hard-swish x·Clip(x + 3, 0, 6)/6, a general
  Clip, Tanh, LeakyRelu, Elu, Mish as x·Tanh(Softplus(x)) and a PRelu with one slope.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common import finish


def rng(seed):
    return np.random.RandomState(seed)


def he(r, *shape):
    fan_in = int(np.prod(shape[1:]))
    return (r.randn(*shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def tiny_weights():
    r = rng(7)
    return {
        "c1_w": he(r, 8, 3, 3, 3),
        "c1_b": (r.uniform(-0.1, 0.1, 8)).astype(np.float32),
        "bn_g": r.uniform(0.8, 1.2, 8).astype(np.float32),
        "bn_b": r.uniform(-0.1, 0.1, 8).astype(np.float32),
        "bn_m": r.uniform(-0.1, 0.1, 8).astype(np.float32),
        "bn_v": r.uniform(0.8, 1.2, 8).astype(np.float32),
        "c2_w": he(r, 16, 8, 3, 3),
        "fc_w": he(r, 10, 16),
        "fc_b": r.uniform(-0.1, 0.1, 10).astype(np.float32),
    }


def model(name, nodes, inits, inp, out_dims):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, inp)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return finish(graph, "cramulator tools/onnx-fixtures")


def tiny_float():
    w = tiny_weights()
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c1", "bn_g", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn1",
          epsilon=1e-5),
        n("Relu", ["bn"], ["r1"], name="relu1"),
        n("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "c2_w"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"], name="relu2"),
        n("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return model("tiny_cnn_float", nodes, w, [1, 3, 16, 16], [1, 10])


def q8(w, axis=0):
    """Symmetric int8 per-channel codes and scales of `w` along `axis`."""
    red = tuple(i for i in range(w.ndim) if i != axis)
    scale = np.abs(w).max(axis=red) / 127.0
    shape = [1] * w.ndim
    shape[axis] = -1
    codes = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return codes, scale.astype(np.float32)


def tiny_qdq():
    w = tiny_weights()
    k = w["bn_g"] / np.sqrt(w["bn_v"] + 1e-5)
    c1_w = w["c1_w"] * k[:, None, None, None]
    c1_b = (w["c1_b"] - w["bn_m"]) * k + w["bn_b"]
    inits = {}
    nodes = []
    n = helper.make_node

    def qdq(x, scale, zp_u8, out):
        inits[f"{out}_s"] = np.array(scale, dtype=np.float32)
        inits[f"{out}_z"] = np.array(zp_u8, dtype=np.uint8)
        nodes.append(n("QuantizeLinear", [x, f"{out}_s", f"{out}_z"], [f"{out}_q"]))
        nodes.append(n("DequantizeLinear", [f"{out}_q", f"{out}_s", f"{out}_z"], [out]))

    def weight(name, value, axis):
        codes, scale = q8(value, axis)
        inits[f"{name}_q"] = codes
        inits[f"{name}_s"] = scale
        inits[f"{name}_z"] = np.zeros_like(scale, dtype=np.int8)
        nodes.append(n("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name],
                       axis=axis))

    qdq("x", 1.0 / 255, 0, "xd")
    weight("c1_w", c1_w, 0)
    inits["c1_b"] = c1_b.astype(np.float32)
    nodes.append(n("Conv", ["xd", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]))
    nodes.append(n("Relu", ["c1"], ["r1"], name="relu1"))
    qdq("r1", 4.0 / 255, 0, "r1d")
    nodes.append(n("MaxPool", ["r1d"], ["p1"], name="pool1", kernel_shape=[2, 2],
                   strides=[2, 2]))
    weight("c2_w", w["c2_w"], 0)
    nodes.append(n("Conv", ["p1", "c2_w"], ["c2"], name="conv2", pads=[1, 1, 1, 1]))
    nodes.append(n("Relu", ["c2"], ["r2"], name="relu2"))
    qdq("r2", 8.0 / 255, 0, "r2d")
    nodes.append(n("GlobalAveragePool", ["r2d"], ["g"], name="gap"))
    qdq("g", 4.0 / 255, 0, "gd")
    nodes.append(n("Flatten", ["gd"], ["f"], name="flatten"))
    weight("fc_w", w["fc_w"], 0)
    inits["fc_b"] = w["fc_b"]
    nodes.append(n("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1))
    return model("tiny_cnn_qdq", nodes, inits, [1, 3, 16, 16], [1, 10])


def tiny_graph_ops():
    r = rng(11)
    n = helper.make_node
    inits = {
        "mean": np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1),
        "std": np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1),
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "c1_w": he(r, 6, 3, 3, 3),
        "c1_b": r.uniform(-0.1, 0.1, 6).astype(np.float32),
        "c2_w": he(r, 6, 3, 1, 1),
        "bn_g": r.uniform(0.8, 1.2, 12).astype(np.float32),
        "bn_b": r.uniform(-0.1, 0.1, 12).astype(np.float32),
        "bn_m": r.uniform(-0.1, 0.1, 12).astype(np.float32),
        "bn_v": r.uniform(0.8, 1.2, 12).astype(np.float32),
        "sc_w": r.uniform(0.5, 1.5, 12).astype(np.float32),
        "sc_b": r.uniform(-0.2, 0.2, 12).astype(np.float32),
        "c3_w": he(r, 8, 12, 3, 3),
        "zero": np.array(0, np.int64),
        "minus1": np.array([-1], np.int64),
        "fc_w": he(r, 5, 8),
        "fc_b": r.uniform(-0.1, 0.1, 5).astype(np.float32),
        "axes0": np.array([0], np.int64),
        "axes12": np.array([1, 2], np.int64),
    }
    nodes = [
        n("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2]),
        n("Sub", ["xt", "mean"], ["x1"], name="sub_mean"),
        n("Div", ["x1", "std"], ["x2"], name="div_std"),
        n("Pad", ["x2", "pads"], ["xp"], name="pad"),
        n("Conv", ["xp", "c1_w", "c1_b"], ["c1"], name="conv1"),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("Conv", ["x2", "c2_w"], ["c2"], name="conv2"),
        n("Concat", ["r1", "c2"], ["cat"], name="concat", axis=1),
        n("BatchNormalization", ["cat", "bn_g", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn",
          epsilon=1e-5),
        n("Unsqueeze", ["sc_w", "axes12"], ["sc_w1"], name="unsq_w"),
        n("Mul", ["bn", "sc_w1"], ["bns"], name="scale"),
        n("Unsqueeze", ["sc_b", "axes12"], ["sc_b1"], name="unsq_b"),
        n("Add", ["bns", "sc_b1"], ["bnb"], name="shift"),
        n("Relu", ["bnb"], ["r2"], name="relu2"),
        n("Conv", ["r2", "c3_w"], ["c3"], name="conv3", pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Relu", ["c3"], ["r3"], name="relu3"),
        n("Sum", ["r3", "c3", "r3"], ["s"], name="sum3"),
        n("ReduceMean", ["s"], ["g"], name="mean_hw", axes=[2, 3], keepdims=1),
        n("Shape", ["g"], ["gs"], name="shape"),
        n("Gather", ["gs", "zero"], ["b"], name="batch", axis=0),
        n("Unsqueeze", ["b", "axes0"], ["b1"], name="unsq_batch"),
        n("Concat", ["b1", "minus1"], ["target"], name="target", axis=0),
        n("Reshape", ["g", "target"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return model("tiny_graph_ops", nodes, inits, [1, 12, 12, 3], [1, 5])


def tiny_shuffle():
    r = rng(13)
    n = helper.make_node
    inits = {
        "c1_w": he(r, 8, 3, 3, 3),
        "c1_b": r.uniform(-0.1, 0.1, 8).astype(np.float32),
        "to5": np.array([1, 2, 4, 16, 16], np.int64),
        "to4": np.array([1, -1, 16, 16], np.int64),
        "split_sizes": np.array([4, 4], np.int64),
        "c2_w": he(r, 4, 4, 1, 1),
        "s_start": np.array([1], np.int64),
        "s_end": np.array([7], np.int64),
        "s_axes": np.array([1], np.int64),
        "zero": np.array(0, np.int64),
        "axes1": np.array([1], np.int64),
        "fc_w": he(r, 4, 7),
        "fc_b": r.uniform(-0.1, 0.1, 4).astype(np.float32),
    }
    nodes = [
        n("Conv", ["x", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("Reshape", ["r1", "to5"], ["g"], name="groups"),
        n("Transpose", ["g"], ["gt"], name="shuffle", perm=[0, 2, 1, 3, 4]),
        n("Reshape", ["gt", "to4"], ["sh"], name="ungroup"),
        n("Split", ["sh", "split_sizes"], ["a", "b"], name="split", axis=1),
        n("Conv", ["a", "c2_w"], ["ca"], name="conv2"),
        n("AveragePool", ["b"], ["pb"], name="avg_excl", kernel_shape=[3, 3],
          pads=[1, 1, 1, 1], count_include_pad=0),
        n("Concat", ["ca", "pb"], ["cat"], name="concat", axis=1),
        n("Slice", ["cat", "s_start", "s_end", "s_axes"], ["sl"], name="slice"),
        n("Gather", ["cat", "zero"], ["g0"], name="first", axis=1),
        n("Unsqueeze", ["g0", "axes1"], ["g1"], name="unsq"),
        n("Concat", ["g1", "sl"], ["cat2"], name="concat2", axis=1),
        n("AveragePool", ["cat2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        n("GlobalAveragePool", ["p2"], ["gap"], name="gap"),
        n("Flatten", ["gap"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return model("tiny_shuffle", nodes, inits, [1, 3, 16, 16], [1, 4])


def tiny_lrn():
    r = rng(17)
    n = helper.make_node
    inits = {
        "c1_w": he(r, 8, 3, 3, 3),
        "c2_w": he(r, 6, 8, 3, 3),
        "fc_w": he(r, 3, 6),
    }
    nodes = [
        n("Conv", ["x", "c1_w"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("LRN", ["r1"], ["l1"], name="norm1", size=5, alpha=0.5, beta=0.75, bias=1.0),
        n("MaxPool", ["l1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2],
          ceil_mode=1),
        n("Conv", ["p1", "c2_w"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        n("Relu", ["c2"], ["r2"], name="relu2"),
        n("LRN", ["r2"], ["l2"], name="norm2", size=4, alpha=0.2, beta=0.5, bias=2.0),
        n("GlobalAveragePool", ["l2"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w"], ["y"], name="fc", transB=1),
    ]
    return model("tiny_lrn", nodes, inits, [1, 3, 15, 15], [1, 3])


def tiny_activations():
    r = rng(19)
    n = helper.make_node
    inits = {
        "c1_w": he(r, 8, 3, 3, 3),
        "c1_b": r.uniform(-0.1, 0.1, 8).astype(np.float32),
        "dw_w": he(r, 8, 1, 3, 3),
        "se1_w": he(r, 4, 8, 1, 1),
        "se1_b": r.uniform(-0.1, 0.1, 4).astype(np.float32),
        "se2_w": he(r, 8, 4, 1, 1),
        "se2_b": r.uniform(-0.1, 0.1, 8).astype(np.float32),
        "c2_w": he(r, 8, 8, 1, 1),
        "three": np.array(3.0, np.float32),
        "zero": np.array(0.0, np.float32),
        "six": np.array(6.0, np.float32),
        "lo": np.array(-1.0, np.float32),
        "hi": np.array(1.5, np.float32),
        "slope": np.array([0.2], np.float32),
        "c3_w": he(r, 6, 8, 3, 3),
        "fc_w": he(r, 4, 12),
        "fc_b": r.uniform(-0.1, 0.1, 4).astype(np.float32),
    }
    nodes = [
        n("Conv", ["x", "c1_w", "c1_b"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        n("HardSwish", ["c1"], ["h1"], name="hswish1"),
        n("Conv", ["h1", "dw_w"], ["dw"], name="dwconv", pads=[1, 1, 1, 1], group=8),
        # Squeeze and excitation (MobileNetV3).
        n("GlobalAveragePool", ["dw"], ["se_g"], name="se_pool"),
        n("Conv", ["se_g", "se1_w", "se1_b"], ["se1"], name="se_fc1"),
        n("Relu", ["se1"], ["se1r"], name="se_relu"),
        n("Conv", ["se1r", "se2_w", "se2_b"], ["se2"], name="se_fc2"),
        n("HardSigmoid", ["se2"], ["se_s"], name="se_gate", alpha=1.0 / 6.0, beta=0.5),
        n("Mul", ["dw", "se_s"], ["se"], name="se_scale"),
        # SiLU (EfficientNet): x · σ(x).
        n("Conv", ["se", "c2_w"], ["c2"], name="conv2"),
        n("Sigmoid", ["c2"], ["c2s"], name="silu_sigmoid"),
        n("Mul", ["c2s", "c2"], ["silu"], name="silu_mul"),
        # The older exports' hard-swish: x · Clip(x + 3, 0, 6) / 6.
        n("Add", ["silu", "three"], ["hs_a"], name="hs_add"),
        n("Clip", ["hs_a", "zero", "six"], ["hs_c"], name="hs_clip"),
        n("Div", ["hs_c", "six"], ["hs_d"], name="hs_div"),
        n("Mul", ["silu", "hs_d"], ["hs"], name="hs_mul"),
        n("Clip", ["hs", "lo", "hi"], ["cl"], name="clip"),
        n("Conv", ["cl", "c3_w"], ["c3"], name="conv3", pads=[1, 1, 1, 1]),
        n("Split", ["c3"], ["s0", "s1", "s2"], name="split", axis=1),
        n("Tanh", ["s0"], ["t0"], name="tanh"),
        n("LeakyRelu", ["s1"], ["t1"], name="leaky", alpha=0.1),
        n("Elu", ["s2"], ["t2"], name="elu", alpha=0.7),
        # Mish as exports write it before opset 18: x · tanh(softplus(x)).
        n("Softplus", ["c3"], ["sp"], name="softplus"),
        n("Tanh", ["sp"], ["spt"], name="mish_tanh"),
        n("Mul", ["c3", "spt"], ["mi"], name="mish"),
        n("PRelu", ["mi", "slope"], ["pr"], name="prelu"),
        n("Concat", ["t0", "t1", "t2", "pr"], ["cat"], name="concat", axis=1),
        n("GlobalAveragePool", ["cat"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return model("tiny_activations", nodes, inits, [1, 3, 16, 16], [1, 4])


def spec_lrn():
    """LRN as the ONNX operator specification defines it (the reference evaluator's own
    implementation loops over the batch axis instead of the channels)."""
    from onnx.reference.op_run import OpRun

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):
            c = x.shape[1]
            lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
            square_sum = np.zeros_like(x)
            for k in range(c):
                square_sum[:, k] = (x[:, max(0, k - lo):min(c - 1, k + hi) + 1] ** 2).sum(1)
            return ((x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype),)

    return LRN


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "workloads/fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    from onnx.reference import ReferenceEvaluator

    for name, build, reference in [
        ("tiny_cnn_float", tiny_float, True),
        ("tiny_cnn_qdq", tiny_qdq, False),
        ("tiny_graph_ops", tiny_graph_ops, True),
        ("tiny_shuffle", tiny_shuffle, True),
        ("tiny_lrn", tiny_lrn, True),
        ("tiny_activations", tiny_activations, True),
    ]:
        m = build()
        path = os.path.join(out, f"{name}.onnx")
        onnx.save(m, path)
        print(f"{path}: {os.path.getsize(path)} bytes")
        if not reference:
            continue
        dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
        nhwc = dims[-1] == 3 and dims[1] != 3
        nchw = [dims[0], dims[3], dims[1], dims[2]] if nhwc else dims
        x = rng(99).rand(*nchw).astype(np.float32)
        feed = x.transpose(0, 2, 3, 1) if nhwc else x
        evaluator = ReferenceEvaluator(m, new_ops=[spec_lrn()])
        (y,) = evaluator.run(None, {"x": np.ascontiguousarray(feed)})
        np.save(os.path.join(out, f"{name}.in.npy"), x)
        np.save(os.path.join(out, f"{name}.out.npy"), y.astype(np.float32))


if __name__ == "__main__":
    main()
