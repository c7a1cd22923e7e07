#!/usr/bin/env python3
"""Worker of test_quant_activations.py (and a script on its own): full-int8 graphs made by
``tf-run --calibrate`` + ``tf-quant int8 --activations`` against the float graph and TFLite.

It runs in its own process because the int8 kernels need oneDNN on (``TF_ENABLE_ONEDNN_OPTS=1``,
read when TensorFlow is imported) while the rest of the TF test tier runs with it off.

    TF_ENABLE_ONEDNN_OPTS=1 .venv/bin/python tests/tf/quant_activations_worker.py OUTDIR [MODEL..]
        [--calibrations=minmax,percentile:99.99,entropy]
    TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python tests/tf/quant_activations_worker.py --legacy OUTDIR

Each model is also rewritten with ``--legacy-gtt`` (GTT's quantize_nodes graph, Requantize ranges
frozen and dynamic) and run; the second form runs only those graphs again, from the files the
first left in OUTDIR, with whatever oneDNN setting it is given (the legacy ops run either way).

For each model (seeded Keras: a small CNN, an MLP and an MLP with signed Dense inputs, trained
for a few epochs on synthetic classes, a ResNet-like block with random weights whose residual Add stays float): SavedModel ->
tf-freeze -> tf-fold (batch norms into the convolutions) -> calibration on 64 samples -> int8
graph; then on 256 held-out samples of the same distribution: logits cosine, top-1 agreement and
max abs error of the int8 graph and of TFLite's full-int8 post-training quantization (same
calibration samples) against the float graph, and the float model's accuracy on the labels.
Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("TF_TOOLS_BIN", str(REPO / "target" / "release")))
SEED = 20261204
N_CALIB, N_EVAL = 64, 256
N_CLASSES, N_TRAIN, EPOCHS = 10, 2048, 3
MIX = 0.2  # share of the class template in a sample (the rest is noise)


def tool(name, *args, stdin=None):
    r = subprocess.run([str(BIN / name), *map(str, args)], input=stdin, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(map(str, args))}: exit {r.returncode}: "
                           f"{r.stderr.decode(errors='replace').strip()}")
    return r


def cnn():
    L = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input((32, 32, 3)),
        L.Conv2D(16, 3, padding="same", activation="relu"),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(32, 3, strides=2, padding="valid", activation="relu6"),
        L.Flatten(),
        L.Dense(64, activation="relu"),
        L.Dense(10),
    ])


def mlp():
    L = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input((64,)),
        L.Dense(128, activation="relu"),
        L.Dense(128, activation="relu"),
        L.Dense(128, activation="relu"),
        L.Dense(10),
    ])


def mlp_signed():
    """Dense layers whose inputs can be negative, as in a transformer's feed-forward block: a
    Dense on a 3-D input (Keras' Tensordot: Reshape -> MatMul -> Reshape) with tanh, a
    LayerNormalization, a GELU Dense reading it and the logits reading the GELU's output."""
    L = tf.keras.layers
    return tf.keras.Sequential([
        tf.keras.Input((64,)),
        L.Reshape((4, 16)),
        L.Dense(64, activation="tanh"),
        L.LayerNormalization(),
        L.Dense(64, activation="gelu"),
        L.Flatten(),
        L.Dense(10),
    ])


def resnet_like():
    L = tf.keras.layers
    x = inp = tf.keras.Input((32, 32, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(32, 3, padding="same", use_bias=False)(x)))
    for _ in range(2):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(32, 3, padding="same", use_bias=False)(x)))
        y = L.BatchNormalization()(L.Conv2D(32, 3, padding="same", use_bias=False)(y))
        x = L.ReLU()(L.Add()([x, y]))
    # A projection block (ResNet50's first block of each stage): strided 1x1 shortcut, linear.
    s = L.BatchNormalization()(L.Conv2D(64, 1, strides=2, use_bias=False)(x))
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 3, strides=2, padding="same",
                                                 use_bias=False)(x)))
    y = L.BatchNormalization()(L.Conv2D(64, 3, padding="same", use_bias=False)(y))
    x = L.ReLU()(L.Add()([s, y]))
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Dense(10)(x))


def mobilenet_like():
    """MobileNetV2's pattern: 1x1 expand (Relu6), 3x3 depthwise (bias, Relu6; stride 2 and
    multiplier 2 in the last block, after a ZeroPadding2D as Keras' MobileNetV2 has it), 1x1
    linear projection, and two linear-bottleneck blocks
    whose residual Add has no Relu after it. No batch norms: a few epochs of training would
    leave their moving statistics far from the batches'."""
    L = tf.keras.layers
    x = inp = tf.keras.Input((32, 32, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.Conv2D(16, 1)(x)
    for _ in range(2):
        y = L.Conv2D(48, 1, activation="relu6")(x)
        y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
        x = L.Add()([x, L.Conv2D(16, 1)(y)])
    x = L.Conv2D(32, 1, activation="relu6")(x)
    # Keras' MobileNetV2 pads explicitly before a strided depthwise convolution.
    x = L.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="valid", depth_multiplier=2,
                          activation="relu6")(x)
    x = L.Conv2D(24, 1)(x)
    x = L.Conv2D(16, 1, activation="relu6")(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Dense(10)(x))


MODELS = {"cnn": cnn, "mlp": mlp, "mlp_signed": mlp_signed, "resnet_like": resnet_like,
          "mobilenet_like": mobilenet_like}
# Trained on the synthetic classes; resnet_like keeps random weights (it is there for the
# structure: residual Adds fused into the convolutions, with unsigned and signed summands).
TRAINED = ("cnn", "mlp", "mlp_signed", "mobilenet_like")
# The tanh/GELU model learns the classes more slowly.
EPOCHS_OF = {"mlp_signed": 10}


# Ops that would be float kernels in an int8 graph (the candidates of the rewrite).
FLOAT_KERNEL_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")


def randomize_batch_norms(model, rng):
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape).astype(np.float32),
                               rng.normal(0, 0.1, b.shape).astype(np.float32),
                               rng.normal(0, 0.1, m.shape).astype(np.float32),
                               rng.uniform(0.5, 1.5, v.shape).astype(np.float32)])


def templates(shape, rng):
    """One low-frequency pattern in [0, 1) per class: 4x4 blocks for images, a vector otherwise."""
    if len(shape) == 3:
        h, w, c = shape
        coarse = rng.uniform(0, 1, (N_CLASSES, 4, 4, c))
        return np.repeat(np.repeat(coarse, h // 4, axis=1), w // 4, axis=2).astype(np.float32)
    return rng.uniform(0, 1, (N_CLASSES, *shape)).astype(np.float32)


def samples(tmpl, n, rng):
    """Labelled inputs in [0, 1) (non-negative, as after the usual rescaling): half the class's
    template, half uniform noise, so that the classes overlap yet can be told apart."""
    y = rng.integers(0, N_CLASSES, n)
    x = MIX * tmpl[y] + (1 - MIX) * rng.uniform(0, 1, (n, *tmpl.shape[1:]))
    return x.astype(np.float32), y


def train(model, tmpl, rng, epochs=EPOCHS):
    """A few epochs on the synthetic classes (fixed seed): logits with a real margin between the
    classes, unlike random weights, whose near-tied logits make top-1 agreement a coin toss."""
    x, y = samples(tmpl, N_TRAIN, rng)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=epochs, shuffle=False, verbose=0)


def freeze_and_fold(model, d: Path, fold=True):
    """`model` saved in directory d (made), then tf-freeze and (`fold`) tf-fold (batch norms
    into the convolutions): d/frozen.pb, returned as a GraphDef."""
    d.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(model, str(d / "saved_model"))
    frozen = tool("tf-freeze", d / "saved_model").stdout
    (d / "frozen.pb").write_bytes(tool("tf-fold", stdin=frozen).stdout if fold else frozen)
    return tf.compat.v1.GraphDef.FromString((d / "frozen.pb").read_bytes())


def run_graph(gd, feed_name, fetch, x):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g) as s:
        return s.run(fetch, {feed_name: x})


def throughput(gd, feed_name, fetch, x, seconds=2.0):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g) as s:
        s.run(fetch, {feed_name: x})
        s.run(fetch, {feed_name: x})
        times, t_end = [], time.perf_counter() + seconds
        while len(times) < 3 or time.perf_counter() < t_end:
            t = time.perf_counter()
            s.run(fetch, {feed_name: x})
            times.append(time.perf_counter() - t)
    return x.shape[0] / sorted(times)[len(times) // 2]


def metrics(ref, got):
    ref, got = ref.reshape(len(ref), -1).astype(np.float64), got.reshape(len(got), -1).astype(np.float64)
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-30)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "top1": float(np.mean(ref.argmax(1) == got.argmax(1))),
            "max_abs_err": float(np.abs(ref - got).max()),
            "ref_max_abs": float(np.abs(ref).max())}


def margin(logits):
    """Median gap between the largest and the second largest logit, relative to max |logit|."""
    top = np.sort(logits.reshape(len(logits), -1), axis=1)
    return float(np.median(top[:, -1] - top[:, -2]) / np.abs(logits).max())


def tflite_int8(model, calib):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # int8 inside, float in and out (the converter's default I/O types)
    interp = tf.lite.Interpreter(model_content=conv.convert())
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    return interp, inp, out


def run_tflite(tfl, x):
    interp, inp, out = tfl
    ys = []
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
        ys.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(ys)


def one(name, outdir: Path, with_tflite=True, calibrations=()):
    rng = np.random.default_rng(SEED)
    tf.keras.utils.set_random_seed(SEED)
    model = MODELS[name]()
    randomize_batch_norms(model, rng)
    tmpl = templates(model.input_shape[1:], rng)
    if name in TRAINED:
        train(model, tmpl, rng, EPOCHS_OF.get(name, EPOCHS))
    (calib, _), (held, labels) = samples(tmpl, N_CALIB, rng), samples(tmpl, N_EVAL, rng)
    d = outdir / name
    gd = freeze_and_fold(model, d)
    feed = [n.name for n in gd.node if n.op == "Placeholder"][0]
    outs = [n.name for n in gd.node if "_tf_tools_outputs" in n.attr]
    fetch = outs[0] + ":0"
    np.savez(d / "calib.npz", **{feed: calib})
    tool("tf-run", d / "frozen.pb", "--calibrate", d / "calib.npz", "-o", d / "ranges.json", "-q")
    t = time.perf_counter()
    # Every MatMul, however small: these models test the kernels (by default a MatMul under
    # 512x512 weights stays float, being faster so).
    tool("tf-quant", "int8", "--activations", d / "ranges.json", d / "frozen.pb",
         "--min-matmul-weights", "0", "-o", d / "int8.pb", "--report", d / "report.json")
    rewrite_s = time.perf_counter() - t
    rep = json.loads((d / "report.json").read_text())["changes"]["quant"]["activations"]
    gq = tf.compat.v1.GraphDef.FromString((d / "int8.pb").read_bytes())
    ref = run_graph(gd, feed + ":0", fetch, held)
    got = run_graph(gq, feed + ":0", fetch, held)
    np.savez(d / "held.npz", x=held)
    (d / "io.json").write_text(json.dumps({"feed": feed + ":0", "fetch": fetch}))
    legacy = {}
    for rq in ("frozen", "dynamic"):
        tool("tf-quant", "int8", "--activations", d / "ranges.json", f"--legacy-gtt={rq}",
             d / "frozen.pb", "-o", d / f"legacy_{rq}.pb", "--report", d / f"legacy_{rq}.json")
        lrep = json.loads((d / f"legacy_{rq}.json").read_text())["changes"]["quant"]["activations"]
        gl = tf.compat.v1.GraphDef.FromString((d / f"legacy_{rq}.pb").read_bytes())
        legacy[rq] = {"metrics": metrics(ref, run_graph(gl, feed + ":0", fetch, held)),
                      "chains": len(lrep["int8"]), "eight_bit_ops": lrep["eight_bit_ops"],
                      "float": [(f["node"], f["why"]) for f in lrep["float"]]}
    res = {"model": name, "int8_nodes": len(rep["int8"]), "int8_pools": len(rep["int8_pools"]),
           "float_nodes": [(f["node"], f["why"]) for f in rep["float"]],
           "kernels": sorted(k["kernel"] for k in rep["int8"]),
           "float_ops": sorted(n.op for n in gq.node if n.op in FLOAT_KERNEL_OPS),
           "quantize_nodes": rep["quantize_nodes"],
           "int8_kernels": [{k: e.get(k) for k in ("node", "kernel", "input_type", "input_mode",
                                                   "input_range", "folded_pad")}
                            for e in rep["int8"]],
           "ops": sorted({n.op for n in gq.node if "Quantiz" in n.op}),
           "all_ops": sorted({n.op for n in gq.node}),
           "int8": metrics(ref, got), "rewrite_s": rewrite_s, "legacy": legacy,
           "float_accuracy": float(np.mean(ref.reshape(len(ref), -1).argmax(1) == labels)),
           "float_margin_median": margin(ref)}
    if with_tflite:
        res["tflite"] = metrics(ref, run_tflite(tflite_int8(model, calib), held))
    for rule in calibrations:
        tool("tf-quant", "int8", "--activations", d / "ranges.json", d / "frozen.pb",
             "--min-matmul-weights", "0", "--calibration", rule, "-o", d / "int8_rule.pb")
        g = tf.compat.v1.GraphDef.FromString((d / "int8_rule.pb").read_bytes())
        res.setdefault("by_calibration", {})[rule] = metrics(ref, run_graph(g, feed + ":0",
                                                                            fetch, held))
    return res


def legacy_only(outdir: Path):
    """Runs the float and --legacy-gtt graphs the main form left in OUTDIR."""
    out = {}
    for d in sorted(p for p in outdir.iterdir() if (p / "io.json").exists()):
        io = json.loads((d / "io.json").read_text())
        held = np.load(d / "held.npz")["x"]
        gd = tf.compat.v1.GraphDef.FromString((d / "frozen.pb").read_bytes())
        ref = run_graph(gd, io["feed"], io["fetch"], held)
        out[d.name] = {}
        for rq in ("frozen", "dynamic"):
            gl = tf.compat.v1.GraphDef.FromString((d / f"legacy_{rq}.pb").read_bytes())
            out[d.name][rq] = metrics(ref, run_graph(gl, io["feed"], io["fetch"], held))
    return out


def main():
    if sys.argv[1] == "--legacy":
        print(json.dumps({"tf": tf.__version__,
                          "onednn": os.environ["TF_ENABLE_ONEDNN_OPTS"],
                          "legacy": legacy_only(Path(sys.argv[2]))}, indent=1))
        return
    # --calibrations=R1,R2: also each --calibration rule's int8 graph against float
    rules = [a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--calibrations=")]
    args = [a for a in sys.argv[1:] if not a.startswith("--calibrations=")]
    outdir = Path(args[0])
    names = args[1:] or list(MODELS)
    res = [one(n, outdir, calibrations=rules[0] if rules else ()) for n in names]
    print(json.dumps({"tf": tf.__version__, "results": res}, indent=1))


if __name__ == "__main__":
    main()
