#!/usr/bin/env python3
"""Generate realistic-size TensorFlow models under build/models/<name>/ (not committed).

    .venv/bin/python scripts/gen_models.py [--out build/models] [name ...]
    .venv/bin/python scripts/gen_models.py --list
    .venv/bin/python scripts/gen_models.py --force resnet50      # rebuild even if present

Models (tf_keras, Keras 2; random seeded weights, nothing is downloaded):

  mobilenetv2   tf_keras.applications.MobileNetV2(weights=None, input_shape=(96,96,3))
  resnet50      tf_keras.applications.ResNet50(weights=None, input_shape=(224,224,3))
  transformer   int32 tokens [?,32] -> token + position Embedding(1000, 64) -> 2 encoder blocks
                (MultiHeadAttention(4 heads, key_dim 16) -> Add -> LayerNorm -> Dense(128, gelu)
                -> Dense(64) -> Add -> LayerNorm) -> GlobalAveragePooling1D -> Dense(4)

Each model directory holds, like a tests/fixtures case (see tests/fixtures/README.md):

  saved_model/   tf.saved_model.save of the Keras model (signature serving_default)
  frozen.pb      that signature frozen with convert_variables_to_constants_v2, nodes in a
                 deterministic topological order
  io.npz         inputs (batch of 2) and the outputs TF computed, keyed like the fixtures:
                 signature keys for the SavedModel, 'node__port' for frozen.pb tensors
  case.json      inputs, outputs, models (saved_model, frozen), notes

Batch-norm moving statistics are calibrated on random data (momentum 0, one training-mode
call) and gamma/beta randomized, so BN is far from the identity yet activations stay well
scaled through 50 layers (outputs are meaningful to compare at 1e-5 relative).

Idempotent: a model whose case.json exists is skipped (case.json is written last, and every
model is built in a temporary directory renamed into place). Each model is built in its own
fresh process with fixed seeds, one thread, oneDNN off.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "tf"))

MODELS = ["mobilenetv2", "resnet50", "transformer"]

WORKER_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_DETERMINISTIC_OPS": "1",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
}
SEED = 20240607
IO_CONVENTION = (
    "io.npz keys: a graph tensor 'node:port' is stored under 'node__port' (the last ':' "
    "becomes '__'); a SavedModel serving_default signature input/output is stored under its "
    "signature key verbatim. Every input/output entry names its npz key ('key'). Unknown "
    "dimensions are -1.")


def tensor_key(name: str) -> str:
    node, _, port = name.rpartition(":")
    if not node:
        node, port = name, "0"
    return f"{node}__{port}"


def model_dir(out: Path, name: str) -> Path:
    return Path(out) / name


def is_complete(out: Path, name: str) -> bool:
    d = model_dir(out, name)
    return (d / "case.json").is_file() and (d / "frozen.pb").is_file() \
        and (d / "io.npz").is_file() and (d / "saved_model" / "saved_model.pb").is_file()


def ensure(names=None, out: Path | None = None, python: str | None = None) -> Path:
    """Build the named models (default: all) unless present; returns the output root.

    For other scripts and pytest fixtures: runs this file in a subprocess (so the caller's
    TensorFlow session state does not matter)."""
    out = Path(out or REPO / "build" / "models")
    names = list(names or MODELS)
    missing = [n for n in names if not is_complete(out, n)]
    if missing:
        subprocess.run([python or sys.executable, __file__, "--out", str(out), *missing],
                       check=True)
    return out


# =============================================================================
# driver (no TensorFlow here)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models to build (default: all): {', '.join(MODELS)}")
    ap.add_argument("--out", default=str(REPO / "build" / "models"),
                    help="output root (default: build/models)")
    ap.add_argument("--force", action="store_true", help="rebuild models that exist")
    ap.add_argument("--list", action="store_true", help="list the model names")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(MODELS))
        return 0
    if args._worker:
        return worker(args._worker, Path(args._dir))
    names = args.names or MODELS
    bad = [n for n in names if n not in MODELS]
    if bad:
        ap.error(f"unknown model(s): {', '.join(bad)} (known: {', '.join(MODELS)})")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if is_complete(out, name) and not args.force:
            print(f"[gen_models] {name}: present, skipped ({out / name})", flush=True)
            continue
        t0 = time.time()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
        try:
            env = dict(os.environ, **WORKER_ENV)
            r = subprocess.run([sys.executable, __file__, "--_worker", name, "--_dir", str(tmp)],
                               env=env)
            if r.returncode != 0:
                raise RuntimeError(f"worker for {name} failed (exit {r.returncode})")
            dest = out / name
            if dest.exists():
                shutil.rmtree(dest)
            tmp.chmod(0o755)
            tmp.rename(dest)
            size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
            print(f"[gen_models] {name}: {size / 1e6:.1f} MB in {time.time() - t0:.0f}s "
                  f"({dest})", flush=True)
        except Exception as e:  # noqa: BLE001
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"[gen_models] {name}: FAILED: {e}", file=sys.stderr, flush=True)
            return 1
    return 0


# =============================================================================
# worker (imports TensorFlow)

tf = None
np = None


def _import_tf():
    global tf, np
    import numpy
    import tensorflow
    tf = tensorflow
    np = numpy
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")


def calibrate_bn(model, calib, rng):
    """Moving statistics = statistics of a random calibration batch; gamma/beta randomized."""
    import tf_keras as keras
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    for l in bns:
        l.momentum = 0.0
    model(calib, training=True)
    for l in bns:
        gamma, beta, mean, var = l.get_weights()
        l.set_weights([
            rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
            rng.uniform(-0.2, 0.2, beta.shape).astype(np.float32),
            mean, var,
        ])
        l.momentum = 0.99
    return len(bns)


def build_mobilenetv2(rng):
    import tf_keras as keras
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    n = calibrate_bn(model, rng.standard_normal((8, 96, 96, 3)).astype(np.float32), rng)
    feeds = rng.standard_normal((2, 96, 96, 3)).astype(np.float32)
    return model, feeds, (
        f"tf_keras.applications.MobileNetV2(weights=None, input_shape=(96,96,3)), 1000 classes, "
        f"softmax; {n} BatchNormalization layers with moving statistics calibrated on a random "
        f"batch and randomized gamma/beta; Keras' seeded initializers otherwise.")


def build_resnet50(rng):
    import tf_keras as keras
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    n = calibrate_bn(model, rng.standard_normal((4, 224, 224, 3)).astype(np.float32), rng)
    feeds = rng.standard_normal((2, 224, 224, 3)).astype(np.float32)
    return model, feeds, (
        f"tf_keras.applications.ResNet50(weights=None, input_shape=(224,224,3)), 1000 classes, "
        f"softmax; {n} BatchNormalization layers with moving statistics calibrated on a random "
        f"batch and randomized gamma/beta; Keras' seeded initializers otherwise.")


def build_transformer(rng):
    import tf_keras as keras
    L = keras.layers
    seq, vocab, dim, heads, ff = 32, 1000, 64, 4, 128

    class PositionEmbedding(L.Layer):
        """token embedding + learned position embedding (tf.range over the dynamic length)."""

        def __init__(self, **kw):
            super().__init__(**kw)
            self.tok = L.Embedding(vocab, dim, name="tok")
            self.pos = L.Embedding(seq, dim, name="pos")

        def call(self, x):
            n = tf.shape(x)[-1]
            return self.tok(x) + self.pos(tf.range(n))

    tok = keras.Input((seq,), dtype="int32", name="tokens")
    x = PositionEmbedding(name="embed")(tok)
    for i in range(2):
        a = L.MultiHeadAttention(num_heads=heads, key_dim=dim // heads, name=f"mha{i}")(x, x)
        x = L.LayerNormalization(name=f"ln{i}a")(L.Add(name=f"res{i}a")([x, a]))
        f = L.Dense(ff, activation="gelu", name=f"ff{i}a")(x)
        f = L.Dense(dim, name=f"ff{i}b")(f)
        x = L.LayerNormalization(name=f"ln{i}b")(L.Add(name=f"res{i}b")([x, f]))
    x = L.GlobalAveragePooling1D(name="pool")(x)
    out = L.Dense(4, name="logits")(x)
    model = keras.Model(tok, out, name="transformer")
    for w in model.weights:
        if "gamma" in w.name:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
        elif "beta" in w.name or "bias" in w.name:
            w.assign(rng.uniform(-0.2, 0.2, w.shape).astype(np.float32))
    feeds = rng.randint(0, vocab, size=(2, seq)).astype(np.int32)
    return model, feeds, (
        "tf_keras Functional transformer encoder: tokens int32 [None,32] -> token Embedding"
        "(1000,64) + position Embedding(32,64) over tf.range(tf.shape(tokens)[-1]) -> 2 x "
        "(MultiHeadAttention(4 heads, key_dim 16) -> Add -> LayerNormalization -> Dense(128, "
        "gelu) -> Dense(64) -> Add -> LayerNormalization) -> GlobalAveragePooling1D -> Dense(4) "
        "('logits'); seeded initializers, LayerNorm gamma/beta and biases randomized.")


BUILDERS = {"mobilenetv2": build_mobilenetv2, "resnet50": build_resnet50,
            "transformer": build_transformer}


def spec_of(name, dtype, shape, key):
    return {name: {"dtype": dtype, "shape": [(-1 if d is None else int(d)) for d in shape],
                   "key": key}}


def worker(name: str, d: Path) -> int:
    _import_tf()
    import random

    import tf_keras as keras
    from gen_fixtures import dump_json, topo_sort_nodes
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    random.seed(SEED)
    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    keras.utils.set_random_seed(SEED)
    rng = np.random.RandomState(SEED)

    model, x, notes = BUILDERS[name](rng)
    in_key = model.inputs[0].name.split(":")[0]
    sm_dir = d / "saved_model"
    tf.saved_model.save(model, str(sm_dir))
    assets = sm_dir / "assets"
    if assets.exists() and not any(assets.iterdir()):
        assets.rmdir()

    loaded = tf.saved_model.load(str(sm_dir))
    fn = loaded.signatures["serving_default"]
    sig_out = {k: v.numpy() for k, v in fn(**{in_key: tf.constant(x)}).items()}
    (out_key,) = sig_out
    sig_in_spec = fn.structured_input_signature[1][in_key]
    sig_out_spec = fn.structured_outputs[out_key]
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((sm_dir / "saved_model.pb").read_bytes())
    sig = sm.meta_graphs[0].signature_def["serving_default"]
    sig_in_name = sig.inputs[in_key].name            # e.g. serving_default_tokens:0
    sig_out_name = sig.outputs[out_key].name         # e.g. StatefulPartitionedCall:0

    frozen = convert_variables_to_constants_v2(fn)
    gd = frozen.graph.as_graph_def()
    topo_sort_nodes(gd)
    (d / "frozen.pb").write_bytes(gd.SerializeToString(deterministic=True))
    f_in = frozen.inputs[0]
    f_out = frozen.outputs[0]
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                   inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=g, config=cfg) as s:
        got = s.run(f_out.name, {f_in.name: x})
    if not np.allclose(got, sig_out[out_key], rtol=1e-5, atol=1e-6):
        raise AssertionError(f"{name}: frozen output differs from the signature output")

    io = {in_key: x, out_key: sig_out[out_key],
          tensor_key(f_in.name): x, tensor_key(f_out.name): got}
    np.savez(d / "io.npz", **{k: io[k] for k in sorted(io)})

    sm_inputs = spec_of(sig_in_name, sig_in_spec.dtype.name, sig_in_spec.shape.as_list(), in_key)
    sm_inputs[sig_in_name]["signature_key"] = in_key
    sm_outputs = spec_of(sig_out_name, sig_out_spec.dtype.name, sig_out_spec.shape.as_list(),
                         out_key)
    sm_outputs[sig_out_name]["signature_key"] = out_key
    fr_inputs = spec_of(f_in.name, f_in.dtype.name, f_in.shape.as_list(), tensor_key(f_in.name))
    fr_outputs = spec_of(f_out.name, f_out.dtype.name, f_out.shape.as_list(),
                         tensor_key(f_out.name))
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()) + ["case.json"]
    files.sort()
    info = {}
    for f in files:
        if f == "case.json":
            info[f] = {"format": "json", "desc": "this file"}
        elif f == "frozen.pb":
            info[f] = {"format": "GraphDef",
                       "desc": "the serving_default signature frozen with "
                               "convert_variables_to_constants_v2; nodes in a deterministic "
                               "topological order (ties by name)"}
        elif f == "io.npz":
            info[f] = {"format": "npz", "desc": "inputs and the outputs TF computed"}
        elif f.endswith("saved_model.pb"):
            info[f] = {"format": "SavedModel", "desc": "SavedModel proto (tag 'serve')"}
        elif f.endswith("fingerprint.pb"):
            info[f] = {"format": "FingerprintDef", "desc": "SavedModel fingerprint"}
        elif f.endswith(".index"):
            info[f] = {"format": "checkpoint-index", "desc": "SavedModel variables index"}
        else:
            info[f] = {"format": "checkpoint-data", "desc": "SavedModel variables data"}
    doc = {
        "case": name,
        "kind": "savedmodel",
        "files": files,
        "file_info": info,
        "inputs": sm_inputs,
        "outputs": list(sm_outputs),
        "signature": "serving_default",
        "tags": ["serve"],
        "saved_model_dir": "saved_model",
        "io": "io.npz",
        "io_convention": IO_CONVENTION,
        "models": [
            {"name": "saved_model", "file": "saved_model", "format": "savedmodel",
             "tags": ["serve"], "signature": "serving_default",
             "inputs": sm_inputs, "outputs": sm_outputs},
            {"name": "frozen", "file": "frozen.pb", "format": "graphdef",
             "inputs": fr_inputs, "outputs": fr_outputs,
             "signature_output_of": {f_out.name: out_key}},
        ],
        "notes": notes + " Not committed (size); made by scripts/gen_models.py.",
        "generator": {"script": "scripts/gen_models.py", "seed": SEED,
                      "tensorflow": tf.__version__,
                      "env": {k: v for k, v in WORKER_ENV.items() if k.startswith("TF_")}},
    }
    (d / "case.json").write_text(dump_json(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
