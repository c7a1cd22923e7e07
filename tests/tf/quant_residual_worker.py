#!/usr/bin/env python3
"""Worker of test_quant_residual.py: residual Adds that are not the textbook ResNet block,
through tf-freeze, tf-fold, ``tf-run --calibrate`` and ``tf-quant int8 --activations``, then
the int8 graph run by TensorFlow (oneDNN on) next to the float graph.

    TF_ENABLE_ONEDNN_OPTS=1 .venv/bin/python tests/tf/quant_residual_worker.py OUTDIR [CASE..]

Prints one JSON line per case as soon as the case is done (flushed), so that when TensorFlow
crashes the process the caller knows which case did it and can go on with the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The environment and helpers of the other int8 worker (its import sets oneDNN on and imports
# TensorFlow).
from quant_activations_worker import freeze_and_fold, np, randomize_batch_norms, tf, tool

SEED = 20261205
# 48 calibration samples: tf-run runs them as 32 + 16 rows, so the recorded shapes have batch -1.
N_CALIB, N_HELD = 48, 16
L = tf.keras.layers


def conv_bn(x, c, k=3, s=1, relu=True):
    x = L.BatchNormalization()(L.Conv2D(c, k, strides=s, padding="same", use_bias=False)(x))
    return L.ReLU()(x) if relu else x


def branch(x, c=16):
    """The two convolutions of an identity block, the second linear."""
    return conv_bn(conv_bn(x, c), c, relu=False)


def res(x, y):
    return L.ReLU()(L.Add()([x, y]))


def head(x):
    return L.Dense(10)(L.GlobalAveragePooling2D()(x))


def textbook(inp):
    """Two identity blocks (the baseline: both Adds fused)."""
    x = conv_bn(inp, 16)
    x = res(x, branch(x))
    return head(res(x, branch(x)))


def side_conv(inp):
    """The shortcut also feeds a 1x1 convolution head that may run after the block."""
    x = conv_bn(inp, 16)
    a = res(x, branch(x))
    return head(L.Concatenate()([a, conv_bn(x, 8, k=1)]))


def side_pool(inp):
    """The shortcut also feeds a max pool (an int8 QuantizedMaxPool) outside the block."""
    x = conv_bn(inp, 16)
    a = res(x, branch(x))
    return head(L.Concatenate()([L.MaxPooling2D()(a), L.MaxPooling2D()(x)]))


def shared_shortcut(inp):
    """One shortcut tensor added in two blocks."""
    x = conv_bn(inp, 16)
    return head(L.Concatenate()([res(x, branch(x)), res(x, branch(x))]))


def dense_concat(inp):
    """DenseNet-like: the shortcut also concatenated after the Add."""
    x = conv_bn(inp, 16)
    a = res(x, branch(x))
    return head(conv_bn(L.Concatenate()([a, x]), 16))


def single_conv(inp):
    """relu(conv(x) + x): the convolution's own input is the summand."""
    x = conv_bn(inp, 16)
    return head(res(x, conv_bn(x, 16, relu=False)))


def summand_is_input(inp):
    """relu(y1 + conv(y1)) with y1 the block's first convolution: again input == summand."""
    x = conv_bn(inp, 16)
    y1 = conv_bn(x, 16)
    return head(res(y1, conv_bn(y1, 16, relu=False)))


def projection(inp):
    """An identity block, then a projection block (both Add inputs are convolution chains,
    the shortcut a linear strided 1x1: qint8 summand)."""
    x = conv_bn(inp, 16)
    x = res(x, branch(x))
    s = conv_bn(x, 32, k=1, s=2, relu=False)
    y = conv_bn(conv_bn(x, 32, s=2), 32, relu=False)
    return head(res(s, y))


def input_summand(inp):
    """The graph input is the summand: its QuantizeV2 is also the first convolution's input."""
    x = res(inp, conv_bn(conv_bn(inp, 8), 3, relu=False))
    return head(conv_bn(x, 16))


def tanh_summand(inp):
    """A float, signed summand (tanh): quantized to qint8 by a QuantizeV2, signed sum."""
    t = L.Activation("tanh")(conv_bn(inp, 16, relu=False))
    return head(res(t, branch(conv_bn(inp, 16))))


def maxpool_shortcut(inp):
    """The shortcut is a max pool's output (QuantizedMaxPool in the int8 graph)."""
    x = L.MaxPooling2D()(conv_bn(inp, 16))
    return head(res(x, branch(x)))


def merged_side(inp):
    """The shortcut's other readers (a 1x1 convolution and a float average pool) feed the
    block's second convolution: they run before it, so the Add is fused."""
    x = conv_bn(inp, 16)
    y = L.Concatenate()([conv_bn(x, 16), conv_bn(x, 8, k=1),
                         L.AveragePooling2D(3, 1, padding="same")(x)])
    return head(res(x, conv_bn(y, 16, relu=False)))


def batch_mean(inp):
    """The summand is the mean over the batch ([1, …], broadcast by the Add), calibrated on
    one sample: the recorded shapes cannot tell it from the sum's."""
    x = conv_bn(inp, 16)
    s = L.Lambda(lambda t: tf.reduce_mean(t, 0, keepdims=True))(x)
    return head(res(s, branch(x)))


class CumsumBias(L.Layer):
    """A learned [1, H, W, C] tensor through Cumsum: computed from constants only, by an op
    tf-fold leaves alone (TensorFlow folds it into a Const when it loads the graph)."""

    def build(self, shape):
        self.w = self.add_weight(name="w", shape=(1, *shape[1:]), initializer="random_uniform")

    def call(self, x):
        return tf.math.cumsum(self.w, axis=1)


def const_summand(inp):
    """The summand depends on no input (a graph of batch 1, where its shape is the sum's)."""
    x = conv_bn(inp, 16)
    return head(res(CumsumBias()(x), branch(x)))


def twin_summands(inp):
    """Two Relus of one tensor (TensorFlow merges them when it loads the graph), each the
    shortcut of one block; no batch norms, and tf-fold (which would merge them) is skipped."""
    def conv(c, act=None):
        return L.Conv2D(c, 3, padding="same", activation=act)
    x = conv(16)(inp)
    p1, p2 = L.ReLU()(x), L.ReLU()(x)
    r1 = res(p1, conv(16)(conv(16, "relu")(p1)))
    r2 = res(p2, conv(16)(conv(16, "relu")(p2)))
    return head(L.Concatenate()([r1, r2]))


def bottleneck(x, c=16):
    """MobileNetV2's block: 1x1 expand (Relu6), depthwise (Relu6), 1x1 linear projection,
    added to the input with no Relu after."""
    y = L.Conv2D(2 * c, 1, activation="relu6")(x)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    return L.Add()([x, L.Conv2D(c, 1)(y)])


def linear_chain(inp):
    """Two linear bottlenecks in a row: the first sum (offset-coded) is the second's shortcut
    and its expand convolution's input."""
    x = conv_bn(inp, 16, relu=False)
    return head(bottleneck(bottleneck(x)))


def linear_side(inp):
    """A linear bottleneck's sum also read by a later 3x3 convolution outside the next block:
    the next Add stays float."""
    y1 = bottleneck(conv_bn(inp, 16, relu=False))
    return head(L.Concatenate()([bottleneck(y1), conv_bn(y1, 8)]))


def two_outputs(inp):
    """The block input is also a model output."""
    x = conv_bn(inp, 16)
    return [head(res(x, branch(x))), x]


CASES = {f.__name__: f for f in (textbook, side_conv, side_pool, shared_shortcut, dense_concat,
                                 single_conv, summand_is_input, projection, input_summand,
                                 tanh_summand, maxpool_shortcut, merged_side, batch_mean,
                                 const_summand, twin_summands, linear_chain, linear_side,
                                 two_outputs)}
# Calibration samples where not N_CALIB.
N_CALIB_OF = {"batch_mean": 1, "const_summand": 1}
# Graphs whose input has a fixed batch of 1 (run at batch 1 only).
STATIC_BATCH_1 = ("const_summand",)
# Frozen without tf-fold.
NOT_FOLDED = ("twin_summands",)


def cosine_min(ref, got):
    ref = ref.reshape(len(ref), -1).astype(np.float64)
    got = got.reshape(len(got), -1).astype(np.float64)
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
                                  + 1e-30)
    return float(cos.min())


def session(gd):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    return tf.compat.v1.Session(graph=g)


def one(name, outdir: Path):
    rng = np.random.default_rng(SEED)
    tf.keras.utils.set_random_seed(SEED)
    inp = tf.keras.Input((32, 32, 3), batch_size=1 if name in STATIC_BATCH_1 else None)
    model = tf.keras.Model(inp, CASES[name](inp))
    randomize_batch_norms(model, rng)
    calib = rng.uniform(0, 1, (N_CALIB_OF.get(name, N_CALIB), 32, 32, 3)).astype(np.float32)
    held = rng.uniform(0, 1, (N_HELD, 32, 32, 3)).astype(np.float32)
    d = outdir / name
    gd = freeze_and_fold(model, d, fold=name not in NOT_FOLDED)
    feed = [n.name for n in gd.node if n.op == "Placeholder"][0] + ":0"
    outs = [n.name + ":0" for n in gd.node if "_tf_tools_outputs" in n.attr]
    np.savez(d / "calib.npz", **{feed[:-2]: calib})
    tool("tf-run", d / "frozen.pb", "--calibrate", d / "calib.npz", "-o", d / "ranges.json", "-q")
    tool("tf-quant", "int8", "--activations", d / "ranges.json", d / "frozen.pb",
         "--min-matmul-weights", "0", "-o", d / "int8.pb", "--report", d / "report.json")
    rep = json.loads((d / "report.json").read_text())["changes"]["quant"]["activations"]
    ranges = json.loads((d / "ranges.json").read_text())["tensors"]
    gq = tf.compat.v1.GraphDef.FromString((d / "int8.pb").read_bytes())
    qnames = {n.name for n in gq.node}
    # The logits, and every input of a float residual Add (the shortcut and the branch) that
    # still exists by name in the int8 graph (the summand's name now is a Dequantize), all
    # fetched in the same Session.run.
    adds = [n for n in gd.node if n.op in ("Add", "AddV2")]
    extra = sorted({i if ":" in i else i + ":0" for a in adds for i in a.input
                    if not i.startswith("^") and i.split(":")[0] in qnames} - set(outs))
    fetch = outs + extra
    # Batches of 16, 7 and 1 in one session (the same for both graphs), the first two twice.
    batches = [held, held, held[:7], held[:7], held[7:8]]
    if name in STATIC_BATCH_1:
        batches = [held[:1], held[:1], held[1:2], held[1:2], held[2:3]]
    with session(gd) as s:
        ref = [s.run(fetch, {feed: b}) for b in batches]
    with session(gq) as s:
        got = [s.run(fetch, {feed: b}) for b in batches]
    identical = all(np.array_equal(a, b) for i in (0, 2) for a, b in zip(got[i], got[i + 1]))
    cos = {t: cosine_min(r, q) for t, r, q in zip(fetch, ref[0], got[0])}
    by_batch = {}
    for b, r, q in zip(batches, ref, got):
        c = min(cosine_min(x, y) for x, y in zip(r, q))
        by_batch[str(len(b))] = min(c, by_batch.get(str(len(b)), 1.0))
    return {
        "case": name,
        "kernels": sorted(k["kernel"] for k in rep["int8"]),
        "summands": [k["summand"] for k in rep["int8"] if "summand" in k],
        "float": [(f["node"], f["op"], f["why"]) for f in rep["float"]],
        "adds_left": sum(n.op in ("Add", "AddV2") for n in gq.node),
        "outputs": outs,
        "fetched": fetch,
        "cosine": cos,
        "outputs_cosine": min(cos[t] for t in outs),
        "finite": all(bool(np.isfinite(v).all()) for r in got for v in r),
        "summand_shapes": {k["summand"][0]: ranges.get(k["summand"][0], {}).get("shape")
                           for k in rep["int8"] if "summand" in k},
        "repeat_identical": identical,
        "cosine_by_batch": by_batch,
    }


def main():
    outdir = Path(sys.argv[1])
    for name in sys.argv[2:] or list(CASES):
        print(f"case {name}", file=sys.stderr, flush=True)
        print(json.dumps(one(name, outdir)), flush=True)


if __name__ == "__main__":
    main()
