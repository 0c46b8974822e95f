//! The model zoo: the benchmark networks of CIM and CRAM papers with their exact published
//! shapes (`docs/references.md` B1/B2; each constructor names its definition). The
//! tests check every MAC and parameter total against the published numbers.

use crate::error::WorkloadError;
use crate::net::{Network, Op, Shape, UnaryFn, Window};

/// Zoo entries: key and one-line description.
pub const MODELS: [(&str, &str); 15] = [
    (
        "lenet5",
        "LeNet-5, LeCun 1998 style: 32×32 input, full C3, biases (61,706 params)",
    ),
    (
        "lenet5-caffe",
        "LeNet-5 of Caffe / Han et al. 2015: 28×28, conv20-conv50-fc500-fc10 (431,080 params)",
    ),
    ("mlp-784-256-10", "MNIST MLP 784-256-10 (PRIME)"),
    (
        "lenet-300-100",
        "LeNet-300-100, MNIST MLP 784-300-100-10 (Han et al. 2015)",
    ),
    (
        "vgg8-cifar",
        "VGG-8 for CIFAR-10, DNN+NeuroSim definition (no biases)",
    ),
    (
        "resnet18",
        "ResNet-18, ImageNet 224×224, torchvision definition",
    ),
    (
        "resnet20",
        "ResNet-20, CIFAR-10, He et al. 2016, option-A identity shortcuts",
    ),
    (
        "mobilenetv2",
        "MobileNetV2 width 1.0, ImageNet 224×224, torchvision definition",
    ),
    (
        "bert-base-layer",
        "one BERT-base encoder layer at seq 128, as its GEMMs (d 768, 12 heads, FFN 3072)",
    ),
    (
        "alexnet",
        "AlexNet, Caffe/Eyeriss definition: 227×227, grouped conv2/4/5, no LRN (666 M conv MACs)",
    ),
    (
        "resnet8",
        "ResNet-8 of MLPerf Tiny image classification (CIFAR-10, 12.5 M MACs)",
    ),
    (
        "resnet50",
        "ResNet-50 v1.5, ImageNet 224×224, torchvision definition (4.09 G MACs)",
    ),
    (
        "bert-base",
        "BERT-base, 12 encoder layers at seq 128 with embeddings and pooler (110 M params)",
    ),
    (
        "gpt2-small",
        "GPT-2 small, prefill of a 128-token prompt, causal, tied LM head (124 M params)",
    ),
    (
        "gpt2-small-decode",
        "GPT-2 small, one decode step: token 129 over a 128-entry KV cache in CRAM cells",
    ),
];

/// The transformer zoo networks whose token counts a run may set: name, default
/// (tokens, cached tokens), most tokens in all (positions of the table; BERT: 512, GPT-2:
/// 1,024), and whether it takes cached tokens (a decode step).
pub const SIZED: [(&str, (usize, usize), usize, bool); 3] = [
    ("bert-base", (128, 0), 512, false),
    ("gpt2-small", (128, 0), 1024, false),
    ("gpt2-small-decode", (1, 128), 1024, true),
];

/// Tokens a language model's run generates after its prompt unless told
/// (`workload.decode_tokens`).
pub const DECODE_TOKENS: usize = 8;

/// The decode step that follows zoo language model `name`'s prefill, over `past` cached
/// tokens (one new token); `None` for a network that generates nothing ([`generates`]).
pub fn decode_step(name: &str, past: usize) -> Option<Network> {
    generates(name).map(|_| gpt2_small(1, past.max(1)))
}

/// The most tokens (prompt and generated) zoo language model `name` takes, or `None` for a
/// network that generates nothing ([`decode_step`]).
pub fn generates(name: &str) -> Option<usize> {
    match name {
        "gpt2-small" => SIZED.iter().find(|s| s.0 == name).map(|s| s.2),
        _ => None,
    }
}

/// The tokens zoo network `name` runs on unless told (`workload.seq_len`; [`SIZED`]).
pub fn default_tokens(name: &str) -> Option<usize> {
    SIZED.iter().find(|s| s.0 == name).map(|s| s.1.0)
}

/// Transformer zoo network `name` on `tokens` tokens after `cached` cached ones (each
/// `None`: the entry's default, [`SIZED`]); any other zoo network with both `None`.
pub fn model_sized(
    name: &str,
    tokens: Option<usize>,
    cached: Option<usize>,
) -> Result<Network, WorkloadError> {
    let Some(&(_, (t0, c0), most, decode)) = SIZED.iter().find(|s| s.0 == name) else {
        if tokens.is_some() || cached.is_some() {
            let names: Vec<&str> = SIZED.iter().map(|s| s.0).collect();
            return Err(WorkloadError::Network(format!(
                "'{name}' has no token counts to set: they apply to {}",
                names.join(", ")
            )));
        }
        return model(name);
    };
    if cached.is_some() && !decode {
        return Err(WorkloadError::Network(format!(
            "'{name}' caches no tokens (a prefill); cached tokens apply to gpt2-small-decode"
        )));
    }
    let (t, c) = (tokens.unwrap_or(t0), cached.unwrap_or(c0));
    if t == 0 || t.checked_add(c).is_none_or(|all| all > most) || (decode && c == 0) {
        return Err(WorkloadError::Network(format!(
            "'{name}' on {t} token(s){}: it takes 1 to {most} tokens in all{}",
            if decode {
                format!(" after {c} cached")
            } else {
                String::new()
            },
            if decode {
                ", at least 1 of them cached"
            } else {
                ""
            }
        )));
    }
    Ok(match name {
        "bert-base" => bert_base(t),
        _ => gpt2_small(t, c),
    })
}

/// The zoo network called `name`.
pub fn model(name: &str) -> Result<Network, WorkloadError> {
    Ok(match name {
        "lenet5" => lenet5(),
        "lenet5-caffe" => lenet5_caffe(),
        "mlp-784-256-10" => mlp("mlp-784-256-10", 784, &[256, 10]),
        "lenet-300-100" => mlp("lenet-300-100", 784, &[300, 100, 10]),
        "vgg8-cifar" => vgg8_cifar(),
        "resnet18" => resnet18(),
        "resnet20" => resnet20(),
        "mobilenetv2" => mobilenetv2(),
        "bert-base-layer" => bert_base_layer(128),
        "alexnet" => alexnet(),
        "resnet8" => resnet8(),
        "resnet50" => resnet50(),
        "bert-base" | "gpt2-small" | "gpt2-small-decode" => model_sized(name, None, None)?,
        _ => {
            let names: Vec<&str> = MODELS.iter().map(|m| m.0).collect();
            return Err(WorkloadError::Network(format!(
                "no zoo model '{name}'; the zoo has {}",
                names.join(", ")
            )));
        }
    })
}

/// Hidden width of the shipped digits-mlp (`train.rs`).
pub const DIGITS_HIDDEN: usize = 64;

/// A convolution op.
pub fn conv(out_channels: usize, k: usize, s: usize, p: usize, groups: usize, bias: bool) -> Op {
    Op::Conv2d {
        out_channels,
        window: Window::square(k, s, p),
        groups,
        bias,
    }
}

/// A dense op with bias.
pub fn dense(out_features: usize) -> Op {
    Op::Dense {
        out_features,
        bias: true,
    }
}

fn maxpool(k: usize, s: usize, p: usize) -> Op {
    Op::MaxPool {
        window: Window::square(k, s, p),
    }
}

const BN: Op = Op::BatchNorm {
    eps: 1e-5,
    counted: true,
};

/// An MLP with ReLU between layers (none after the last).
fn mlp(name: &str, inputs: usize, widths: &[usize]) -> Network {
    let mut n = Network::new(name, Shape::vector(inputs));
    for (i, &w) in widths.iter().enumerate() {
        n.then(format!("fc{}", i + 1), dense(w));
        if i + 1 < widths.len() {
            n.then(format!("relu{}", i + 1), Op::Relu);
        }
    }
    n
}

/// LeNet-5 in the modern reading of LeCun et al. 1998: ReLU, 2×2 max pooling, C3 fully
/// connected to S2 (B2 table: 61,706 parameters, 416,520 MACs).
fn lenet5() -> Network {
    let mut n = Network::new("lenet5", Shape::new(1, 32, 32));
    n.then("c1", conv(6, 5, 1, 0, 1, true));
    n.then("relu1", Op::Relu);
    n.then("s2", maxpool(2, 2, 0));
    n.then("c3", conv(16, 5, 1, 0, 1, true));
    n.then("relu3", Op::Relu);
    n.then("s4", maxpool(2, 2, 0));
    n.then("c5", conv(120, 5, 1, 0, 1, true));
    n.then("relu5", Op::Relu);
    n.then("flatten", Op::Flatten);
    n.then("f6", dense(84));
    n.then("relu6", Op::Relu);
    n.then("out", dense(10));
    n
}

/// The "LeNet-5" of Caffe and of Han et al. 2015 (B2: 431,080 parameters, 2,293,000 MACs).
fn lenet5_caffe() -> Network {
    let mut n = Network::new("lenet5-caffe", Shape::new(1, 28, 28));
    n.then("conv1", conv(20, 5, 1, 0, 1, true));
    n.then("pool1", maxpool(2, 2, 0));
    n.then("conv2", conv(50, 5, 1, 0, 1, true));
    n.then("pool2", maxpool(2, 2, 0));
    n.then("flatten", Op::Flatten);
    n.then("ip1", dense(500));
    n.then("relu1", Op::Relu);
    n.then("ip2", dense(10));
    n
}

/// VGG-8 for CIFAR-10 as DNN+NeuroSim defines it: no biases, 2×2 max pooling after conv2,
/// conv4 and conv6 (B2: 12,973,440 weights, 615,917,568 MACs).
fn vgg8_cifar() -> Network {
    let mut n = Network::new("vgg8-cifar", Shape::new(3, 32, 32));
    for (i, c) in [128, 128, 256, 256, 512, 512].into_iter().enumerate() {
        n.then(format!("conv{}", i + 1), conv(c, 3, 1, 1, 1, false));
        n.then(format!("relu{}", i + 1), Op::Relu);
        if i % 2 == 1 {
            n.then(format!("pool{}", i / 2 + 1), maxpool(2, 2, 0));
        }
    }
    n.then("flatten", Op::Flatten);
    n.then(
        "fc1",
        Op::Dense {
            out_features: 1024,
            bias: false,
        },
    );
    n.then("relu7", Op::Relu);
    n.then(
        "fc2",
        Op::Dense {
            out_features: 10,
            bias: false,
        },
    );
    n
}

/// conv → BN (→ ReLU), reading `from`; returns the last index.
fn conv_bn(
    n: &mut Network,
    from: usize,
    name: &str,
    c: usize,
    (k, s, p, g): (usize, usize, usize, usize),
    relu: Option<Op>,
) -> usize {
    let x = n.push(name, conv(c, k, s, p, g, false), &[from]);
    let mut x = n.push(format!("{name}.bn"), BN, &[x]);
    if let Some(act) = relu {
        x = n.push(format!("{name}.relu"), act, &[x]);
    }
    x
}

/// A ResNet basic block: two 3×3 conv-BN, the shortcut, add, ReLU.
fn basic_block(n: &mut Network, from: usize, name: &str, c: usize, stride: usize, option_a: bool) {
    let cin = match n.stats() {
        Ok(s) => s[from].out.c,
        Err(_) => unreachable!("zoo networks are well formed"),
    };
    let x = conv_bn(
        n,
        from,
        &format!("{name}.conv1"),
        c,
        (3, stride, 1, 1),
        Some(Op::Relu),
    );
    let x = conv_bn(n, x, &format!("{name}.conv2"), c, (3, 1, 1, 1), None);
    let short = if stride == 1 && cin == c {
        from
    } else if option_a {
        n.push(
            format!("{name}.shortcut"),
            Op::Downsample {
                stride,
                out_channels: c,
            },
            &[from],
        )
    } else {
        conv_bn(
            n,
            from,
            &format!("{name}.downsample"),
            c,
            (1, stride, 0, 1),
            None,
        )
    };
    let sum = n.push(format!("{name}.add"), Op::Add, &[x, short]);
    n.push(format!("{name}.relu"), Op::Relu, &[sum]);
}

/// ResNet stages `layer1..`: `blocks` basic blocks of `channels[i]`, the first of every
/// stage after the first with stride 2.
fn residual_stages(n: &mut Network, channels: &[usize], blocks: usize, option_a: bool) {
    for (stage, &c) in channels.iter().enumerate() {
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let from = n.layers.len() - 1;
            let name = format!("layer{}.{b}", stage + 1);
            basic_block(n, from, &name, c, stride, option_a);
        }
    }
}

/// torchvision ResNet-18 (B2: 11,689,512 parameters incl. 9,600 BN, 1,814,073,344 MACs).
fn resnet18() -> Network {
    let mut n = Network::new("resnet18", Shape::new(3, 224, 224));
    conv_bn(&mut n, 0, "conv1", 64, (7, 2, 3, 1), Some(Op::Relu));
    n.then("maxpool", maxpool(3, 2, 1));
    residual_stages(&mut n, &[64, 128, 256, 512], 2, false);
    n.then("avgpool", Op::GlobalAvgPool);
    n.then("fc", dense(1000));
    n
}

/// ResNet-20 for CIFAR-10 (He et al. 2016, option A). B2: 268,346 weights and biases (the
/// BN γ/β are not in that total), 40,551,040 MACs.
fn resnet20() -> Network {
    let mut n = Network::new("resnet20", Shape::new(3, 32, 32));
    conv_bn(&mut n, 0, "conv1", 16, (3, 1, 1, 1), Some(Op::Relu));
    residual_stages(&mut n, &[16, 32, 64], 3, true);
    n.then("avgpool", Op::GlobalAvgPool);
    n.then("fc", dense(10));
    n
}

/// AlexNet as Caffe's `bvlc_alexnet` and Eyeriss (JSSC 2017) define it: 227×227 input,
/// conv2, conv4 and conv5 in two groups, 3×3/2 max pooling; LRN is left out (it has no
/// weights and no MACs). Eyeriss: 2.3 M conv weights and 666 M conv MACs per image
/// (`docs/references.md` A9.1).
fn alexnet() -> Network {
    let mut n = Network::new("alexnet", Shape::new(3, 227, 227));
    for (i, (c, k, s, p, g, pool)) in [
        (96, 11, 4, 0, 1, true),
        (256, 5, 1, 2, 2, true),
        (384, 3, 1, 1, 1, false),
        (384, 3, 1, 1, 2, false),
        (256, 3, 1, 1, 2, true),
    ]
    .into_iter()
    .enumerate()
    {
        n.then(format!("conv{}", i + 1), conv(c, k, s, p, g, true));
        n.then(format!("relu{}", i + 1), Op::Relu);
        if pool {
            n.then(format!("pool{}", i + 1), maxpool(3, 2, 0));
        }
    }
    n.then("flatten", Op::Flatten);
    for (name, w) in [("fc6", 4096), ("fc7", 4096)] {
        n.then(name, dense(w));
        n.then(format!("{name}.relu"), Op::Relu);
    }
    n.then("fc8", dense(1000));
    n
}

/// The ResNet-8 of MLPerf Tiny's image-classification task (Banbury et al. 2021; the
/// benchmark's Keras model): a 16-channel stem and three basic blocks of 16, 32 and 64
/// channels with 1×1 projection shortcuts at the two stride-2 blocks, global average
/// pooling and a 10-way dense layer (12.5 M MACs, A9.2).
fn resnet8() -> Network {
    let mut n = Network::new("resnet8", Shape::new(3, 32, 32));
    conv_bn(&mut n, 0, "conv1", 16, (3, 1, 1, 1), Some(Op::Relu));
    residual_stages(&mut n, &[16, 32, 64], 1, false);
    n.then("avgpool", Op::GlobalAvgPool);
    n.then("fc", dense(10));
    n
}

/// A ResNet bottleneck block (v1.5: the stride sits on the 3×3 conv): 1×1 → 3×3 → 1×1
/// (4× wider), the projection shortcut when shape changes, add, ReLU.
fn bottleneck(n: &mut Network, from: usize, name: &str, c: usize, stride: usize) {
    let cin = match n.stats() {
        Ok(s) => s[from].out.c,
        Err(_) => unreachable!("zoo networks are well formed"),
    };
    let relu = Some(Op::Relu);
    let x = conv_bn(
        n,
        from,
        &format!("{name}.conv1"),
        c,
        (1, 1, 0, 1),
        relu.clone(),
    );
    let x = conv_bn(n, x, &format!("{name}.conv2"), c, (3, stride, 1, 1), relu);
    let x = conv_bn(n, x, &format!("{name}.conv3"), 4 * c, (1, 1, 0, 1), None);
    let short = if stride == 1 && cin == 4 * c {
        from
    } else {
        conv_bn(
            n,
            from,
            &format!("{name}.downsample"),
            4 * c,
            (1, stride, 0, 1),
            None,
        )
    };
    let sum = n.push(format!("{name}.add"), Op::Add, &[x, short]);
    n.push(format!("{name}.relu"), Op::Relu, &[sum]);
}

/// torchvision ResNet-50 (v1.5; A9.4: 4.09 G MACs, 25.5 M weights).
fn resnet50() -> Network {
    let mut n = Network::new("resnet50", Shape::new(3, 224, 224));
    conv_bn(&mut n, 0, "conv1", 64, (7, 2, 3, 1), Some(Op::Relu));
    n.then("maxpool", maxpool(3, 2, 1));
    for (stage, (c, blocks)) in [(64, 3), (128, 4), (256, 6), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let from = n.layers.len() - 1;
            bottleneck(&mut n, from, &format!("layer{}.{b}", stage + 1), c, stride);
        }
    }
    n.then("avgpool", Op::GlobalAvgPool);
    n.then("fc", dense(1000));
    n
}

/// torchvision MobileNetV2, width 1.0 (B2: 3,504,872 parameters incl. BN, 300,774,272 MACs).
fn mobilenetv2() -> Network {
    let mut n = Network::new("mobilenetv2", Shape::new(3, 224, 224));
    let mut x = conv_bn(&mut n, 0, "conv_stem", 32, (3, 2, 1, 1), Some(Op::Relu6));
    let mut cin = 32;
    for (t, c, reps, s) in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ] {
        for r in 0..reps {
            let stride = if r == 0 { s } else { 1 };
            let name = format!("b{c}_{r}");
            let hidden = cin * t;
            let mut y = x;
            if t != 1 {
                y = conv_bn(
                    &mut n,
                    y,
                    &format!("{name}.expand"),
                    hidden,
                    (1, 1, 0, 1),
                    Some(Op::Relu6),
                );
            }
            y = conv_bn(
                &mut n,
                y,
                &format!("{name}.dw"),
                hidden,
                (3, stride, 1, hidden),
                Some(Op::Relu6),
            );
            y = conv_bn(&mut n, y, &format!("{name}.project"), c, (1, 1, 0, 1), None);
            if stride == 1 && cin == c {
                y = n.push(format!("{name}.add"), Op::Add, &[y, x]);
            }
            x = y;
            cin = c;
        }
    }
    conv_bn(&mut n, x, "conv_head", 1280, (1, 1, 0, 1), Some(Op::Relu6));
    n.then("avgpool", Op::GlobalAvgPool);
    n.then("classifier", dense(1000));
    n
}

/// One BERT-base encoder layer as its GEMMs, at sequence length `seq`: Q, K, V projections,
/// the attention scores and context products, the output projection and the two FFN layers
/// (B1: 7.08 M weight MACs per token; ≈ 0.93 G MACs per layer at seq 128). Softmax,
/// LayerNorm, GELU and the residual adds are not GEMMs and are left out.
fn bert_base_layer(seq: usize) -> Network {
    let (d, heads, ffn) = (768, 12, 3072);
    let mut n = Network::new("bert-base-layer", Shape::new(d, seq, 1));
    let q = n.push("q", dense(d), &[0]);
    let k = n.push("k", dense(d), &[0]);
    let v = n.push("v", dense(d), &[0]);
    let s = n.push("scores", Op::AttnScores { heads }, &[q, k]);
    n.push("context", Op::AttnContext { heads }, &[s, v]);
    n.then("attn_out", dense(d));
    n.then("ffn1", dense(ffn));
    n.then("ffn2", dense(d));
    n
}

/// BERT-base (Devlin et al., NAACL 2019; `docs/references.md` B1) at sequence length `seq`
/// with the Hugging Face `bert-base-uncased` layout: token (30,522), position (512) and
/// token-type (2) embeddings and their LayerNorm; 12 post-norm encoder layers (d 768,
/// 12 heads, FFN 3072, GELU, LayerNorm ε 10⁻¹²); the pooler's dense + tanh on the first
/// ([CLS]) token, picked by a 1×1 max pool of stride `seq` (it selects, no arithmetic).
pub fn bert_base(seq: usize) -> Network {
    let (d, heads, ffn, eps) = (768, 12, 3072, 1e-12);
    let mut n = Network::new("bert-base", Shape::new(1, seq, 1));
    n.then(
        "embeddings",
        Op::Embedding {
            vocab: 30_522,
            dim: d,
        },
    );
    n.then(
        "positions",
        Op::Positional {
            positions: 512,
            offset: 0,
            token_types: 2,
        },
    );
    let mut x = n.then("embeddings.norm", Op::LayerNorm { eps });
    for l in 0..12 {
        let a = attention(&mut n, &format!("layer{l}"), x, (d, heads, 0), false);
        let r = n.push(format!("layer{l}.attn.add"), Op::Add, &[a, x]);
        let h = n.push(format!("layer{l}.attn.norm"), Op::LayerNorm { eps }, &[r]);
        let f = feed_forward(&mut n, &format!("layer{l}"), h, ffn, d);
        let r = n.push(format!("layer{l}.ffn.add"), Op::Add, &[f, h]);
        x = n.push(format!("layer{l}.ffn.norm"), Op::LayerNorm { eps }, &[r]);
    }
    n.push("cls", first_token(seq), &[x]);
    n.then("pooler", dense(d));
    n.then("pooler.tanh", Op::Unary { f: UnaryFn::Tanh });
    n
}

/// The first ([CLS]) token's features of a features×`seq` sequence: a 1×1 max pool of
/// stride `seq`, which selects without arithmetic.
pub fn first_token(seq: usize) -> Op {
    Op::MaxPool {
        window: Window {
            kernel: [1, 1],
            stride: [seq, 1],
            pad: [0; 4],
            ceil: false,
        },
    }
}

/// GPT-2 small (Radford et al. 2019; `docs/references.md` B1): token (50,257) and position
/// (1,024) embeddings, 12 pre-norm decoder layers (d 768, 12 heads, FFN 3072, GELU,
/// LayerNorm ε 10⁻⁵) with causal attention, the final LayerNorm and the LM head, whose
/// weight is the token table (tied, not counted twice). `seq` tokens after `past` earlier
/// ones: `past` = 0 is a prompt's prefill; `past` > 0 a decode step, each layer's keys and
/// values appended to a cache of the `past` earlier tokens' ([`Op::KvCache`]).
pub fn gpt2_small(seq: usize, past: usize) -> Network {
    let (d, heads, ffn, eps) = (768, 12, 3072, 1e-5);
    let name = if past == 0 {
        "gpt2-small"
    } else {
        "gpt2-small-decode"
    };
    let mut n = Network::new(name, Shape::new(1, seq, 1));
    n.then(
        "wte",
        Op::Embedding {
            vocab: 50_257,
            dim: d,
        },
    );
    let mut x = n.then(
        "wpe",
        Op::Positional {
            positions: 1024,
            offset: past,
            token_types: 0,
        },
    );
    for l in 0..12 {
        let h = n.push(format!("h{l}.ln_1"), Op::LayerNorm { eps }, &[x]);
        let a = attention(&mut n, &format!("h{l}"), h, (d, heads, past), true);
        let r = n.push(format!("h{l}.attn.add"), Op::Add, &[a, x]);
        let h = n.push(format!("h{l}.ln_2"), Op::LayerNorm { eps }, &[r]);
        let f = feed_forward(&mut n, &format!("h{l}"), h, ffn, d);
        x = n.push(format!("h{l}.mlp.add"), Op::Add, &[f, r]);
    }
    n.push("ln_f", Op::LayerNorm { eps }, &[x]);
    let head = n.then(
        "lm_head",
        Op::Dense {
            out_features: 50_257,
            bias: false,
        },
    );
    n.layers[head].tied = Some("wte".into());
    n
}

/// Multi-head self-attention on `x` (d×seq): Q, K, V projections (K and V appended to
/// caches of `past` earlier tokens when `past` > 0), the scores, the integer softmax
/// (`causal` masks later keys), the context and the output projection, whose index it
/// returns.
fn attention(
    n: &mut Network,
    p: &str,
    x: usize,
    (d, heads, past): (usize, usize, usize),
    causal: bool,
) -> usize {
    let q = n.push(format!("{p}.attn.q"), dense(d), &[x]);
    let mut k = n.push(format!("{p}.attn.k"), dense(d), &[x]);
    let mut v = n.push(format!("{p}.attn.v"), dense(d), &[x]);
    if past > 0 {
        k = n.push(format!("{p}.attn.k_cache"), Op::KvCache { past }, &[k]);
        v = n.push(format!("{p}.attn.v_cache"), Op::KvCache { past }, &[v]);
    }
    let s = n.push(
        format!("{p}.attn.scores"),
        Op::AttnScores { heads },
        &[q, k],
    );
    let sm = n.push(
        format!("{p}.attn.softmax"),
        Op::AttnSoftmax { heads, causal },
        &[s],
    );
    let c = n.push(
        format!("{p}.attn.context"),
        Op::AttnContext { heads },
        &[sm, v],
    );
    n.push(format!("{p}.attn.out"), dense(d), &[c])
}

/// The feed-forward block on `x`: dense(ffn), GELU, dense(d). Returns the last index.
fn feed_forward(n: &mut Network, p: &str, x: usize, ffn: usize, d: usize) -> usize {
    n.push(format!("{p}.ffn.up"), dense(ffn), &[x]);
    n.then(format!("{p}.ffn.gelu"), Op::Unary { f: UnaryFn::Gelu });
    n.then(format!("{p}.ffn.down"), dense(d))
}

/// Published totals of the zoo networks: (model, MACs, weights + biases (no BN; LayerNorm's
/// γ and β included, as the transformers' published counts include them), all parameters
/// incl. BN γ/β), each from the workload reference (`docs/references.md`
/// B2: torchvision model cards, the LeNet/VGG/ResNet papers) unless noted. Tested equal to
/// the zoo's own counts; `cramulator validate --group networks` reports them.
pub const PUBLISHED: [(&str, u64, u64, u64); 11] = [
    ("lenet5", 416_520, 61_706, 61_706),
    ("lenet5-caffe", 2_293_000, 431_080, 431_080),
    ("mlp-784-256-10", 203_264, 203_530, 203_530),
    ("lenet-300-100", 266_200, 266_610, 266_610),
    ("vgg8-cifar", 615_917_568, 12_973_440, 12_973_440),
    // torchvision 11,689,512 includes 9,600 BN parameters.
    ("resnet18", 1_814_073_344, 11_689_512 - 9_600, 11_689_512),
    // B2 counts conv and fc only: 268,346; BN adds 2·(16 + 6·16 + 6·32 + 6·64) = 1,376.
    ("resnet20", 40_551_040, 268_346, 268_346 + 1_376),
    // torchvision 3,504,872 includes BN; 34,112 of it are γ/β (2 · 17,056 BN channels).
    ("mobilenetv2", 300_774_272, 3_504_872 - 34_112, 3_504_872),
    // B1: 3·768² + 768² + 2·768·3072 = 7,077,888 weight MACs per token, × 128 tokens, plus
    // 2·seq·768 per token for scores and context; biases 4·768 + 3072 + 768.
    (
        "bert-base-layer",
        7_077_888 * 128 + 2 * 128 * 128 * 768,
        7_077_888 + 6_912,
        7_077_888 + 6_912,
    ),
    // B1: BERT-base's 109,482,240 parameters (LayerNorms included) at seq 128: 12 layers of
    // the line above plus the pooler's 768² MACs.
    (
        "bert-base",
        12 * (7_077_888 * 128 + 2 * 128 * 128 * 768) + 768 * 768,
        109_482_240,
        109_482_240,
    ),
    // B1: GPT-2 small's 124,439,808 parameters (LM head tied) at a 128-token prefill: the
    // same 12 layers plus the LM head's 768 × 50,257 MACs per token.
    (
        "gpt2-small",
        12 * (7_077_888 * 128 + 2 * 128 * 128 * 768) + 128 * 768 * 50_257,
        124_439_808,
        124_439_808,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LayerStats;

    #[test]
    fn zoo_totals_equal_the_published_ones() {
        for (name, macs, weights_biases, params) in PUBLISHED {
            let n = model(name).unwrap();
            let s = n.stats().unwrap();
            let got_macs: u64 = s.iter().map(|l| l.macs).sum();
            let bn: u64 = n
                .layers
                .iter()
                .zip(&s)
                .filter(|(l, _)| matches!(l.op, Op::BatchNorm { .. }))
                .map(|(_, st)| st.params)
                .sum();
            let got_params: u64 = s.iter().map(|l| l.params).sum();
            assert_eq!(got_macs, macs, "{name} MACs");
            assert_eq!(got_params - bn, weights_biases, "{name} weights + biases");
            assert_eq!(got_params, params, "{name} parameters");
        }
    }

    /// BERT-base: 109,482,240 parameters (the Hugging Face `bert-base-uncased` count,
    /// "110 M" in Devlin et al.), 85,645,056 without the embeddings ("86 M"); GPT-2 small:
    /// 124,439,808 ("124 M", the LM head tied to the token table). MACs per layer as B1:
    /// 7,077,888 weight MACs per token plus 2·seq·768 for scores and context.
    #[test]
    fn transformer_totals_are_the_published_ones() {
        let bert = model("bert-base").unwrap();
        let (macs, _, params) = bert.totals().unwrap();
        assert_eq!(params, 109_482_240);
        assert_eq!((params as f64 / 1e6).round(), 109.0);
        let stats = bert.stats().unwrap();
        let embeddings: u64 = bert
            .layers
            .iter()
            .zip(&stats)
            .filter(|(l, _)| l.name.starts_with("embeddings") || l.name == "positions")
            .map(|(_, s)| s.params)
            .sum();
        assert_eq!(embeddings, 30_522 * 768 + 514 * 768 + 2 * 768);
        assert_eq!(((params - embeddings) as f64 / 1e6).round(), 86.0);
        let per_layer = 7_077_888 * 128 + 2 * 128 * 128 * 768;
        assert_eq!(macs, 12 * per_layer + 768 * 768);
        let gpt = model("gpt2-small").unwrap();
        let (macs, weights, params) = gpt.totals().unwrap();
        assert_eq!(params, 124_439_808);
        // The head reads the 38.6 M-weight table: counted as weights, not as parameters.
        assert_eq!(
            weights - params,
            50_257 * 768 - 12 * 2 * 2 * 768 - 2 * 768 - 12 * (4 * 768 + 3072 + 768)
        );
        assert_eq!(macs, 12 * per_layer + 128 * 768 * 50_257);
        // One decode step: the same parameters; per layer 7,077,888 weight MACs and
        // 2 × 129 × 768 for scores and context over the 129 keys, plus the LM head.
        let step = model("gpt2-small-decode").unwrap();
        let (macs, _, params) = step.totals().unwrap();
        assert_eq!(params, 124_439_808);
        assert_eq!(macs, 12 * (7_077_888 + 2 * 129 * 768) + 768 * 50_257);
    }

    #[test]
    fn rounded_published_figures() {
        // B1: ≈ 0.93 G MACs per BERT-base layer at seq 128, ≈ 85 M weights for 12 layers.
        let (macs, weights, _) = model("bert-base-layer").unwrap().totals().unwrap();
        assert_eq!((macs as f64 / 1e7).round(), 93.0);
        assert_eq!((12.0 * weights as f64 / 1e6).round(), 85.0);
        // B2: ResNet-20 ≈ 0.27 M parameters, ≈ 41 M MACs; MobileNetV2 ≈ 300 M MACs.
        let (macs, _, _) = model("resnet20").unwrap().totals().unwrap();
        assert_eq!((macs as f64 / 1e6).round(), 41.0);
    }

    #[test]
    fn every_model_builds_and_unknown_names_list_the_zoo() {
        for (name, _) in MODELS {
            let n = model(name).unwrap();
            assert_eq!(n.name, name);
            n.stats().unwrap();
        }
        let e = model("googlenet").unwrap_err().to_string();
        assert!(e.contains("googlenet") && e.contains("resnet18"), "{e}");
    }

    #[test]
    fn calibration_networks_match_their_published_counts() {
        // Eyeriss (A9.1): AlexNet CONV layers, 2.3 M weights and 666 M MACs per image; per
        // layer 421 / 895 / 598 / 448 / 299 M MACs for a batch of 4.
        let n = model("alexnet").unwrap();
        let s = n.stats().unwrap();
        let convs: Vec<&LayerStats> = n
            .layers
            .iter()
            .zip(&s)
            .filter(|(l, _)| matches!(l.op, Op::Conv2d { .. }))
            .map(|(_, st)| st)
            .collect();
        let batch4: Vec<u64> = convs.iter().map(|c| (4 * c.macs) / 1_000_000).collect();
        assert_eq!(batch4, [421, 895, 598, 448, 299]);
        assert_eq!(convs.iter().map(|c| c.macs).sum::<u64>(), 665_784_864);
        assert_eq!(convs.iter().map(|c| c.weights).sum::<u64>(), 2_332_704);
        // MLPerf Tiny ResNet-8 (A9.2): ≈ 12.5 M MACs.
        let (macs, _, _) = model("resnet8").unwrap().totals().unwrap();
        assert_eq!(macs, 12_501_632);
        // ResNet-50 v1.5 (A9.4): 4.09 G MACs, 25.5 M weights.
        let (macs, weights, _) = model("resnet50").unwrap().totals().unwrap();
        assert_eq!(((macs as f64) / 1e7).round(), 409.0);
        assert_eq!(((weights as f64) / 1e5).round(), 255.0);
    }

    #[test]
    fn resnet18_shapes_follow_the_table() {
        let n = model("resnet18").unwrap();
        let s = n.stats().unwrap();
        let at = |name: &str| s[n.find(name).unwrap()].out;
        assert_eq!(at("conv1"), Shape::new(64, 112, 112));
        assert_eq!(at("maxpool"), Shape::new(64, 56, 56));
        assert_eq!(at("layer2.0.downsample"), Shape::new(128, 28, 28));
        assert_eq!(at("layer4.1.relu"), Shape::new(512, 7, 7));
        assert_eq!(at("fc"), Shape::vector(1000));
    }
}
