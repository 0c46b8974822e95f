#!/usr/bin/env python3
"""Writes structure-only ONNX graphs of torchvision's ImageNet classifiers into
workloads/fixtures/onnx/ (run once by a developer, not in CI):

    python3 tools/onnx-fixtures/torchvision.py workloads/fixtures/onnx

Needs only the `onnx` package from PyPI (tested with onnx 1.23.2). The PyTorch wheels are
too heavy for the machines this project is built on, so the graphs are not exported by
torch.onnx; they are written node by node with the `onnx` package's helpers from the
published architectures, as `torch.onnx.export` (opset 17, eval mode, no constant folding)
writes them: Conv without bias followed by BatchNormalization where the model has a
BatchNorm, Relu/Clip(0, 6)/HardSwish/HardSigmoid/Sigmoid·Mul (SiLU) activations,
GlobalAveragePool for adaptive average pooling to 1×1, AveragePool of kernel 1 for an
adaptive pooling that keeps the size (VGG, AlexNet), Flatten and Gemm for the classifier,
Reshape/Transpose/Reshape channel shuffles and Split chunks (ShuffleNetV2), ReduceMean
(ShuffleNetV2's global pool), and the input transform of GoogLeNet and Inception-v3 as
torchvision's `_transform_input` exports it (Gather, Unsqueeze, Mul, Add, Concat). Dropout
is an identity in eval mode and is left out; so are the auxiliary classifiers, which eval
mode does not run.

Every weight is a placeholder: a ConstantOfShape node of the tensor's shape (as the ONNX
project's structure-only "light" models), so the files stay a few tens of kilobytes.
cramulator runs them with seeded synthetic weights and says so. The architectures follow
torchvision's model definitions (pytorch/vision, torchvision/models/*.py); the published
totals the tests pin are in workloads/fixtures/onnx/README.md.
"""

import math
import os
import sys

import onnx
from onnx import TensorProto, helper

from common import finish


class Graph:
    """An ONNX graph under construction, with each activation's C×H×W."""

    def __init__(self, name, c, h, w):
        self.name = name
        self.nodes = []
        self.inits = []
        self.shape = {"x": (c, h, w)}
        self.count = {}

    def uid(self, base):
        k = self.count.get(base, 0)
        self.count[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def weight(self, name, dims):
        """A placeholder weight: ConstantOfShape of `dims`."""
        shape = name + "__SHAPE"
        self.inits.append(helper.make_tensor(shape, TensorProto.INT64, [len(dims)], dims))
        self.nodes.append(
            helper.make_node(
                "ConstantOfShape",
                [shape],
                [name],
                value=helper.make_tensor("", TensorProto.FLOAT, [1], [0.02]),
            )
        )
        return name

    def const(self, name, dims, vals, dtype=TensorProto.INT64):
        self.inits.append(helper.make_tensor(name, dtype, dims, vals))
        return name

    def node(self, op, inputs, name, shape, **attrs):
        name = self.uid(name)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self.shape[name] = shape
        return name

    def conv(self, x, cout, k, s=1, p=None, groups=1, bias=False, name="conv"):
        c, h, w = self.shape[x]
        kh, kw = (k, k) if isinstance(k, int) else k
        if p is None:
            p = (kh // 2, kw // 2)
        ph, pw = (p, p) if isinstance(p, int) else p
        name = self.uid(name)
        ins = [x, self.weight(name + ".weight", [cout, c // groups, kh, kw])]
        if bias:
            ins.append(self.weight(name + ".bias", [cout]))
        oh = (h + 2 * ph - kh) // s + 1
        ow = (w + 2 * pw - kw) // s + 1
        self.nodes.append(
            helper.make_node(
                "Conv",
                ins,
                [name],
                name=name,
                kernel_shape=[kh, kw],
                strides=[s, s],
                pads=[ph, pw, ph, pw],
                group=groups,
                dilations=[1, 1],
            )
        )
        self.shape[name] = (cout, oh, ow)
        return name

    def bn(self, x, eps=1e-5, name="bn"):
        c = self.shape[x][0]
        name = self.uid(name)
        ins = [x] + [self.weight(f"{name}.{r}", [c]) for r in ("weight", "bias", "mean", "var")]
        self.nodes.append(
            helper.make_node("BatchNormalization", ins, [name], name=name, epsilon=eps)
        )
        self.shape[name] = self.shape[x]
        return name

    def act(self, x, kind, name=None):
        if kind is None:
            return x
        s = self.shape[x]
        if kind == "relu":
            return self.node("Relu", [x], name or "relu", s)
        if kind == "relu6":
            lo = self.const(self.uid("zero"), [], [0.0], TensorProto.FLOAT)
            hi = self.const(self.uid("six"), [], [6.0], TensorProto.FLOAT)
            return self.node("Clip", [x, lo, hi], name or "relu6", s)
        if kind == "hardswish":
            return self.node("HardSwish", [x], name or "hardswish", s)
        if kind == "hardsigmoid":
            return self.node("HardSigmoid", [x], name or "hardsigmoid", s, alpha=1.0 / 6.0)
        if kind == "sigmoid":
            return self.node("Sigmoid", [x], name or "sigmoid", s)
        if kind == "silu":
            sig = self.node("Sigmoid", [x], (name or "silu") + ".sigmoid", s)
            return self.node("Mul", [x, sig], name or "silu", s)
        raise ValueError(kind)

    def conv_bn(self, x, cout, k, s=1, p=None, groups=1, act="relu", eps=1e-5, name="conv"):
        y = self.conv(x, cout, k, s, p, groups, name=name)
        y = self.bn(y, eps, name=name + ".bn")
        return self.act(y, act, name=name + "." + act if act else None)

    def pool(self, x, kind, k, s, p=0, ceil=False, count_pad=True, name="pool"):
        c, h, w = self.shape[x]

        def out(n):
            span = n + 2 * p - k
            o = (-(-span // s) if ceil else span // s) + 1
            if ceil and (o - 1) * s >= n + p:
                o -= 1
            return o

        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=int(ceil))
        if kind == "AveragePool":
            attrs["count_include_pad"] = int(count_pad)
        return self.node(kind, [x], name, (c, out(h), out(w)), **attrs)

    def gap(self, x, name="avgpool"):
        return self.node("GlobalAveragePool", [x], name, (self.shape[x][0], 1, 1))

    def add(self, a, b, name="add"):
        return self.node("Add", [a, b], name, self.shape[a])

    def mul(self, a, b, name="mul"):
        # Either factor may be the per-channel one (C×1×1); the product has the other's shape.
        full = max(self.shape[a], self.shape[b], key=lambda s: s[1] * s[2])
        return self.node("Mul", [a, b], name, full)

    def concat(self, xs, name="cat"):
        c = sum(self.shape[x][0] for x in xs)
        _, h, w = self.shape[xs[0]]
        return self.node("Concat", xs, name, (c, h, w), axis=1)

    def flatten(self, x, name="flatten"):
        c, h, w = self.shape[x]
        return self.node("Flatten", [x], name, (c * h * w, 1, 1), axis=1)

    def linear(self, x, n, name="fc"):
        c = self.shape[x][0]
        name = self.uid(name)
        ins = [x, self.weight(name + ".weight", [n, c]), self.weight(name + ".bias", [n])]
        self.nodes.append(helper.make_node("Gemm", ins, [name], name=name, transB=1))
        self.shape[name] = (n, 1, 1)
        return name

    def se(self, x, squeeze, inner="relu", gate="sigmoid", name="se"):
        """Squeeze and excitation: GAP, 1×1 conv (bias), inner activation, 1×1 conv (bias),
        gate, Mul."""
        c = self.shape[x][0]
        s = self.gap(x, name=name + ".avgpool")
        s = self.conv(s, squeeze, 1, bias=True, name=name + ".fc1")
        s = self.act(s, inner, name=name + "." + inner)
        s = self.conv(s, c, 1, bias=True, name=name + ".fc2")
        s = self.act(s, gate, name=name + "." + gate)
        # torchvision's SqueezeExcitation returns `scale * input`: the gate is Mul's first input.
        return self.mul(s, x, name=name + ".scale")

    def model(self, out):
        c, h, w = self.shape["x"]
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, self.shape[out][0]])],
            self.inits,
        )
        return finish(graph, "cramulator tools/onnx-fixtures/torchvision.py")


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's _make_divisible (from the TensorFlow MobileNet code)."""
    min_value = min_value or divisor
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def resnet(name, block, layers):
    g = Graph(name, 3, 224, 224)
    x = g.conv_bn("x", 64, 7, 2, 3, name="conv1")
    x = g.pool(x, "MaxPool", 3, 2, 1, name="maxpool")
    cin = 64
    for stage, (planes, n) in enumerate(zip([64, 128, 256, 512], layers)):
        for i in range(n):
            s = 2 if stage > 0 and i == 0 else 1
            pre = f"layer{stage + 1}.{i}"
            cout = planes * (4 if block == "bottleneck" else 1)
            if block == "basic":
                y = g.conv_bn(x, planes, 3, s, 1, name=pre + ".conv1")
                y = g.conv_bn(y, planes, 3, 1, 1, act=None, name=pre + ".conv2")
            else:
                y = g.conv_bn(x, planes, 1, 1, 0, name=pre + ".conv1")
                y = g.conv_bn(y, planes, 3, s, 1, name=pre + ".conv2")
                y = g.conv_bn(y, cout, 1, 1, 0, act=None, name=pre + ".conv3")
            if s != 1 or cin != cout:
                x = g.conv_bn(x, cout, 1, s, 0, act=None, name=pre + ".downsample")
            x = g.act(g.add(y, x, name=pre + ".add"), "relu", name=pre + ".relu")
            cin = cout
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000))


def mobilenet_v2():
    g = Graph("mobilenet_v2", 3, 224, 224)
    x = g.conv_bn("x", 32, 3, 2, act="relu6", name="features.0")
    cin, k = 32, 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            pre = f"features.{k}"
            hidden = cin * t
            y = x
            if t != 1:
                y = g.conv_bn(y, hidden, 1, act="relu6", name=pre + ".expand")
            y = g.conv_bn(y, hidden, 3, stride, groups=hidden, act="relu6", name=pre + ".dw")
            y = g.conv_bn(y, c, 1, act=None, name=pre + ".project")
            x = g.add(x, y, name=pre + ".add") if stride == 1 and cin == c else y
            cin, k = c, k + 1
    x = g.conv_bn(x, 1280, 1, act="relu6", name="features.18")
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000, name="classifier"))


def mobilenet_v3(name, setting, last_channel):
    g = Graph(name, 3, 224, 224)
    x = g.conv_bn("x", 16, 3, 2, act="hardswish", eps=0.001, name="features.0")
    cin = 16
    for k, (kernel, exp, c, se, act, s) in enumerate(setting, start=1):
        pre = f"features.{k}"
        act = "hardswish" if act == "HS" else "relu"
        y = x
        if exp != cin:
            y = g.conv_bn(y, exp, 1, act=act, eps=0.001, name=pre + ".expand")
        y = g.conv_bn(y, exp, kernel, s, groups=exp, act=act, eps=0.001, name=pre + ".dw")
        if se:
            y = g.se(y, make_divisible(exp // 4, 8), "relu", "hardsigmoid", name=pre + ".se")
        y = g.conv_bn(y, c, 1, act=None, eps=0.001, name=pre + ".project")
        x = g.add(x, y, name=pre + ".add") if s == 1 and cin == c else y
        cin = c
    x = g.conv_bn(x, 6 * cin, 1, act="hardswish", eps=0.001, name="features.last")
    x = g.flatten(g.gap(x))
    x = g.act(g.linear(x, last_channel, name="classifier.0"), "hardswish")
    return g.model(g.linear(x, 1000, name="classifier.3"))


MOBILENET_V3_LARGE = [
    # kernel, expanded, out, SE, activation, stride
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
]

MOBILENET_V3_SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
]


def efficientnet_b0():
    # BatchNorm's default ε (1e-5): torchvision passes eps=1e-3 only for B5–B7 (and the V2s).
    g = Graph("efficientnet_b0", 3, 224, 224)
    x = g.conv_bn("x", 32, 3, 2, act="silu", name="features.0")
    cin, k = 32, 1
    # expand ratio, kernel, stride, out channels, layers
    for t, kernel, s, c, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2),
                               (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4),
                               (6, 3, 1, 320, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            pre = f"features.{k}.{i}"
            hidden = make_divisible(cin * t)
            y = x
            if hidden != cin:
                y = g.conv_bn(y, hidden, 1, act="silu", name=pre + ".expand")
            y = g.conv_bn(y, hidden, kernel, stride, groups=hidden, act="silu",
                          name=pre + ".dw")
            y = g.se(y, max(1, cin // 4), "silu", "sigmoid", name=pre + ".se")
            y = g.conv_bn(y, c, 1, act=None, name=pre + ".project")
            x = g.add(y, x, name=pre + ".add") if stride == 1 and cin == c else y
            cin = c
        k += 1
    x = g.conv_bn(x, 4 * cin, 1, act="silu", name="features.8")
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000, name="classifier"))


def densenet121():
    g = Graph("densenet121", 3, 224, 224)
    x = g.conv_bn("x", 64, 7, 2, 3, name="features.conv0")
    x = g.pool(x, "MaxPool", 3, 2, 1, name="features.pool0")
    growth, c = 32, 64
    for b, n in enumerate([6, 12, 24, 16], start=1):
        feats = [x]
        for i in range(1, n + 1):
            pre = f"features.denseblock{b}.denselayer{i}"
            y = g.concat(feats, name=pre + ".cat") if len(feats) > 1 else feats[0]
            y = g.act(g.bn(y, name=pre + ".norm1"), "relu", name=pre + ".relu1")
            y = g.conv_bn(y, 4 * growth, 1, 1, 0, name=pre + ".conv1")
            y = g.conv(y, growth, 3, 1, 1, name=pre + ".conv2")
            feats.append(y)
        x = g.concat(feats, name=f"features.denseblock{b}.cat")
        c = g.shape[x][0]
        if b < 4:
            pre = f"features.transition{b}"
            x = g.act(g.bn(x, name=pre + ".norm"), "relu", name=pre + ".relu")
            x = g.conv(x, c // 2, 1, 1, 0, name=pre + ".conv")
            x = g.pool(x, "AveragePool", 2, 2, name=pre + ".pool")
    x = g.act(g.bn(x, name="features.norm5"), "relu")
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000, name="classifier"))


def transform_input(g):
    """torchvision's `_transform_input` of GoogLeNet and Inception-v3: channel i becomes
    x_i·(std_i/0.5) + (mean_i − 0.5)/0.5, as export writes it (Gather, Unsqueeze, Mul, Add,
    Concat)."""
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    _, h, w = g.shape["x"]
    axes = g.const("unsqueeze_axes", [1], [1])
    chans = []
    for i in range(3):
        idx = g.const(f"ch{i}", [], [i])
        t = g.node("Gather", ["x", idx], f"transform.gather{i}", (1, h, w), axis=1)
        t = g.node("Unsqueeze", [t, axes], f"transform.unsqueeze{i}", (1, h, w))
        k = g.const(f"transform.scale{i}", [], [std[i] / 0.5], TensorProto.FLOAT)
        b = g.const(f"transform.shift{i}", [], [(mean[i] - 0.5) / 0.5], TensorProto.FLOAT)
        t = g.node("Mul", [t, k], f"transform.mul{i}", (1, h, w))
        chans.append(g.node("Add", [t, b], f"transform.add{i}", (1, h, w)))
    return g.concat(chans, name="transform.cat")


def googlenet():
    g = Graph("googlenet", 3, 224, 224)
    x = transform_input(g)

    def basic(x, c, k, s=1, p=0, name="conv"):
        return g.conv_bn(x, c, k, s, p, eps=0.001, name=name)

    x = basic(x, 64, 7, 2, 3, name="conv1")
    x = g.pool(x, "MaxPool", 3, 2, ceil=True, name="maxpool1")
    x = basic(x, 64, 1, name="conv2")
    x = basic(x, 192, 3, 1, 1, name="conv3")
    x = g.pool(x, "MaxPool", 3, 2, ceil=True, name="maxpool2")

    def inception(x, c1, c3r, c3, c5r, c5, pp, name):
        b1 = basic(x, c1, 1, name=name + ".branch1")
        b2 = basic(basic(x, c3r, 1, name=name + ".branch2.0"), c3, 3, 1, 1,
                   name=name + ".branch2.1")
        # torchvision keeps a 3×3 convolution here (a known difference from the paper's 5×5).
        b3 = basic(basic(x, c5r, 1, name=name + ".branch3.0"), c5, 3, 1, 1,
                   name=name + ".branch3.1")
        b4 = g.pool(x, "MaxPool", 3, 1, 1, ceil=True, name=name + ".branch4.0")
        b4 = basic(b4, pp, 1, name=name + ".branch4.1")
        return g.concat([b1, b2, b3, b4], name=name + ".cat")

    x = inception(x, 64, 96, 128, 16, 32, 32, "inception3a")
    x = inception(x, 128, 128, 192, 32, 96, 64, "inception3b")
    x = g.pool(x, "MaxPool", 3, 2, ceil=True, name="maxpool3")
    x = inception(x, 192, 96, 208, 16, 48, 64, "inception4a")
    x = inception(x, 160, 112, 224, 24, 64, 64, "inception4b")
    x = inception(x, 128, 128, 256, 24, 64, 64, "inception4c")
    x = inception(x, 112, 144, 288, 32, 64, 64, "inception4d")
    x = inception(x, 256, 160, 320, 32, 128, 128, "inception4e")
    x = g.pool(x, "MaxPool", 2, 2, ceil=True, name="maxpool4")
    x = inception(x, 256, 160, 320, 32, 128, 128, "inception5a")
    x = inception(x, 384, 192, 384, 48, 128, 128, "inception5b")
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000))


def inception_v3():
    g = Graph("inception_v3", 3, 299, 299)
    x = transform_input(g)

    def basic(x, c, k, s=1, p=0, name="conv"):
        return g.conv_bn(x, c, k, s, p, eps=0.001, name=name)

    def avg(x, name):
        return g.pool(x, "AveragePool", 3, 1, 1, name=name)

    x = basic(x, 32, 3, 2, name="Conv2d_1a_3x3")
    x = basic(x, 32, 3, name="Conv2d_2a_3x3")
    x = basic(x, 64, 3, 1, 1, name="Conv2d_2b_3x3")
    x = g.pool(x, "MaxPool", 3, 2, name="maxpool1")
    x = basic(x, 80, 1, name="Conv2d_3b_1x1")
    x = basic(x, 192, 3, name="Conv2d_4a_3x3")
    x = g.pool(x, "MaxPool", 3, 2, name="maxpool2")

    def block_a(x, pool, n):
        b1 = basic(x, 64, 1, name=n + ".branch1x1")
        b5 = basic(basic(x, 48, 1, name=n + ".branch5x5_1"), 64, 5, 1, 2, name=n + ".branch5x5_2")
        b3 = basic(x, 64, 1, name=n + ".branch3x3dbl_1")
        b3 = basic(b3, 96, 3, 1, 1, name=n + ".branch3x3dbl_2")
        b3 = basic(b3, 96, 3, 1, 1, name=n + ".branch3x3dbl_3")
        bp = basic(avg(x, n + ".avgpool"), pool, 1, name=n + ".branch_pool")
        return g.concat([b1, b5, b3, bp], name=n + ".cat")

    def block_b(x, n):
        b3 = basic(x, 384, 3, 2, name=n + ".branch3x3")
        bd = basic(x, 64, 1, name=n + ".branch3x3dbl_1")
        bd = basic(bd, 96, 3, 1, 1, name=n + ".branch3x3dbl_2")
        bd = basic(bd, 96, 3, 2, name=n + ".branch3x3dbl_3")
        bp = g.pool(x, "MaxPool", 3, 2, name=n + ".maxpool")
        return g.concat([b3, bd, bp], name=n + ".cat")

    def block_c(x, c7, n):
        b1 = basic(x, 192, 1, name=n + ".branch1x1")
        b7 = basic(x, c7, 1, name=n + ".branch7x7_1")
        b7 = basic(b7, c7, (1, 7), 1, (0, 3), name=n + ".branch7x7_2")
        b7 = basic(b7, 192, (7, 1), 1, (3, 0), name=n + ".branch7x7_3")
        bd = basic(x, c7, 1, name=n + ".branch7x7dbl_1")
        bd = basic(bd, c7, (7, 1), 1, (3, 0), name=n + ".branch7x7dbl_2")
        bd = basic(bd, c7, (1, 7), 1, (0, 3), name=n + ".branch7x7dbl_3")
        bd = basic(bd, c7, (7, 1), 1, (3, 0), name=n + ".branch7x7dbl_4")
        bd = basic(bd, 192, (1, 7), 1, (0, 3), name=n + ".branch7x7dbl_5")
        bp = basic(avg(x, n + ".avgpool"), 192, 1, name=n + ".branch_pool")
        return g.concat([b1, b7, bd, bp], name=n + ".cat")

    def block_d(x, n):
        b3 = basic(basic(x, 192, 1, name=n + ".branch3x3_1"), 320, 3, 2, name=n + ".branch3x3_2")
        b7 = basic(x, 192, 1, name=n + ".branch7x7x3_1")
        b7 = basic(b7, 192, (1, 7), 1, (0, 3), name=n + ".branch7x7x3_2")
        b7 = basic(b7, 192, (7, 1), 1, (3, 0), name=n + ".branch7x7x3_3")
        b7 = basic(b7, 192, 3, 2, name=n + ".branch7x7x3_4")
        bp = g.pool(x, "MaxPool", 3, 2, name=n + ".maxpool")
        return g.concat([b3, b7, bp], name=n + ".cat")

    def block_e(x, n):
        b1 = basic(x, 320, 1, name=n + ".branch1x1")
        b3 = basic(x, 384, 1, name=n + ".branch3x3_1")
        b3 = g.concat([basic(b3, 384, (1, 3), 1, (0, 1), name=n + ".branch3x3_2a"),
                       basic(b3, 384, (3, 1), 1, (1, 0), name=n + ".branch3x3_2b")],
                      name=n + ".cat3x3")
        bd = basic(x, 448, 1, name=n + ".branch3x3dbl_1")
        bd = basic(bd, 384, 3, 1, 1, name=n + ".branch3x3dbl_2")
        bd = g.concat([basic(bd, 384, (1, 3), 1, (0, 1), name=n + ".branch3x3dbl_3a"),
                       basic(bd, 384, (3, 1), 1, (1, 0), name=n + ".branch3x3dbl_3b")],
                      name=n + ".cat3x3dbl")
        bp = basic(avg(x, n + ".avgpool"), 192, 1, name=n + ".branch_pool")
        return g.concat([b1, b3, bd, bp], name=n + ".cat")

    x = block_a(x, 32, "Mixed_5b")
    x = block_a(x, 64, "Mixed_5c")
    x = block_a(x, 64, "Mixed_5d")
    x = block_b(x, "Mixed_6a")
    for c7, n in [(128, "Mixed_6b"), (160, "Mixed_6c"), (160, "Mixed_6d"), (192, "Mixed_6e")]:
        x = block_c(x, c7, n)
    x = block_d(x, "Mixed_7a")
    x = block_e(x, "Mixed_7b")
    x = block_e(x, "Mixed_7c")
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000))


def shufflenet_v2():
    g = Graph("shufflenet_v2_x1_0", 3, 224, 224)
    x = g.conv_bn("x", 24, 3, 2, 1, name="conv1")
    x = g.pool(x, "MaxPool", 3, 2, 1, name="maxpool")

    def shuffle(x, n):
        c, h, w = g.shape[x]
        to5 = g.const(n + ".to5", [5], [1, 2, c // 2, h, w])
        to4 = g.const(n + ".to4", [4], [1, c, h, w])
        y = g.node("Reshape", [x, to5], n + ".view", (c, h, w))
        y = g.node("Transpose", [y], n + ".transpose", (c, h, w), perm=[0, 2, 1, 3, 4])
        return g.node("Reshape", [y, to4], n + ".flatten", (c, h, w))

    cin = 24
    for stage, (repeats, cout) in enumerate(zip([4, 8, 4], [116, 232, 464]), start=2):
        bf = cout // 2
        for i in range(repeats):
            pre = f"stage{stage}.{i}"
            if i == 0:
                b1 = g.conv_bn(x, cin, 3, 2, 1, groups=cin, act=None, name=pre + ".branch1.0")
                b1 = g.conv_bn(b1, bf, 1, 1, 0, name=pre + ".branch1.2")
                b2 = x
            else:
                c, h, w = g.shape[x]
                split = g.const(pre + ".split", [2], [c // 2, c // 2])
                names = [pre + ".chunk0", pre + ".chunk1"]
                g.nodes.append(helper.make_node("Split", [x, split], names, name=pre + ".chunk",
                                                axis=1))
                for nm in names:
                    g.shape[nm] = (c // 2, h, w)
                b1, b2 = names
            s = 2 if i == 0 else 1
            b2 = g.conv_bn(b2, bf, 1, 1, 0, name=pre + ".branch2.0")
            b2 = g.conv_bn(b2, bf, 3, s, 1, groups=bf, act=None, name=pre + ".branch2.3")
            b2 = g.conv_bn(b2, bf, 1, 1, 0, name=pre + ".branch2.5")
            x = shuffle(g.concat([b1, b2], name=pre + ".cat"), pre + ".shuffle")
            cin = cout
    x = g.conv_bn(x, 1024, 1, 1, 0, name="conv5")
    c = g.shape[x][0]
    x = g.node("ReduceMean", [x], "mean", (c, 1, 1), axes=[2, 3], keepdims=0)
    return g.model(g.linear(x, 1000))


def squeezenet(version):
    g = Graph(f"squeezenet{version}", 3, 224, 224)

    def fire(x, s, e1, e3, n):
        x = g.act(g.conv(x, s, 1, 1, 0, bias=True, name=n + ".squeeze"), "relu")
        a = g.act(g.conv(x, e1, 1, 1, 0, bias=True, name=n + ".expand1x1"), "relu")
        b = g.act(g.conv(x, e3, 3, 1, 1, bias=True, name=n + ".expand3x3"), "relu")
        return g.concat([a, b], name=n + ".cat")

    def maxpool(x):
        return g.pool(x, "MaxPool", 3, 2, ceil=True, name="maxpool")

    if version == "1_0":
        x = g.act(g.conv("x", 96, 7, 2, 0, bias=True, name="features.0"), "relu")
        x = maxpool(x)
        plan = [(16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192), (64, 256),
                "M", (64, 256)]
    else:
        x = g.act(g.conv("x", 64, 3, 2, 0, bias=True, name="features.0"), "relu")
        x = maxpool(x)
        plan = [(16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192),
                (64, 256), (64, 256)]
    for k, p in enumerate(plan):
        x = maxpool(x) if p == "M" else fire(x, p[0], p[1], p[1], f"fire{k}")
    x = g.act(g.conv(x, 1000, 1, 1, 0, bias=True, name="classifier.1"), "relu")
    return g.model(g.flatten(g.gap(x)))


def vgg16():
    g = Graph("vgg16", 3, 224, 224)
    x = "x"
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"]:
        if v == "M":
            x = g.pool(x, "MaxPool", 2, 2, name="maxpool")
        else:
            x = g.act(g.conv(x, v, 3, 1, 1, bias=True, name="features"), "relu")
    # Adaptive average pooling to 7×7 of a 7×7 map: a kernel-1 AveragePool in the export.
    x = g.pool(x, "AveragePool", 1, 1, name="avgpool")
    x = g.flatten(x)
    x = g.act(g.linear(x, 4096, name="classifier.0"), "relu")
    x = g.act(g.linear(x, 4096, name="classifier.3"), "relu")
    return g.model(g.linear(x, 1000, name="classifier.6"))


def alexnet():
    g = Graph("alexnet", 3, 224, 224)
    x = g.act(g.conv("x", 64, 11, 4, 2, bias=True, name="features.0"), "relu")
    x = g.pool(x, "MaxPool", 3, 2, name="maxpool")
    x = g.act(g.conv(x, 192, 5, 1, 2, bias=True, name="features.3"), "relu")
    x = g.pool(x, "MaxPool", 3, 2, name="maxpool")
    x = g.act(g.conv(x, 384, 3, 1, 1, bias=True, name="features.6"), "relu")
    x = g.act(g.conv(x, 256, 3, 1, 1, bias=True, name="features.8"), "relu")
    x = g.act(g.conv(x, 256, 3, 1, 1, bias=True, name="features.10"), "relu")
    x = g.pool(x, "MaxPool", 3, 2, name="maxpool")
    x = g.pool(x, "AveragePool", 1, 1, name="avgpool")
    x = g.flatten(x)
    x = g.act(g.linear(x, 4096, name="classifier.1"), "relu")
    x = g.act(g.linear(x, 4096, name="classifier.4"), "relu")
    return g.model(g.linear(x, 1000, name="classifier.6"))


def regnet_widths(depth, w_0, w_a, w_m, group_width):
    """torchvision's BlockParams.from_init_params: per stage (width, depth, group width),
    with the bottleneck multiplier 1."""
    quant = 8
    widths_cont = [i * w_a + w_0 for i in range(depth)]
    caps = [round(math.log(w / w_0) / math.log(w_m)) for w in widths_cont]
    widths = [int(round(w_0 * w_m ** c / quant) * quant) for c in caps]
    stages = []
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    out = []
    for w, d in stages:
        gw = min(group_width, w)
        w = make_divisible(w, gw) if w % gw else w
        out.append((w, d, gw))
    return out


def regnet(name, depth, w_0, w_a, w_m, group_width, se_ratio):
    g = Graph(name, 3, 224, 224)
    x = g.conv_bn("x", 32, 3, 2, 1, name="stem")
    cin = 32
    for s, (w, d, gw) in enumerate(regnet_widths(depth, w_0, w_a, w_m, group_width), start=1):
        for i in range(d):
            pre = f"trunk_output.block{s}.{i}"
            stride = 2 if i == 0 else 1
            y = g.conv_bn(x, w, 1, 1, 0, name=pre + ".a")
            y = g.conv_bn(y, w, 3, stride, 1, groups=w // gw, name=pre + ".b")
            if se_ratio:
                y = g.se(y, int(round(se_ratio * cin)), "relu", "sigmoid", name=pre + ".se")
            y = g.conv_bn(y, w, 1, 1, 0, act=None, name=pre + ".c")
            if cin != w or stride != 1:
                x = g.conv_bn(x, w, 1, stride, 0, act=None, name=pre + ".proj")
            x = g.act(g.add(x, y, name=pre + ".add"), "relu", name=pre + ".relu")
            cin = w
    x = g.flatten(g.gap(x))
    return g.model(g.linear(x, 1000))


MODELS = {
    "resnet18": lambda: resnet("resnet18", "basic", [2, 2, 2, 2]),
    "resnet50": lambda: resnet("resnet50", "bottleneck", [3, 4, 6, 3]),
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": lambda: mobilenet_v3("mobilenet_v3_large", MOBILENET_V3_LARGE, 1280),
    "mobilenet_v3_small": lambda: mobilenet_v3("mobilenet_v3_small", MOBILENET_V3_SMALL, 1024),
    "efficientnet_b0": efficientnet_b0,
    "densenet121": densenet121,
    "googlenet": googlenet,
    "inception_v3": inception_v3,
    "shufflenet_v2_x1_0": shufflenet_v2,
    "squeezenet1_0": lambda: squeezenet("1_0"),
    "squeezenet1_1": lambda: squeezenet("1_1"),
    "vgg16": vgg16,
    "alexnet": alexnet,
    "regnet_y_400mf": lambda: regnet("regnet_y_400mf", 16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_x_400mf": lambda: regnet("regnet_x_400mf", 22, 24, 24.48, 2.54, 16, 0.0),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "workloads/fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    for name, build in MODELS.items():
        path = os.path.join(out, f"tv_{name}.onnx")
        onnx.save(build(), path)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
