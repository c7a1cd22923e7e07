#!/usr/bin/env python3
"""Generate the TensorFlow fixtures under tests/fixtures/<case>/ (and the bench model).

    .venv/bin/python scripts/gen_fixtures.py [--out tests/fixtures] [case ...]
    .venv/bin/python scripts/gen_fixtures.py --bench-out build/bench [--bench-mb 320]
    .venv/bin/python scripts/gen_fixtures.py --list

Every case is built by a fresh worker process (so TF's global counters, and
therefore generated function names, are the same whichever cases are asked
for), with fixed seeds, single-threaded kernels and oneDNN off.  Weights are
random; nothing is downloaded.

Every protobuf file a case commits (*.pb, *.meta, saved_model.pb,
fingerprint.pb) is rewritten in canonical form: fields in field-number order,
map entries sorted by key, each map entry with its key and value -- the bytes
TF's C++ ``SerializeToStringDeterministic`` produces.  TF 2.21 writes these
files from Python through upb, which does not sort map keys, so after TF wrote
a file the worker

  1. decodes it and re-encodes it with ``pbcanon.encode`` (tests/tf/pbcanon.py),
  2. checks that ``pbcanon.wire_canonical`` (which only reorders TF's own
     bytes) gives the same bytes, and that the new file decodes to a message
     equal (==) to TF's,
  3. has a separate process running the pure-python protobuf runtime
     (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, which does sort map keys
     with deterministic=True) re-serialize both TF's original file and the
     canonical one, and requires both results to be byte-identical to ours,
  4. reloads the canonical files in TF (SavedModel load, import_graph_def,
     import_meta_graph + Saver.restore) and requires the outputs recorded in
     io.npz to be reproduced bit for bit.

See tests/fixtures/README.md for the list of cases and the file conventions.
"""

from __future__ import annotations

import argparse
import warnings
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "tf"))

import pbcanon  # noqa: E402  (needs only google.protobuf)

CASES = [
    "tf1_cnn_train",
    "tf1_partitioned",
    "keras_cnn_savedmodel",
    "keras_seq_savedmodel",
    "keras_mha_savedmodel",
    "control_flow",
    "dtypes",
    "tf1_v1_checkpoint",
]

WORKER_ENV = {
    "TF_USE_LEGACY_KERAS": "1",      # tf.keras / tf.compat.v1.layers -> tf_keras (Keras 2)
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",    # plain Eigen kernels: reproducible numbers
    "TF_DETERMINISTIC_OPS": "1",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
}

SEED = 20240607
PRODUCER_NOTE = "GraphDefs written by TF 2.21 carry versions.producer 2474."
IO_CONVENTION = (
    "io.npz keys: a graph tensor 'node:port' is stored under 'node__port' (the last ':' "
    "becomes '__', e.g. 'input:0' -> 'input__0', 'dense/Softmax:0' -> 'dense/Softmax__0'); a "
    "SavedModel serving_default signature input/output is stored under its signature key "
    "verbatim (e.g. 'image'). Every input/output entry of case.json also names its npz key "
    "explicitly ('key'). Unknown dimensions are -1 in case.json shapes."
)


def tensor_key(name: str) -> str:
    node, _, port = name.rpartition(":")
    if not node:
        node, port = name, "0"
    return f"{node}__{port}"


# =============================================================================
# driver (no TensorFlow import here)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", help=f"cases to build (default: all): {', '.join(CASES)}")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures"),
                    help="fixture root (default: tests/fixtures)")
    ap.add_argument("--bench-out", help="write the (uncommitted) bench model into this dir")
    ap.add_argument("--bench-mb", type=int, default=320,
                    help="approximate size of the bench GraphDef in MB (default 320)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--keep-going", action="store_true", help="continue after a failing case")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_purecheck", help=argparse.SUPPRESS)
    ap.add_argument("--_dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.list:
        print("\n".join(CASES))
        return 0
    if args._purecheck:
        return purecheck(Path(args._purecheck))
    if args._worker:
        return worker(args._worker, Path(args._dir))
    if args.bench_out:
        gen_bench(Path(args.bench_out), args.bench_mb)
        if not args.cases:
            return 0

    cases = args.cases or CASES
    bad = [c for c in cases if c not in CASES]
    if bad:
        ap.error(f"unknown case(s): {', '.join(bad)} (known: {', '.join(CASES)})")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for case in cases:
        t0 = time.time()
        tmp = Path(tempfile.mkdtemp(prefix=f".{case}.", dir=out))
        try:
            env = dict(os.environ, **WORKER_ENV)
            env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
            r = subprocess.run([sys.executable, __file__, "--_worker", case, "--_dir", str(tmp)],
                               env=env)
            if r.returncode != 0:
                raise RuntimeError(f"worker for {case} failed (exit {r.returncode})")
            env_pure = dict(env, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
            r = subprocess.run([sys.executable, __file__, "--_purecheck", str(tmp)], env=env_pure)
            if r.returncode != 0:
                raise RuntimeError(f"pure-python canonical check for {case} failed")
            shutil.rmtree(tmp / ".orig", ignore_errors=True)
            dest = out / case
            if dest.exists():
                shutil.rmtree(dest)
            tmp.chmod(0o755)
            tmp.rename(dest)
            size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
            print(f"[gen_fixtures] {case}: {size / 1024:.0f} KiB in {time.time() - t0:.0f}s",
                  flush=True)
        except Exception as e:  # noqa: BLE001
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"[gen_fixtures] {case}: FAILED: {e}", file=sys.stderr, flush=True)
            failed.append(case)
            if not args.keep_going:
                return 1
    return 1 if failed else 0


def purecheck(tmp: Path) -> int:
    """Run under PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python.

    For every canonical protobuf file of the case: the pure-python runtime's
    deterministic serialization of the file, and of TF's original file (kept in
    .orig/), must be byte-identical to the committed file."""
    from google.protobuf.internal import api_implementation
    if api_implementation.Type() != "python":
        print(f"purecheck: protobuf runtime is {api_implementation.Type()!r}, not python",
              file=sys.stderr)
        return 1
    manifest = json.loads((tmp / ".orig" / "manifest.json").read_text())
    ok = True
    for rel, orig_rel in manifest.items():
        cls = pbcanon.message_class_for(rel)
        canon = (tmp / rel).read_bytes()
        for label, src in (("canonical", canon), ("TF original", (tmp / ".orig" / orig_rel).read_bytes())):
            m = cls()
            m.ParseFromString(src)
            pbcanon.normalize_embedded(m, lambda x: x.SerializeToString(deterministic=True))
            pure = m.SerializeToString(deterministic=True)
            if pure != canon:
                ok = False
                print(f"purecheck: {rel}: pure-python re-serialization of the {label} file "
                      f"differs: {pbcanon._first_diff('pure', pure, canon)}", file=sys.stderr)
    # sanity: the pure-python runtime really sorts map keys
    from tensorflow.core.framework import node_def_pb2
    n = node_def_pb2.NodeDef(name="n", op="Op")
    for k in ("b", "T", "_class", "a", "Tidx"):
        n.attr[k].i = 0
    if n.SerializeToString(deterministic=True) != pbcanon.encode(n):
        print("purecheck: pure-python runtime does not sort map keys", file=sys.stderr)
        ok = False
    print(f"[purecheck] {len(manifest)} protobuf file(s) of {tmp.name}: "
          f"{'identical' if ok else 'MISMATCH'}", flush=True)
    return 0 if ok else 1


# =============================================================================
# worker side (imports TensorFlow)

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


def seed_all(seed=SEED):
    import random
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def sess_config():
    return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                    inter_op_parallelism_threads=1)


class Case:
    """Collects the files, models and io tensors of one case while it is built."""

    def __init__(self, name: str, d: Path):
        self.name = name
        self.dir = d
        self.file_info: dict[str, dict] = {}
        self.io: dict[str, "np.ndarray"] = {}
        self.models: list[dict] = []
        self.meta: dict = {"case": name}
        self.pb_files: dict[str, str] = {}   # canonical rel path -> original copy rel path

    # ---- files
    def add_file(self, rel: str, fmt: str, desc: str):
        self.file_info[rel] = {"format": fmt, "desc": desc}

    def canonicalize(self, rel: str, fmt: str, desc: str):
        """Rewrite a TF-written protobuf file in canonical form (keeps the original)."""
        p = self.dir / rel
        orig = p.read_bytes()
        cls = pbcanon.message_class_for(rel)
        tf_msg = cls()
        tf_msg.ParseFromString(orig)
        m = cls()
        m.CopyFrom(tf_msg)
        n_embedded = pbcanon.normalize_embedded(m)
        canon = pbcanon.encode(m)
        # independent check: reorder the bytes upb writes for the same message
        upb_bytes = orig if not n_embedded else m.SerializeToString()
        wire = pbcanon.wire_canonical(upb_bytes, cls.DESCRIPTOR)
        if wire != canon:
            raise AssertionError(pbcanon._first_diff(f"{rel}: wire_canonical vs encode", wire, canon))
        m2 = cls()
        m2.ParseFromString(canon)
        if m2 != m:
            raise AssertionError(f"{rel}: canonical file does not decode to the canonical message")
        if n_embedded:
            if not pbcanon.embedded_equal(m2, tf_msg):
                raise AssertionError(f"{rel}: canonical file is not equal to TF's (embedded)")
        elif m2 != tf_msg:
            raise AssertionError(f"{rel}: canonical file is not message-equal to TF's")
        if len(canon) != len(orig):
            raise AssertionError(f"{rel}: canonical length {len(canon)} != TF's {len(orig)}")
        odir = self.dir / ".orig"
        orig_rel = rel.replace("/", "__")
        odir.mkdir(exist_ok=True)
        (odir / orig_rel).write_bytes(orig)
        p.write_bytes(canon)
        self.pb_files[rel] = orig_rel
        info = {"format": fmt, "desc": desc}
        info["tf_bytes_were_canonical"] = orig == canon
        n_blobs = len(list(pbcanon.embedded_blobs(m)))
        if n_blobs:
            info["embedded_messages"] = (
                f"{n_blobs} serialized CondContextDef/WhileContextDef blobs in "
                "collection_def cond_context/while_context were re-encoded canonically too "
                "(upb writes their external_values map in random order); equal as decoded "
                "messages to TF's")
        self.file_info[rel] = info
        return m

    def write_pb(self, rel: str, msg, fmt: str, desc: str):
        """Write a message (built in Python) in canonical form."""
        p = self.dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(msg.SerializeToString(deterministic=True))
        return self.canonicalize(rel, fmt, desc)

    # ---- io
    def add_io(self, key: str, value):
        value = np.asarray(value)
        if key in self.io:
            if not (self.io[key].dtype == value.dtype and self.io[key].shape == value.shape
                    and self.io[key].tobytes() == value.tobytes()):
                raise AssertionError(f"io key {key} recorded twice with different values")
        self.io[key] = value

    def add_model(self, model: dict):
        self.models.append(model)

    # ---- finish
    def finish(self, kind: str, primary: dict, notes: str, extra: dict | None = None):
        if self.io:
            np.savez(self.dir / "io.npz", **{k: self.io[k] for k in sorted(self.io)})
            self.add_file("io.npz", "npz",
                          "input and output arrays, see 'io_convention' and each model's "
                          "inputs/outputs")
        (self.dir / "case.json").write_text("")  # placeholder so it is listed
        self.add_file("case.json", "json", "this file")
        files = sorted(str(p.relative_to(self.dir)) for p in self.dir.rglob("*")
                       if p.is_file() and ".orig" not in p.relative_to(self.dir).parts)
        missing = [f for f in files if f not in self.file_info]
        if missing:
            raise AssertionError(f"undescribed files in {self.name}: {missing}")
        doc = dict(self.meta)
        doc["kind"] = kind
        doc["files"] = files
        doc["file_info"] = {f: self.file_info[f] for f in files}
        doc.update(primary)
        if self.io:
            doc["io"] = "io.npz"
            doc["io_convention"] = IO_CONVENTION
        doc["models"] = self.models
        if extra:
            doc.update(extra)
        doc["notes"] = notes
        doc["generator"] = {"script": "scripts/gen_fixtures.py", "seed": SEED,
                            "tensorflow": tf.__version__,
                            "env": {k: v for k, v in WORKER_ENV.items()
                                    if k.startswith("TF_")}}
        (self.dir / "case.json").write_text(dump_json(doc))
        (self.dir / ".orig" / "manifest.json").write_text(json.dumps(self.pb_files, indent=1))


def dump_json(obj) -> str:
    """json with 1-space indent, but lists of scalars kept on one line."""
    import re
    text = json.dumps(obj, indent=1)

    def inline(m):
        items = [x.strip() for x in m.group(1).split(",\n")]
        return "[" + ", ".join(items) + "]"
    return re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]", inline, text) + "\n"


def spec_of(name, dtype, shape, key=None):
    return {name: {"dtype": dtype, "shape": [(-1 if d is None else int(d)) for d in shape],
                   "key": key if key is not None else tensor_key(name)}}


def assert_same(a, b, what):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
        raise AssertionError(f"{what}: outputs differ ({a.dtype}{a.shape} vs {b.dtype}{b.shape}; "
                             f"max abs diff {np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.shape == b.shape else 'n/a'})")


def run_graphdef(gd, feeds: dict, fetches: list):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=g, config=sess_config()) as s:
        return s.run(fetches, feed_dict=feeds)


def rewrite_checkpoint_state(d: Path, prefix: str, fname: str = "checkpoint"):
    """TF writes absolute paths and wall-clock timestamps; keep it relative and stable."""
    (d / fname).write_text(f'model_checkpoint_path: "{prefix}"\n'
                           f'all_model_checkpoint_paths: "{prefix}"\n')


def write_pbtxt(path: Path, msg):
    from google.protobuf import text_format
    path.write_text(text_format.MessageToString(msg))


def _seed_uuid4():
    """tf_keras names LSTM implementations 'lstm_<uuid4>'; make those reproducible."""
    import random
    import uuid
    rng = random.Random(SEED)
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)


def worker(case: str, d: Path) -> int:
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    _seed_uuid4()
    _import_tf()
    d.mkdir(parents=True, exist_ok=True)
    c = Case(case, d)
    seed_all()
    BUILDERS[case](c)
    return 0


# -----------------------------------------------------------------------------
# TF1 helpers

def save_tf1(c: Case, sess, saver, graph, prefix="model.ckpt", state_file="checkpoint"):
    """Saver.save into the case dir with a relative prefix; returns the MetaGraphDef."""
    cwd = os.getcwd()
    os.chdir(c.dir)
    try:
        saver.save(sess, prefix, write_meta_graph=True, write_state=True,
                   latest_filename=state_file)
    finally:
        os.chdir(cwd)
    rewrite_checkpoint_state(c.dir, prefix, state_file)
    c.add_file(f"{prefix}.index", "checkpoint-index",
               "tensor bundle index (SSTable of BundleEntryProto), written by TF's C++ "
               "BundleWriter (not re-serialized)")
    c.add_file(f"{prefix}.data-00000-of-00001", "checkpoint-data", "tensor bundle data shard")
    c.add_file(state_file, "CheckpointState (text)",
               "checkpoint state; rewritten with the relative prefix only (TF writes absolute "
               "paths and timestamps)")


GRAPH_PB_DESC = ("the GraphDef alone (sess.graph.as_graph_def(), what tf.io.write_graph writes); "
                 "equal to model.ckpt.meta's graph_def except that the latter carries "
                 "'_output_shapes' attrs (Saver's export_meta_graph adds shapes)")


def check_meta_vs_graph(meta, gd):
    """graph.pb == meta.graph_def minus the _output_shapes attrs export_meta_graph adds."""
    m = type(gd)()
    m.CopyFrom(meta.graph_def)
    for n in m.node:
        if "_output_shapes" in n.attr:
            del n.attr["_output_shapes"]
    if m != gd:
        raise AssertionError("graph.pb differs from model.ckpt.meta's graph_def "
                             "beyond _output_shapes")


def verify_meta_restore(c: Case, meta_rel: str, prefix: str, feeds: dict, fetches: list,
                        expected: list):
    """Import the canonical .meta, restore the checkpoint, rerun inference."""
    g = tf.Graph()
    with g.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(c.dir / meta_rel))
        with tf.compat.v1.Session(graph=g, config=sess_config()) as s:
            saver.restore(s, str(c.dir / prefix))
            got = s.run(fetches, feed_dict=feeds)
    for f, a, b in zip(fetches, got, expected):
        assert_same(a, b, f"{c.name}: {meta_rel} + checkpoint, {f}")


# -----------------------------------------------------------------------------
# case 1: tf1_cnn_train

def build_tf1_cnn_train(c: Case):
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.disable_v2_behavior()   # ref variables + v1 control flow, like TF1
    v1 = tf.compat.v1
    rng = np.random.RandomState(SEED)
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        x = v1.placeholder(tf.float32, [None, 8, 8, 3], name="input")
        labels = v1.placeholder(tf.int64, [None], name="labels")
        is_training = v1.placeholder(tf.bool, [], name="is_training")
        # conv + batch norm: ref variables (VariableV2)
        h = v1.layers.conv2d(x, 8, 3, padding="same", use_bias=True, name="conv1")
        h = v1.layers.batch_normalization(h, training=is_training, fused=True, name="bn1")
        h = tf.nn.relu(h, name="relu1")
        h = v1.layers.dropout(h, rate=0.25, training=is_training, seed=7, name="dropout")
        h = v1.layers.flatten(h, name="flatten")
        # dense head: resource variables (VarHandleOp)
        with v1.variable_scope("head", use_resource=True):
            logits = v1.layers.dense(h, 10, name="dense")
        logits = tf.identity(logits, name="logits")
        probs = tf.nn.softmax(logits, name="softmax")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
            name="loss")
        global_step = v1.train.get_or_create_global_step()
        update_ops = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(update_ops):
            train_op = v1.train.AdamOptimizer(1e-2).minimize(loss, global_step=global_step,
                                                               name="train")
        init = v1.global_variables_initializer()
        saver = v1.train.Saver(name="save")
        kinds = sorted({(v.op.name, v.op.type) for v in v1.global_variables()})

        xb = rng.standard_normal((4, 8, 8, 3)).astype(np.float32)
        with v1.Session(graph=g, config=sess_config()) as s:
            s.run(init)
            for step in range(2):
                tx = rng.standard_normal((8, 8, 8, 3)).astype(np.float32)
                ty = rng.randint(0, 10, size=(8,)).astype(np.int64)
                s.run(train_op, {x: tx, labels: ty, is_training: True})
            out, lg = s.run([probs, logits], {x: xb, is_training: False})
            save_tf1(c, s, saver, g)
            gd = g.as_graph_def()
    meta = c.canonicalize("model.ckpt.meta", "MetaGraphDef",
                          "MetaGraphDef written by Saver.save (graph, saver_def, collections)")
    ref = [n for n, t in kinds if t == "VariableV2"]
    res = [n for n, t in kinds if t == "VarHandleOp"]
    if not ref or not res:
        raise AssertionError(f"expected both ref and resource variables, got {kinds}")
    check_meta_vs_graph(meta, gd)
    c.write_pb("graph.pb", gd, "GraphDef", GRAPH_PB_DESC)
    write_pbtxt(c.dir / "graph.pbtxt", gd)
    c.add_file("graph.pbtxt", "GraphDef (text)",
               "graph.pb in text format (google.protobuf.text_format.MessageToString, as "
               "tf.io.write_graph(as_text=True) writes it)")
    c.add_io("input__0", xb)
    c.add_io("is_training__0", np.array(False))
    c.add_io("softmax__0", out)
    c.add_io("logits__0", lg)
    inputs = {**spec_of("input:0", "float32", [None, 8, 8, 3]),
              **spec_of("is_training:0", "bool", [])}
    outputs = {**spec_of("softmax:0", "float32", [None, 10]),
               **spec_of("logits:0", "float32", [None, 10])}
    # verification with the canonical files
    feeds = {"input:0": xb, "is_training:0": False}
    verify_meta_restore(c, "model.ckpt.meta", "model.ckpt", feeds, ["softmax:0", "logits:0"],
                        [out, lg])
    c.add_model({"name": "train_graph", "file": "model.ckpt.meta", "format": "meta",
                 "graph_files": ["graph.pb", "graph.pbtxt"], "checkpoint": "model.ckpt",
                 "inputs": inputs, "outputs": outputs,
                 "train_only_inputs": spec_of("labels:0", "int64", [None]),
                 "train_op": "train", "init_op": init.name,
                 "saver": {"filename_tensor": "save/Const:0",
                           "restore_op": "save/restore_all"}})
    c.finish(
        "meta",
        {"inputs": inputs, "outputs": list(outputs), "checkpoint": "model.ckpt",
         "variables": {"ref (VariableV2)": ref, "resource (VarHandleOp)": res}},
        "TF1 graph-mode CNN (tf.compat.v1 with v2 behavior disabled: v1 control flow "
        "Switch/Merge from batch norm and dropout on the is_training placeholder). "
        "Conv/BN variables are ref variables, the dense head (scope head/, use_resource=True) "
        "uses resource variables; Adam slots follow their variable's kind. Two Adam steps were "
        "run (is_training=True, random data), then inference with is_training=False gave "
        "softmax:0/logits:0 in io.npz. To run inference feed input:0 and is_training:0=False "
        "(the training-only placeholder labels:0 is not needed). " + PRODUCER_NOTE)


# -----------------------------------------------------------------------------
# case 2: tf1_partitioned

def build_tf1_partitioned(c: Case):
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.disable_v2_behavior()
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        ids = v1.placeholder(tf.int64, [None], name="ids")
        emb = v1.get_variable("emb", [6, 2], tf.float32,
                              initializer=v1.random_normal_initializer(seed=3),
                              partitioner=v1.fixed_size_partitioner(2))
        w = v1.get_variable("proj/w", [2, 3], tf.float32,
                            initializer=v1.random_normal_initializer(seed=4))
        looked = v1.nn.embedding_lookup(emb, ids, partition_strategy="div", name="lookup")
        out = tf.matmul(looked, w, name="output")
        full = tf.identity(tf.concat(list(emb), axis=0), name="emb_full")
        init = v1.global_variables_initializer()
        saver = v1.train.Saver(name="save")
        parts = sorted(v.op.name for v in v1.global_variables())
        idb = np.array([0, 5, 2, 3, 3], dtype=np.int64)
        with v1.Session(graph=g, config=sess_config()) as s:
            s.run(init)
            o, lk, fu = s.run([out, looked, full], {ids: idb})
            save_tf1(c, s, saver, g)
            gd = g.as_graph_def()
    meta = c.canonicalize("model.ckpt.meta", "MetaGraphDef", "MetaGraphDef written by Saver.save")
    check_meta_vs_graph(meta, gd)
    c.write_pb("graph.pb", gd, "GraphDef", GRAPH_PB_DESC)
    c.add_io("ids__0", idb)
    c.add_io("output__0", o)
    c.add_io("lookup__0", lk)
    c.add_io("emb_full__0", fu)
    inputs = spec_of("ids:0", "int64", [None])
    outputs = {**spec_of("output:0", "float32", [None, 3]),
               **spec_of("lookup:0", "float32", [None, 2]),
               **spec_of("emb_full:0", "float32", [6, 2])}
    verify_meta_restore(c, "model.ckpt.meta", "model.ckpt", {"ids:0": idb},
                        ["output:0", "lookup:0", "emb_full:0"], [o, lk, fu])
    c.add_model({"name": "graph", "file": "model.ckpt.meta", "format": "meta",
                 "graph_files": ["graph.pb"], "checkpoint": "model.ckpt",
                 "inputs": inputs, "outputs": outputs})
    c.finish(
        "meta",
        {"inputs": inputs, "outputs": list(outputs), "checkpoint": "model.ckpt",
         "variables": parts},
        "TF1 graph with a partitioned variable: emb [6,2] split by fixed_size_partitioner(2) "
        "into ref variables emb/part_0 [3,2] and emb/part_1 [3,2] (SaveSliceInfoDef in the "
        "variables collection; the checkpoint holds the full-tensor entry 'emb' with slices "
        "plus one OrderedCode-keyed entry per slice), and an unpartitioned proj/w [2,3]. "
        "lookup = embedding_lookup(emb, ids, partition_strategy='div'), output = lookup @ "
        "proj/w, emb_full = concat of the parts. No training step. " + PRODUCER_NOTE)


# -----------------------------------------------------------------------------
# SavedModel helpers (TF2 eager)

def canonicalize_savedmodel(c: Case, sm_rel: str):
    """Canonicalize saved_model.pb, then let TF's C++ recompute fingerprint.pb for it."""
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
    sm = c.canonicalize(f"{sm_rel}/saved_model.pb", "SavedModel",
                        "SavedModel proto (one MetaGraphDef, tag 'serve')")
    old = fingerprint_pb2.FingerprintDef()
    old.ParseFromString((c.dir / sm_rel / "fingerprint.pb").read_bytes())
    fresh = fingerprint_pb2.FingerprintDef()
    fresh.ParseFromString(fingerprinting.CreateFingerprintDef(str(c.dir / sm_rel)))
    # the hashes are of message content, so they must not change; only 'uuid' (random per
    # save in TF 2.21) is replaced by a value derived from the canonical saved_model.pb
    a = fingerprint_pb2.FingerprintDef()
    a.CopyFrom(old)
    b = fingerprint_pb2.FingerprintDef()
    b.CopyFrom(fresh)
    a.ClearField("uuid")
    b.ClearField("uuid")
    if a != b:
        raise AssertionError(f"fingerprint of the canonical SavedModel differs:\n{old}\n{fresh}")
    import hashlib
    digest = hashlib.sha256((c.dir / sm_rel / "saved_model.pb").read_bytes()).digest()
    b.uuid = str(int.from_bytes(digest[:16], "little"))
    (c.dir / sm_rel / "fingerprint.pb").write_bytes(b.SerializeToString())
    c.canonicalize(f"{sm_rel}/fingerprint.pb", "FingerprintDef",
                   "SavedModel fingerprint (FingerprintDef). TF's C++ CreateFingerprintDef "
                   "recomputes the same hashes for the canonical saved_model.pb; the random "
                   "'uuid' TF writes was replaced by the first 128 bits (little-endian, "
                   "decimal) of sha256(saved_model.pb) to keep the file reproducible")
    for p in sorted((c.dir / sm_rel / "variables").iterdir()):
        rel = str(p.relative_to(c.dir))
        if p.name.endswith(".index"):
            c.add_file(rel, "checkpoint-index", "SavedModel variables: tensor bundle index "
                       "(object-based keys '<path>/.ATTRIBUTES/VARIABLE_VALUE', plus "
                       "_CHECKPOINTABLE_OBJECT_GRAPH)")
        else:
            c.add_file(rel, "checkpoint-data", "SavedModel variables: tensor bundle data shard")
    assets = c.dir / sm_rel / "assets"
    if assets.exists():   # TF creates it even when empty; git cannot hold an empty dir
        if any(assets.iterdir()):
            raise AssertionError("unexpected assets")
        assets.rmdir()
    return sm


def signature_io(sm, signature="serving_default"):
    mg = sm.meta_graphs[0]
    sig = mg.signature_def[signature]

    def info(ti, key):
        shape = (None if ti.tensor_shape.unknown_rank      # null: unknown rank
                 else [d.size for d in ti.tensor_shape.dim])
        return {ti.name: {"dtype": tf.as_dtype(ti.dtype).name, "shape": shape, "key": key,
                          "signature_key": key}}
    ins, outs = {}, {}
    for k in sorted(sig.inputs):
        ins.update(info(sig.inputs[k], k))
    for k in sorted(sig.outputs):
        outs.update(info(sig.outputs[k], k))
    return ins, outs


def run_signature(path: Path, feeds: dict, signature="serving_default"):
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures[signature]
    res = fn(**{k: tf.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in res.items()}


def freeze_signature(c: Case, sm_path: Path, rel: str, feeds: dict, desc: str,
                     lower_control_flow=True):
    """Freeze the serving signature with convert_variables_to_constants_v2."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    loaded = tf.saved_model.load(str(sm_path))
    fn = loaded.signatures["serving_default"]
    frozen = convert_variables_to_constants_v2(fn, lower_control_flow=lower_control_flow)
    gd = frozen.graph.as_graph_def()
    out_names = [t.name for t in frozen.outputs]
    topo_sort_nodes(gd)
    # signature outputs are a dict; flattening it (sorted keys) gives frozen.outputs' order
    out_map = dict(zip(sorted(fn.structured_outputs), out_names))
    c.write_pb(rel, gd, "GraphDef", desc)
    gd2 = load_graphdef(c.dir / rel)
    in_feeds = {}
    inputs = {}
    for t in frozen.inputs:
        # Placeholder names equal the signature's argument names
        key = t.name.split(":")[0]
        if key not in feeds:
            raise AssertionError(f"frozen input {t.name} not among signature inputs {list(feeds)}")
        in_feeds[t.name] = feeds[key]
        inputs.update(spec_of(t.name, t.dtype.name, t.shape.as_list()))
        c.add_io(tensor_key(t.name), feeds[key])
    got = run_graphdef(gd2, in_feeds, out_names)
    outputs = {}
    for name, val, t in zip(out_names, got, frozen.outputs):
        outputs.update(spec_of(name, t.dtype.name, t.shape.as_list()))
        c.add_io(tensor_key(name), val)
    return inputs, outputs, out_map, got


def topo_sort_nodes(gd):
    """Put nodes in a deterministic topological order (ties broken by name).

    Grappler's function inlining (used by convert_variables_to_constants_v2) emits
    nodes in an order that changes from run to run; the order carries no meaning,
    so it is normalized to keep the fixture reproducible. Back edges of v1 loops
    (NextIteration -> Merge) are ignored."""
    import heapq
    nodes = {n.name: n for n in gd.node}
    deps = {}
    users = {name: [] for name in nodes}
    for n in gd.node:
        ds = set()
        for inp in n.input:
            src = inp.lstrip("^").split(":")[0]
            if src in nodes and nodes[src].op not in ("NextIteration", "RefNextIteration"):
                ds.add(src)
        deps[n.name] = ds
        for d in ds:
            users[d].append(n.name)
    ready = [name for name, ds in deps.items() if not ds]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for u in users[name]:
            deps[u].discard(name)
            if not deps[u]:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise AssertionError("graph has a cycle that is not a v1 loop")
    copies = []
    for name in order:   # copy before clearing: the dict holds references into gd.node
        m = type(nodes[name])()
        m.CopyFrom(nodes[name])
        copies.append(m)
    del gd.node[:]
    gd.node.extend(copies)


def load_graphdef(p: Path):
    from tensorflow.core.framework import graph_pb2
    gd = graph_pb2.GraphDef()
    gd.ParseFromString(p.read_bytes())
    return gd


def savedmodel_case(c: Case, obj, signatures, feeds: dict, notes: str, frozen: str | None,
                    extra_models=(), lower_control_flow=True):
    sm_dir = c.dir / "saved_model"
    tf.saved_model.save(obj, str(sm_dir), signatures=signatures)
    before = run_signature(sm_dir, feeds)           # TF's own bytes
    sm = canonicalize_savedmodel(c, "saved_model")
    after = run_signature(sm_dir, feeds)            # canonical bytes
    for k in before:
        assert_same(after[k], before[k], f"{c.name}: serving_default output {k}")
    for k, v in feeds.items():
        c.add_io(k, v)
    for k, v in after.items():
        c.add_io(k, v)
    ins, outs = signature_io(sm)
    c.add_model({"name": "saved_model", "file": "saved_model", "format": "savedmodel",
                 "tags": ["serve"], "signature": "serving_default",
                 "inputs": ins, "outputs": outs})
    if frozen:
        fin, fout, out_map, got = freeze_signature(
            c, sm_dir, frozen, feeds,
            "the serving_default signature frozen with convert_variables_to_constants_v2 "
            "(variables -> Const; inputs/outputs in the 'models' entry); node order normalized "
            "to a deterministic topological order (ties by name) because grappler's inlining "
            "order varies from run to run", lower_control_flow=lower_control_flow)
        for (name, v) in zip(fout, got):
            key = [k for k, n in out_map.items() if n == name][0]
            close = np.allclose(v, after[key], rtol=1e-5, atol=1e-6)
            if not close:
                raise AssertionError(f"frozen output {name} differs from signature output {key}")
        c.add_model({"name": "frozen", "file": frozen, "format": "graphdef",
                     "inputs": fin, "outputs": fout,
                     "signature_output_of": {n: k for k, n in out_map.items()}})
    for m in extra_models:
        c.add_model(m)
    c.finish("savedmodel",
             {"inputs": ins, "outputs": list(outs), "signature": "serving_default",
              "tags": ["serve"], "saved_model_dir": "saved_model"},
             notes)


def randomize_bn(layer, rng):
    gamma, beta, mean, var = layer.get_weights()
    layer.set_weights([
        rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
        rng.uniform(-0.5, 0.5, beta.shape).astype(np.float32),
        rng.uniform(-0.5, 0.5, mean.shape).astype(np.float32),
        rng.uniform(0.5, 2.0, var.shape).astype(np.float32),
    ])


def randomize_all(model, rng, scale=0.5):
    for w in model.weights:
        if "moving_variance" in w.name or "gamma" in w.name:
            continue
        w.assign((rng.standard_normal(w.shape) * scale).astype(w.dtype.as_numpy_dtype))


# -----------------------------------------------------------------------------
# case 3: keras_cnn_savedmodel

def build_keras_cnn(c: Case):
    import tf_keras as keras
    keras.utils.set_random_seed(SEED)
    L = keras.layers
    inp = keras.Input((16, 16, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=True, name="conv")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dwconv")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, name="dense")(x)
    out = L.Softmax(name="probs")(x)
    model = keras.Model(inp, out, name="cnn")
    rng = np.random.RandomState(SEED)
    randomize_all(model, rng)
    for ln in ("bn1", "bn2"):
        randomize_bn(model.get_layer(ln), rng)
    feeds = {"image": rng.standard_normal((2, 16, 16, 3)).astype(np.float32)}
    savedmodel_case(
        c, model, None, feeds,
        "tf_keras (Keras 2) Functional CNN: image [None,16,16,3] -> Conv2D(8,3x3,bias) -> "
        "BatchNormalization -> ReLU -> DepthwiseConv2D(3x3) -> BatchNormalization -> ReLU -> "
        "GlobalAveragePooling2D -> Dense(10) -> Softmax. Random weights, BN gamma/beta/moving "
        "mean/moving variance randomized (BN is not the identity). Saved with "
        "tf.saved_model.save(model, 'saved_model'); serving_default input key 'image', output "
        "key 'probs'. frozen.pb is the same signature frozen with "
        "convert_variables_to_constants_v2 (its Placeholder is 'image', output 'Identity'). "
        "This is also the `make demo` sample model. " + PRODUCER_NOTE,
        frozen="frozen.pb")


# -----------------------------------------------------------------------------
# case 4: keras_seq_savedmodel, keras_mha_savedmodel

def build_keras_seq(c: Case):
    import tf_keras as keras
    keras.utils.set_random_seed(SEED)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((6,), dtype="int32", name="tokens"),
        L.Embedding(50, 8, name="embedding"),
        L.LSTM(8, name="lstm"),
        L.Dense(4, activation="softmax", name="dense"),
    ], name="seq")
    rng = np.random.RandomState(SEED)
    randomize_all(model, rng)
    feeds = {"tokens": rng.randint(0, 50, size=(3, 6)).astype(np.int32)}
    savedmodel_case(
        c, model, None, feeds,
        "tf_keras Sequential: tokens int32 [None,6] -> Embedding(50,8) -> LSTM(8) -> "
        "Dense(4, softmax); random weights. The LSTM is saved as Keras' backend-selecting "
        "functions (api_implements attrs, a While loop in the library). serving_default input "
        "key 'tokens', output key 'dense'. frozen.pb: the signature frozen with "
        "convert_variables_to_constants_v2 (frozen inside functions: While body captures "
        "become Consts). " + PRODUCER_NOTE,
        frozen="frozen.pb", lower_control_flow=False)


def build_keras_mha(c: Case):
    import tf_keras as keras
    keras.utils.set_random_seed(SEED)
    L = keras.layers
    tok = keras.Input((5,), dtype="int32", name="tokens")
    x = L.Embedding(50, 8, name="embedding")(tok)
    a = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    x = L.Add(name="residual")([x, a])
    x = L.LayerNormalization(name="ln")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    out = L.Dense(3, name="logits")(x)
    model = keras.Model(tok, out, name="mha")
    rng = np.random.RandomState(SEED)
    randomize_all(model, rng)
    feeds = {"tokens": rng.randint(0, 50, size=(2, 5)).astype(np.int32)}
    savedmodel_case(
        c, model, None, feeds,
        "tf_keras Functional: tokens int32 [None,5] -> Embedding(50,8) -> "
        "MultiHeadAttention(2 heads, key_dim 4, self-attention, einsum) -> Add -> "
        "LayerNormalization -> GlobalAveragePooling1D -> Dense(3); random weights. "
        "serving_default input key 'tokens', output key 'logits'. frozen.pb: frozen "
        "signature. " + PRODUCER_NOTE,
        frozen="frozen.pb")


# -----------------------------------------------------------------------------
# case 5: control_flow

def build_control_flow(c: Case):
    rng = np.random.RandomState(SEED)
    w0 = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    b0 = (rng.standard_normal((4,)) * 0.5).astype(np.float32)

    class CF(tf.Module):
        def __init__(self):
            super().__init__(name="cf")
            self.w = tf.Variable(w0, name="w")
            self.b = tf.Variable(b0, name="b")
            self.scale = tf.Variable(np.float32(0.75), name="scale")
            self.calls = tf.Variable(np.int64(0), name="calls", trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                      tf.TensorSpec([], tf.int32, name="n")])
        def __call__(self, x, n):
            y = tf.cond(tf.reduce_sum(x) > 0.0,
                        lambda: tf.matmul(x, self.w),
                        lambda: x - self.b)

            def body(i, acc):
                return i + 1, tf.tanh(tf.matmul(acc, self.w) + self.b) * self.scale

            _, y = tf.while_loop(lambda i, acc: i < n, body, [tf.constant(0), y])
            return {"y": y, "row_sum": tf.reduce_sum(y, axis=1)}

    m = CF()
    x = np.abs(rng.standard_normal((3, 4))).astype(np.float32)   # sum > 0: true branch
    feeds = {"x": x, "n": np.array(3, dtype=np.int32)}

    # ---- v1 control flow graph (Switch/Merge/Enter/Exit/NextIteration/LoopCond)
    v1 = tf.compat.v1
    v1.disable_control_flow_v2()
    try:
        g = tf.Graph()
        with g.as_default():
            v1.set_random_seed(SEED)
            xp = v1.placeholder(tf.float32, [None, 4], name="x")
            np_ = v1.placeholder(tf.int32, [], name="n")
            w = v1.Variable(w0, name="w", use_resource=False)
            b = v1.Variable(b0, name="b", use_resource=False)
            scale = v1.Variable(np.float32(0.75), name="scale", use_resource=False)
            y = v1.cond(tf.reduce_sum(xp) > 0.0, lambda: tf.matmul(xp, w), lambda: xp - b,
                        name="cond")

            def body(i, acc):
                return i + 1, tf.tanh(tf.matmul(acc, w) + b) * scale

            _, y = v1.while_loop(lambda i, acc: i < np_, body, [tf.constant(0), y],
                                 name="while")
            y = tf.identity(y, name="y")
            ysum = tf.reduce_sum(y, axis=1, name="row_sum")
            saver = v1.train.Saver(name="save")
            with v1.Session(graph=g, config=sess_config()) as s:
                s.run(v1.global_variables_initializer())
                vy, vs = s.run([y, ysum], {xp: x, np_: feeds["n"]})
                save_tf1(c, s, saver, g, prefix="v1_model.ckpt", state_file="v1_checkpoint")
                frozen = v1.graph_util.convert_variables_to_constants(
                    s, g.as_graph_def(), ["y", "row_sum"])
        ops = {n.op for n in g.as_graph_def().node}
        need = {"Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond"}
        if not need <= ops:
            raise AssertionError(f"v1 control flow ops missing: {need - ops}")
    finally:
        v1.enable_control_flow_v2()
    c.canonicalize("v1_model.ckpt.meta", "MetaGraphDef",
                   "v1 control-flow graph with ref variables w, b, scale (Saver.save)")
    c.write_pb("v1_graph.pb", frozen, "GraphDef",
               "the v1 control-flow graph frozen with tf.compat.v1.graph_util."
               "convert_variables_to_constants (ref variables -> Const, Enter/Switch fed by "
               "Consts)")
    got = run_graphdef(load_graphdef(c.dir / "v1_graph.pb"),
                       {"x:0": x, "n:0": feeds["n"]}, ["y:0", "row_sum:0"])
    assert_same(got[0], vy, "v1_graph.pb y:0")
    assert_same(got[1], vs, "v1_graph.pb row_sum:0")
    verify_meta_restore(c, "v1_model.ckpt.meta", "v1_model.ckpt", {"x:0": x, "n:0": feeds["n"]},
                        ["y:0", "row_sum:0"], [vy, vs])
    c.add_io("x__0", x)
    c.add_io("n__0", feeds["n"])
    c.add_io("y__0", vy)
    c.add_io("row_sum__0", vs)
    v1_in = {**spec_of("x:0", "float32", [None, 4]), **spec_of("n:0", "int32", [])}
    v1_out = {**spec_of("y:0", "float32", [None, 4]), **spec_of("row_sum:0", "float32", [None])}
    v1_models = [
        {"name": "v1_frozen", "file": "v1_graph.pb", "format": "graphdef",
         "inputs": v1_in, "outputs": v1_out},
        {"name": "v1_meta", "file": "v1_model.ckpt.meta", "format": "meta",
         "checkpoint": "v1_model.ckpt", "checkpoint_state": "v1_checkpoint",
         "inputs": v1_in, "outputs": v1_out},
    ]
    seed_all()
    savedmodel_case(
        c, m, {"serving_default": m.__call__.get_concrete_function()}, feeds,
        "Control flow. saved_model/: a tf.Module whose tf.function(input_signature=[x float32 "
        "[None,4], n int32 []]) computes y = cond(sum(x) > 0, x @ w, x - b), then n iterations "
        "of y = tanh(y @ w + b) * scale in a tf.while_loop (control flow v2: StatelessIf / "
        "While with functions in the library, resource variables captured into them; the "
        "unused variable 'calls' is int64). serving_default outputs 'y' and 'row_sum'. The io "
        "inputs take the true branch. v1_model.ckpt.* / v1_checkpoint: the same computation "
        "built with tf.compat.v1.disable_control_flow_v2() in graph mode with ref variables "
        "(Switch/Merge/Enter/Exit/NextIteration/LoopCond), saved with a Saver whose state file "
        "is named v1_checkpoint; v1_graph.pb: that graph frozen. v1 tensors in io.npz: x__0, "
        "n__0 (same values as the signature inputs x, n), y__0, row_sum__0. " + PRODUCER_NOTE,
        frozen=None, extra_models=v1_models)


# -----------------------------------------------------------------------------
# case 6: dtypes

def build_dtypes(c: Case):
    from tensorflow.core.framework import graph_pb2, tensor_pb2, types_pb2
    import ml_dtypes
    tf.compat.v1.disable_eager_execution()
    DT = types_pb2
    gd = graph_pb2.GraphDef()
    gd.versions.producer = tf.Graph().as_graph_def().versions.producer  # 2474 for TF 2.21
    gd.versions.min_consumer = 12
    consts = []  # (node name, description)

    def add(name, tp, desc):
        n = gd.node.add(name=name, op="Const")
        n.attr["dtype"].type = tp.dtype
        n.attr["value"].tensor.CopyFrom(tp)
        consts.append((name, desc))

    def shape_proto(tp, shape):
        for s in shape:
            tp.tensor_shape.dim.add().size = s

    FLOATS = [0.0, 1.0, -1.5, 0.25, 3.0, -2.0]
    SPECIAL = [float("inf"), float("-inf"), float("nan"), -0.0, 65504.0, 1e-3]

    def values_for(dt):
        d = tf.as_dtype(dt)
        npd = d.as_numpy_dtype
        name = d.name
        if name in ("int4",):
            return np.array([0, 1, -1, -8, 7, 3], dtype=np.int8).astype(npd)
        if name == "uint4":
            return np.array([0, 1, 15, 8, 7, 3], dtype=np.uint8).astype(npd)
        if name == "int2":
            return np.array([0, 1, -1, -2, 1, 0], dtype=np.int8).astype(npd)
        if name == "uint2":
            return np.array([0, 1, 3, 2, 1, 0], dtype=np.uint8).astype(npd)
        if d.is_quantized:
            base = np.dtype(npd[0]) if isinstance(npd, np.dtype) else np.dtype(npd)[0]
            info = np.iinfo(base)
            return np.array([0, 1, info.min, info.max, 7, info.min + 1], dtype=npd)
        if d.is_bool:
            return np.array([True, False, True, True, False, True])
        if d.is_complex:
            return np.array([1 + 2j, -0.5 + 0j, 0 - 3.25j, 1e3 + 1e-3j, 0j, -1 - 1j], dtype=npd)
        if d.is_integer:
            info = np.iinfo(npd)
            return np.array([0, 1, info.max, info.min, 7, info.max - 1], dtype=npd)
        if d.is_floating:
            return np.array(FLOATS, dtype=np.float64).astype(npd)
        raise ValueError(name)

    F8 = {DT.DT_FLOAT8_E5M2, DT.DT_FLOAT8_E4M3FN, DT.DT_FLOAT8_E4M3FNUZ,
          DT.DT_FLOAT8_E4M3B11FNUZ, DT.DT_FLOAT8_E5M2FNUZ, DT.DT_FLOAT4_E2M1FN}

    def set_typed(tp, arr):
        """Fill the typed *_val field the way TensorFlow encodes them (half_val bit patterns...)."""
        dt = tp.dtype
        flat = arr.reshape(-1)
        if dt == DT.DT_FLOAT:
            tp.float_val.extend(flat.tolist())
        elif dt == DT.DT_DOUBLE:
            tp.double_val.extend(flat.tolist())
        elif dt in (DT.DT_HALF, DT.DT_BFLOAT16):
            tp.half_val.extend(flat.view(np.uint16).astype(np.int32).tolist())
        elif dt in F8:
            tp.float8_val = flat.view(np.uint8).tobytes()
        elif dt == DT.DT_COMPLEX64:
            tp.scomplex_val.extend(np.stack([flat.real, flat.imag], 1).reshape(-1).tolist())
        elif dt == DT.DT_COMPLEX128:
            tp.dcomplex_val.extend(np.stack([flat.real, flat.imag], 1).reshape(-1).tolist())
        elif dt == DT.DT_INT64:
            tp.int64_val.extend(int(v) for v in flat)
        elif dt == DT.DT_UINT32:
            tp.uint32_val.extend(int(v) for v in flat)
        elif dt == DT.DT_UINT64:
            tp.uint64_val.extend(int(v) for v in flat)
        elif dt == DT.DT_BOOL:
            tp.bool_val.extend(bool(v) for v in flat)
        elif dt == DT.DT_STRING:
            tp.string_val.extend(flat.tolist())
        else:  # int32, int16, int8, uint8, uint16, qint*, quint*, int4, uint4, int2, uint2
            if flat.dtype.names:
                flat = flat[flat.dtype.names[0]]
            tp.int_val.extend(int(v) for v in flat.astype(np.int64))

    def raw_bytes(arr):
        if arr.dtype.names:
            arr = arr[arr.dtype.names[0]]
        return np.ascontiguousarray(arr).tobytes()

    all_types = [(n, v) for n, v in DT.DataType.items() if 0 < v < 100]
    skipped = {}
    for tname, v in all_types:
        if v in (DT.DT_RESOURCE, DT.DT_VARIANT):
            skipped[tname] = ("a Const cannot hold it (resource_handle_val / variant_val "
                              "are runtime handles)")
            continue
        if v == DT.DT_STRING:
            continue
        d = tf.as_dtype(v)
        arr = values_for(v)
        tp = tensor_pb2.TensorProto(dtype=v)
        shape_proto(tp, [2, 3])
        tp.tensor_content = raw_bytes(arr)
        add(f"{d.name}/content", tp, f"{tname} [2,3] in tensor_content")
        tp = tensor_pb2.TensorProto(dtype=v)
        shape_proto(tp, [2, 3])
        set_typed(tp, arr)
        add(f"{d.name}/val", tp, f"{tname} [2,3] in the typed field")
    # special float values in both encodings
    for v in (DT.DT_FLOAT, DT.DT_DOUBLE, DT.DT_HALF, DT.DT_BFLOAT16):
        d = tf.as_dtype(v)
        arr = np.array(SPECIAL, dtype=np.float64).astype(d.as_numpy_dtype)
        for enc in ("content", "val"):
            tp = tensor_pb2.TensorProto(dtype=v)
            shape_proto(tp, [6])
            if enc == "content":
                tp.tensor_content = raw_bytes(arr)
            else:
                set_typed(tp, arr)
            add(f"special/{d.name}/{enc}", tp, f"{tname} inf/-inf/nan/-0/65504/1e-3, {enc}")
    # strings (typed field only; tensor_content is not allowed for DT_STRING)
    tp = tensor_pb2.TensorProto(dtype=DT.DT_STRING)
    shape_proto(tp, [2, 3])
    tp.string_val.extend([b"", b"hello", "\u00fcn\u00efc\u00f6d\u00e9 \u2713".encode(),
                          b"\xff\xfe\x00\x80 not utf-8", b"a" * 130, b"\x00"])
    add("string/val", tp, "DT_STRING [2,3]: empty, ascii, UTF-8, non-UTF-8 bytes, a 130-byte "
        "string (2-byte length varint), a NUL byte")
    # fill rule: fewer typed values than elements -> last value repeated
    tp = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, float_val=[1.0, 2.0])
    shape_proto(tp, [4])
    add("fill/float32", tp, "float_val [1,2] with shape [4] -> [1,2,2,2]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_INT32, int_val=[7, -3])
    shape_proto(tp, [2, 3])
    add("fill/int32", tp, "int_val [7,-3] with shape [2,3]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_INT64, int64_val=[-5, 9, 11])
    shape_proto(tp, [5])
    add("fill/int64", tp, "int64_val [-5,9,11] with shape [5]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_HALF, half_val=[0x3E00, 0xC000])
    shape_proto(tp, [3])
    add("fill/float16", tp, "half_val [1.5,-2.0] (bit patterns) with shape [3]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_BFLOAT16, half_val=[0x3FC0])
    shape_proto(tp, [3])
    add("fill/bfloat16", tp, "half_val [1.5] (bf16 bits 0x3FC0) with shape [3]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_COMPLEX64, scomplex_val=[1, 2, 3, 4])
    shape_proto(tp, [3])
    add("fill/complex64", tp, "scomplex_val [1,2,3,4] = [1+2j,3+4j] with shape [3]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_BOOL, bool_val=[False, True])
    shape_proto(tp, [4])
    add("fill/bool", tp, "bool_val [false,true] with shape [4]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_STRING, string_val=[b"x", b"yz"])
    shape_proto(tp, [4])
    add("fill/string", tp, "string_val ['x','yz'] with shape [4]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT8_E4M3FN,
                                float8_val=np.array([1.5], np.float32)
                                .astype(ml_dtypes.float8_e4m3fn).view(np.uint8).tobytes())
    shape_proto(tp, [3])
    add("fill/float8_e4m3fn", tp, "float8_val one byte (1.5) with shape [3]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_UINT64, uint64_val=[2**64 - 1])
    shape_proto(tp, [2])
    add("fill/uint64", tp, "uint64_val [2^64-1] with shape [2]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT)
    shape_proto(tp, [3])
    add("fill/zero_values", tp, "DT_FLOAT shape [3] with no values at all -> zeros")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_STRING)
    shape_proto(tp, [2])
    add("fill/string_none", tp, "DT_STRING shape [2] with no values -> empty strings")
    # splats
    tp = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, float_val=[2.5])
    shape_proto(tp, [2, 2])
    add("splat/float32", tp, "float_val [2.5] with shape [2,2] (what make_tensor_proto writes "
        "for a splat)")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_INT8, int_val=[-7])
    shape_proto(tp, [2, 2])
    add("splat/int8", tp, "int_val [-7] with shape [2,2]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_QUINT8, int_val=[200])
    shape_proto(tp, [2, 2])
    add("splat/quint8", tp, "int_val [200] with shape [2,2]")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_UINT4, int_val=[13])
    shape_proto(tp, [2, 2])
    add("splat/uint4", tp, "int_val [13] with shape [2,2]")
    # empty tensors
    for nm, dt, shp in (("empty/float32", DT.DT_FLOAT, [0]),
                        ("empty/float32_2x0", DT.DT_FLOAT, [2, 0]),
                        ("empty/int64", DT.DT_INT64, [0, 3]),
                        ("empty/string", DT.DT_STRING, [0])):
        tp = tensor_pb2.TensorProto(dtype=dt)
        shape_proto(tp, shp)
        add(nm, tp, f"empty tensor, shape {shp}")
    # scalars
    tp = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, float_val=[3.5])
    add("scalar/float32", tp, "scalar (no dims) 3.5 in float_val")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_INT64,
                                tensor_content=np.int64(-(2**40)).tobytes())
    add("scalar/int64_content", tp, "scalar -2^40 in tensor_content")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_STRING, string_val=[b"\xc3\x28 invalid utf-8"])
    add("scalar/string", tp, "scalar string with invalid UTF-8")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_BOOL, bool_val=[True])
    add("scalar/bool", tp, "scalar true")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_HALF, half_val=[0x3E00])
    add("scalar/float16", tp, "scalar fp16 1.5 as half_val 15872")
    tp = tensor_pb2.TensorProto(dtype=DT.DT_BFLOAT16, half_val=[0x3FC0])
    add("scalar/bfloat16", tp, "scalar bf16 1.5 as half_val 16320")
    # both encodings at once: tensor_content wins
    tp = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, float_val=[9.0, 9.0],
                                tensor_content=np.array([1, 2], np.float32).tobytes())
    shape_proto(tp, [2])
    add("both/float32", tp, "tensor_content [1,2] AND float_val [9,9]: tensor_content wins")
    # version_number set (field 3) is ignored by decoders
    tp = tensor_pb2.TensorProto(dtype=DT.DT_INT32, int_val=[4, 5], version_number=1)
    shape_proto(tp, [2])
    add("misc/version_number", tp, "int_val [4,5] with version_number 1")

    c.write_pb("graph.pb", gd, "GraphDef",
               "Const nodes, one per case below (see expected.json); attr dtype + value")
    # ---- decode with TF's C++ runtime: run every Const
    gd2 = load_graphdef(c.dir / "graph.pb")
    names = [n for n, _ in consts]
    got = run_graphdef(gd2, {}, [f"{n}:0" for n in names])
    # and with Python's tf.make_ndarray for comparison
    expected = {}
    npz = {}
    for (name, desc), val, node in zip(consts, got, gd2.node):
        tp = node.attr["value"].tensor
        val = np.asarray(val)
        dname = DT.DataType.Name(tp.dtype)
        entry = {"dtype": dname, "shape": list(val.shape), "desc": desc}
        if tp.tensor_content:
            entry["encoding"] = "tensor_content"
        elif any(fd.name.endswith("_val") for fd, _ in tp.ListFields()):
            entry["encoding"] = "typed"
        else:
            entry["encoding"] = "none"
        arr = np.asarray(val)
        if arr.dtype.names:  # quantized: structured dtype
            arr = arr[arr.dtype.names[0]]
        flat = arr.reshape(-1)
        key = name
        if tp.dtype == DT.DT_STRING:
            entry["hex"] = [bytes(b).hex() for b in flat.tolist()]
            entry["npz"] = None
        else:
            kind = np.dtype(arr.dtype).name
            if arr.dtype in (ml_dtypes.bfloat16,) or "float8" in kind or "float4" in kind:
                bits = flat.view(np.uint16 if arr.dtype.itemsize == 2 else np.uint8)
                entry["bits"] = [int(b) for b in bits]
                entry["values"] = [_json_float(float(v)) for v in flat.astype(np.float64)]
                npz[key] = bits.reshape(arr.shape)
                entry["npz"] = {"key": key, "dtype": str(bits.dtype),
                                "meaning": "raw bit patterns"}
            elif kind in ("int4", "uint4", "int2", "uint2"):
                ints = flat.astype(np.int8 if kind.startswith("int") else np.uint8)
                entry["values"] = [int(v) for v in ints]
                npz[key] = ints.reshape(arr.shape)
                entry["npz"] = {"key": key, "dtype": str(ints.dtype), "meaning": "values"}
            elif np.issubdtype(arr.dtype, np.complexfloating):
                comp = np.stack([flat.real, flat.imag], 1).reshape(-1)
                width = np.uint32 if arr.dtype == np.complex64 else np.uint64
                entry["bits"] = [int(b) for b in comp.view(width)]
                entry["values"] = [_json_float(float(v)) for v in comp]
                npz[key] = arr
                entry["npz"] = {"key": key, "dtype": str(arr.dtype), "meaning": "values"}
            elif np.issubdtype(arr.dtype, np.floating):
                width = {2: np.uint16, 4: np.uint32, 8: np.uint64}[arr.dtype.itemsize]
                entry["bits"] = [int(b) for b in flat.view(width)]
                entry["values"] = [_json_float(float(v)) for v in flat]
                npz[key] = arr
                entry["npz"] = {"key": key, "dtype": str(arr.dtype), "meaning": "values"}
            else:  # ints, bool, quantized ints
                entry["values"] = [v.item() if hasattr(v, "item") else v for v in flat.tolist()]
                if arr.dtype == np.bool_:
                    entry["values"] = [bool(v) for v in flat]
                npz[key] = arr
                entry["npz"] = {"key": key, "dtype": str(arr.dtype), "meaning": "values"}
        try:
            py = tf.make_ndarray(tp)
            if py.dtype.names:
                py = py[py.dtype.names[0]]
            pa = np.asarray(py)
            same = (pa.shape == arr.shape and
                    (pa.tobytes() == np.asarray(arr).tobytes() if tp.dtype != DT.DT_STRING
                     else pa.reshape(-1).tolist() == flat.tolist()))
            entry["make_ndarray_agrees"] = bool(same)
        except Exception as e:  # noqa: BLE001
            entry["make_ndarray_agrees"] = f"make_ndarray failed: {type(e).__name__}: {e}"
        expected[name] = entry
    np.savez(c.dir / "expected.npz", **npz)
    c.add_file("expected.npz", "npz",
               "decoded value of every non-string Const, keyed by node name; "
               "bfloat16/float8/float4 as raw bit patterns (uint16/uint8), int4/uint4/int2/uint2 "
               "as int8/uint8 values, quantized types as their integer storage type "
               "(see expected.json 'npz')")
    (c.dir / "expected.json").write_text(dump_json(
        {"decoder": "TF 2.21 C++ runtime (Tensor::FromProto): every Const was run in a "
                    "tf.compat.v1.Session and fetched",
         "fields": {
             "dtype": "DataType enum name", "shape": "decoded shape", "encoding":
             "tensor_content | typed (a *_val field) | none (no values)",
             "values": "flattened row-major decoded values (floats: JSON numbers, or the "
                       "strings 'nan', 'inf', '-inf', '-0.0'; complex: re,im pairs)",
             "bits": "for floating/complex types: the raw bit pattern of each value "
                     "(complex: re,im pairs), as unsigned ints",
             "hex": "for strings: each element's bytes in hex",
             "npz": "where expected.npz holds the array",
             "make_ndarray_agrees": "whether Python's tf.make_ndarray decodes the same"},
         "skipped_dtypes": skipped,
         "consts": expected}))
    c.add_file("expected.json", "json",
               "for every Const: dtype, shape, encoding and the values TF's C++ runtime decoded "
               "(bit patterns for floats, hex for strings)")
    attrs_in, attrs_out = build_attrs(c)
    c.add_model({"name": "dtypes", "file": "graph.pb", "format": "graphdef",
                 "inputs": {},
                 "outputs": {f"{n}:0": {"dtype": tf.as_dtype(node.attr["dtype"].type).name,
                                        "shape": expected[n]["shape"], "key": n}
                             for n, node in zip(names, gd2.node)},
                 "outputs_in": "expected.npz (keys = node names; strings only in "
                               "expected.json)",
                 "expected": ["expected.npz", "expected.json"]})
    c.add_model({"name": "attrs", "file": "attrs.pb", "format": "graphdef",
                 "inputs": attrs_in, "outputs": attrs_out})
    c.finish(
        "graphdef",
        {"inputs": {}, "outputs": [f"{n}:0" for n in names], "expected": "expected.json"},
        "graph.pb: hand-built GraphDef of Const nodes covering every DataType a TensorProto "
        "can carry (DT_RESOURCE/DT_VARIANT excluded, see expected.json skipped_dtypes), each "
        "as '<dtype>/content' (tensor_content) and '<dtype>/val' (typed field; half/bf16 in "
        "half_val as bit patterns; float8/float4 in float8_val one byte each; int4/uint4/int2/"
        "uint2 in int_val; tensor_content of the sub-byte types holds one byte per element), "
        "plus special floats, strings with non-UTF-8 bytes, the fill rule (short typed lists), "
        "splats, empty tensors, scalars, tensor_content+typed at once. expected.* hold what "
        "TF's C++ runtime decodes. attrs.pb: a GraphDef exercising every AttrValue kind, "
        "NodeDef experimental_debug_info/experimental_type, a FunctionDefLibrary with "
        "arg_attr, resource_arg_unique_id, control_ret, attr, a polymorphic function "
        "(placeholder attrs), GradientDef, and GraphDebugInfo; TF imports and runs it (io.npz "
        "holds its input/outputs). " + PRODUCER_NOTE)


def _json_float(v: float):
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if v == 0.0 and str(v).startswith("-"):
        return "-0.0"
    return v


def build_attrs(c: Case):
    """attrs.pb: every AttrValue kind and the rarely used GraphDef/FunctionDef fields."""
    from google.protobuf import text_format
    from tensorflow.core.framework import graph_pb2
    gd = graph_pb2.GraphDef()
    text_format.Parse(ATTRS_PBTXT, gd)
    gd.versions.producer = 2474
    c.write_pb("attrs.pb", gd, "GraphDef",
               "hand-made GraphDef exercising every AttrValue kind (list {}, s \"\", i 0, "
               "b false, f, type, shape incl. unknown rank, tensor, func, list(func), "
               "list(type/shape/tensor/s/i/f/b), placeholder in a function body), NodeDef "
               "experimental_debug_info / experimental_type, FunctionDef arg_attr, "
               "resource_arg_unique_id, control_ret, attr, ret; GradientDef; GraphDebugInfo")
    gd2 = load_graphdef(c.dir / "attrs.pb")
    x = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    fetches = ["case:0", "call:0", "poly:0", "conv:0", "mm:0", "lrelu:0", "ident:0"]
    got = run_graphdef(gd2, {"x:0": x, "sel:0": np.int32(1)}, fetches)
    c.add_io("x__0", x)
    c.add_io("sel__0", np.int32(1))
    outs = {}
    for f, v in zip(fetches, got):
        c.add_io(tensor_key(f), v)
        outs.update(spec_of(f, np.asarray(v).dtype.name, list(np.asarray(v).shape)))
    # the expected numbers, computed independently
    assert_close(got[0], x * 2.0, "attrs case (times_two branch)")
    assert_close(got[1], x + 1.0, "attrs call (add_one)")
    assert_close(got[2], x, "attrs poly_identity")
    ins = {**spec_of("x:0", "float32", [3]), **spec_of("sel:0", "int32", [])}
    return ins, outs


def assert_close(a, b, what):
    if not np.allclose(a, b):
        raise AssertionError(f"{what}: {a} != {b}")


ATTRS_PBTXT = r'''
node {
  name: "x" op: "Placeholder"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "shape" value { shape { unknown_rank: true } } }
  experimental_debug_info { original_node_names: "orig/x" original_func_names: "orig_fn" }
}
node {
  name: "sel" op: "Placeholder"
  attr { key: "dtype" value { type: DT_INT32 } }
  attr { key: "shape" value { shape { } } }
}
node {
  name: "ident" op: "Identity" input: "x"
  attr { key: "T" value { type: DT_FLOAT } }
  attr { key: "_list_b" value { list { b: true b: false } } }
  attr { key: "_list_f" value { list { f: 0.5 f: -1 } } }
  attr { key: "_list_i" value { list { i: 0 i: -1 i: 9223372036854775807 } } }
  attr { key: "_list_s" value { list { s: "" s: "a" s: "\377\000" } } }
  attr { key: "_list_type" value { list { type: DT_FLOAT type: DT_BFLOAT16 } } }
  attr { key: "_list_shape" value { list { shape { unknown_rank: true } shape { } shape { dim { size: -1 } dim { size: 3 name: "c" } } } } }
  attr { key: "_list_tensor" value { list { tensor { dtype: DT_INT32 tensor_shape { dim { size: 2 } } int_val: 1 int_val: 2 } } } }
  attr { key: "_list_empty" value { list { } } }
  attr { key: "_s_empty" value { s: "" } }
  attr { key: "_i_zero" value { i: 0 } }
  attr { key: "_b_false" value { b: false } }
  attr { key: "_f_zero" value { f: 0 } }
  attr { key: "_func" value { func { name: "add_one" attr { key: "_k" value { i: 1 } } } } }
  attr { key: "_list_func" value { list { func { name: "add_one" } func { name: "times_two" } } } }
  experimental_debug_info { original_node_names: "a" original_node_names: "b" }
  experimental_type {
    type_id: TFT_PRODUCT
    args { type_id: TFT_TENSOR args { type_id: TFT_FLOAT } }
  }
}
node {
  name: "call" op: "PartitionedCall" input: "x"
  attr { key: "Tin" value { list { type: DT_FLOAT } } }
  attr { key: "Tout" value { list { type: DT_FLOAT } } }
  attr { key: "f" value { func { name: "add_one" } } }
  attr { key: "config" value { s: "" } }
  attr { key: "config_proto" value { s: "" } }
  attr { key: "executor_type" value { s: "" } }
}
node {
  name: "case" op: "Case" input: "sel" input: "x"
  attr { key: "Tin" value { list { type: DT_FLOAT } } }
  attr { key: "Tout" value { list { type: DT_FLOAT } } }
  attr { key: "branches" value { list { func { name: "add_one" } func { name: "times_two" } } } }
  attr { key: "output_shapes" value { list { } } }
}
node {
  name: "poly" op: "poly_identity" input: "x"
  attr { key: "T" value { type: DT_FLOAT } }
}
node {
  name: "img" op: "Const"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 1 } dim { size: 2 } dim { size: 2 } dim { size: 1 } } float_val: 1 float_val: 2 float_val: 3 float_val: 4 } } }
}
node {
  name: "filt" op: "Const"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 1 } dim { size: 1 } dim { size: 1 } dim { size: 1 } } float_val: 0.5 } } }
}
node {
  name: "conv" op: "Conv2D" input: "img" input: "filt"
  attr { key: "T" value { type: DT_FLOAT } }
  attr { key: "data_format" value { s: "NHWC" } }
  attr { key: "dilations" value { list { i: 1 i: 1 i: 1 i: 1 } } }
  attr { key: "explicit_paddings" value { list { } } }
  attr { key: "padding" value { s: "SAME" } }
  attr { key: "strides" value { list { i: 1 i: 1 i: 1 i: 1 } } }
  attr { key: "use_cudnn_on_gpu" value { b: true } }
}
node {
  name: "m2" op: "Const"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } dim { size: 2 } } float_val: 1 float_val: 2 float_val: 3 float_val: 4 } } }
}
node {
  name: "mm" op: "MatMul" input: "m2" input: "m2"
  attr { key: "T" value { type: DT_FLOAT } }
  attr { key: "transpose_a" value { b: false } }
  attr { key: "transpose_b" value { b: true } }
  attr { key: "grad_a" value { b: false } }
  attr { key: "grad_b" value { b: false } }
}
node {
  name: "lrelu" op: "LeakyRelu" input: "x"
  attr { key: "T" value { type: DT_FLOAT } }
  attr { key: "alpha" value { f: 0 } }
}
node {
  name: "pack" op: "Pack" input: "x" input: "ident"
  attr { key: "N" value { i: 2 } }
  attr { key: "T" value { type: DT_FLOAT } }
  attr { key: "axis" value { i: 0 } }
}
library {
  function {
    signature {
      name: "add_one"
      input_arg { name: "x" type: DT_FLOAT }
      output_arg { name: "y" type: DT_FLOAT }
      control_output: "side"
    }
    node_def {
      name: "one" op: "Const"
      attr { key: "dtype" value { type: DT_FLOAT } }
      attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { } float_val: 1 } } }
    }
    node_def {
      name: "add" op: "AddV2" input: "x" input: "one:output:0"
      attr { key: "T" value { type: DT_FLOAT } }
      experimental_debug_info { original_node_names: "add_orig" }
    }
    node_def { name: "noop" op: "NoOp" input: "^add" }
    ret { key: "y" value: "add:z:0" }
    control_ret { key: "side" value: "noop" }
    attr { key: "_noinline" value { b: false } }
    attr { key: "_input_shapes" value { list { shape { unknown_rank: true } } } }
    arg_attr {
      key: 0
      value {
        attr { key: "_output_shapes" value { list { shape { unknown_rank: true } } } }
        attr { key: "_user_specified_name" value { s: "x" } }
      }
    }
  }
  function {
    signature {
      name: "add_one_grad"
      input_arg { name: "x" type: DT_FLOAT }
      input_arg { name: "dy" type: DT_FLOAT }
      output_arg { name: "dx" type: DT_FLOAT }
    }
    node_def { name: "id" op: "Identity" input: "dy" attr { key: "T" value { type: DT_FLOAT } } }
    ret { key: "dx" value: "id:output:0" }
  }
  function {
    signature {
      name: "times_two"
      input_arg { name: "x" type: DT_FLOAT }
      output_arg { name: "y" type: DT_FLOAT }
    }
    node_def {
      name: "two" op: "Const"
      attr { key: "dtype" value { type: DT_FLOAT } }
      attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { } float_val: 2 } } }
    }
    node_def { name: "mul" op: "Mul" input: "x" input: "two:output:0" attr { key: "T" value { type: DT_FLOAT } } }
    ret { key: "y" value: "mul:z:0" }
  }
  function {
    signature {
      name: "poly_identity"
      input_arg { name: "x" type: DT_FLOAT }
      output_arg { name: "y" type: DT_FLOAT }
      attr { name: "T" type: "type" }
    }
    node_def {
      name: "id" op: "Identity" input: "x"
      attr { key: "T" value { placeholder: "T" } }
    }
    ret { key: "y" value: "id:output:0" }
  }
  function {
    signature {
      name: "read_two"
      input_arg { name: "h0" type: DT_RESOURCE }
      input_arg { name: "h1" type: DT_RESOURCE }
      output_arg { name: "v" type: DT_FLOAT }
      is_stateful: true
    }
    node_def {
      name: "r0" op: "ReadVariableOp" input: "h0"
      attr { key: "dtype" value { type: DT_FLOAT } }
    }
    node_def {
      name: "r1" op: "ReadVariableOp" input: "h1"
      attr { key: "dtype" value { type: DT_FLOAT } }
    }
    node_def { name: "s" op: "AddV2" input: "r0:value:0" input: "r1:value:0" attr { key: "T" value { type: DT_FLOAT } } }
    ret { key: "v" value: "s:z:0" }
    arg_attr { key: 1 value { attr { key: "_user_specified_name" value { s: "h1" } } } }
    arg_attr { key: 0 value { attr { key: "_user_specified_name" value { s: "h0" } } } }
    resource_arg_unique_id { key: 1 value: 0 }
    resource_arg_unique_id { key: 0 value: 0 }
  }
  gradient { function_name: "add_one" gradient_func: "add_one_grad" }
}
versions { producer: 2474 min_consumer: 12 bad_consumers: 7 bad_consumers: 3 }
debug_info {
  files: "model.py"
  files: "lib/layers.py"
  frames_by_id { key: 17 value { file_index: 0 line: 10 col: 4 func: "build" code: "y = f(x)" } }
  frames_by_id { key: 3 value { file_index: 1 line: 200 func: "call" } }
  traces_by_id { key: 99 value { frame_id: 17 frame_id: 3 } }
  traces_by_id { key: 5 value { frame_id: 3 } }
  name_to_trace_id { key: "x" value: 99 }
  name_to_trace_id { key: "ident" value: 5 }
  name_to_trace_id { key: "add@add_one" value: 99 }
  traces {
    key: "x"
    value { file_line_cols { file_index: 0 line: 10 col: 4 func: "build" code: "y = f(x)" } }
  }
}
'''


# -----------------------------------------------------------------------------
# case: tf1_v1_checkpoint

V1_VARIABLES = {
    # name: (dtype, value maker)
    "dense/kernel": ("float32", lambda r: r.standard_normal((5, 4)).astype(np.float32)),
    "dense/bias": ("float32", lambda r: r.standard_normal(4).astype(np.float32)),
    "stats/f64": ("float64", lambda r: r.standard_normal((2, 3))),
    "stats/i32": ("int32", lambda r: r.integers(-1000, 1000, (2, 2)).astype(np.int32)),
    "stats/i64": ("int64", lambda r: r.integers(-2**40, 2**40, 3).astype(np.int64)),
    "stats/flag": ("bool", lambda r: np.array([True, False, True])),
    "stats/step": ("int64", lambda r: np.array(7, dtype=np.int64)),
    "meta/label": ("string", lambda r: np.array([b"a", b"\x00\xffbin", b""], dtype=object)),
}


def build_tf1_v1_checkpoint(c: Case):
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.disable_v2_behavior()
    v1 = tf.compat.v1
    rng = np.random.default_rng(SEED)
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(SEED)
        x = v1.placeholder(tf.float32, [None, 5], name="x")
        made = {}
        for name, (dt, make) in V1_VARIABLES.items():
            value = make(rng)
            made[name] = value
            v1.get_variable(name, initializer=tf.constant(value, dtype=dt),
                            use_resource=False)
        emb = v1.get_variable("emb", [6, 4], tf.float32,
                              initializer=v1.random_normal_initializer(seed=5),
                              partitioner=v1.fixed_size_partitioner(2))
        kernel = g.get_tensor_by_name("dense/kernel:0")
        bias = g.get_tensor_by_name("dense/bias:0")
        logits = tf.identity(tf.nn.bias_add(tf.matmul(x, kernel), bias), name="logits")
        probs = tf.nn.softmax(logits + tf.reduce_sum(tf.concat(list(emb), 0), 0), name="probs")
        init = v1.global_variables_initializer()
        saver = v1.train.Saver(name="save", write_version=v1.train.SaverDef.V1)
        xb = rng.standard_normal((3, 5)).astype(np.float32)
        with v1.Session(graph=g, config=sess_config()) as s:
            s.run(init)
            lo, pr, embv = s.run([logits, probs, tf.concat(list(emb), 0)], {x: xb})
            cwd = os.getcwd()
            os.chdir(c.dir)
            try:
                saver.save(s, "model.ckpt", write_meta_graph=True, write_state=True)
            finally:
                os.chdir(cwd)
            gd = g.as_graph_def()
    rewrite_checkpoint_state(c.dir, "model.ckpt", "checkpoint")
    c.add_file("model.ckpt", "checkpoint-v1",
               "V1 checkpoint: one SSTable of SavedTensorSlices (key '' holds the "
               "SavedTensorSliceMeta, then one OrderedCode-keyed SavedSlice per saved slice), "
               "written by TF's C++ TensorSliceWriter (not re-serialized)")
    c.add_file("checkpoint", "CheckpointState (text)",
               "checkpoint state; rewritten with the relative prefix only")
    meta = c.canonicalize("model.ckpt.meta", "MetaGraphDef", "MetaGraphDef written by Saver.save")
    check_meta_vs_graph(meta, gd)
    # What TF's own reader sees in the V1 file: the reference for tf-ckpt's V1 reader.
    reader = v1.train.NewCheckpointReader(str(c.dir / "model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    expected = {"logits__0": lo, "probs__0": pr, "x__0": xb}
    for name in sorted(shapes):
        if name == "emb":
            continue  # TF's reader refuses sliced V1 entries; Saver.restore is checked below
        try:
            value = reader.get_tensor(name)
        except Exception as e:
            raise AssertionError(f"NewCheckpointReader on {name}: {e}")
        want = made.get(name)
        if want is None:
            raise AssertionError(f"unexpected variable {name} in the V1 checkpoint")
        if np.asarray(want).dtype == object:
            if np.asarray(value).tolist() != np.asarray(want).tolist():
                raise AssertionError(f"V1 checkpoint variable {name}: strings differ")
        else:
            assert_same(np.asarray(value), np.asarray(want), f"V1 checkpoint variable {name}")
    for k, v in expected.items():
        c.add_io(k, v)
    c.meta["checkpoint_values"] = {
        name: {"dtype": V1_VARIABLES[name][0] if name in V1_VARIABLES else "float32",
               "shape": list(np.asarray(made.get(name, embv)).shape),
               "value": np.asarray(made.get(name, embv)).tolist()
               if V1_VARIABLES.get(name, ("",))[0] != "string"
               else [b.hex() for b in made[name]]}
        for name in sorted(shapes)}
    inputs = spec_of("x:0", "float32", [None, 5])
    outputs = {**spec_of("logits:0", "float32", [None, 4]),
               **spec_of("probs:0", "float32", [None, 4])}
    verify_meta_restore(c, "model.ckpt.meta", "model.ckpt", {"x:0": xb},
                        ["logits:0", "probs:0"], [lo, pr])
    c.add_model({"name": "graph", "file": "model.ckpt.meta", "format": "meta",
                 "checkpoint": "model.ckpt", "inputs": inputs, "outputs": outputs})
    c.finish(
        "meta",
        {"inputs": inputs, "outputs": list(outputs), "checkpoint": "model.ckpt",
         "variables": sorted(shapes)},
        "TF1 graph saved by tf.compat.v1.train.Saver(write_version=V1): the pre-2017 "
        "checkpoint format TF 2.21 still restores. Ref variables of float32/float64/"
        "int32/int64/bool/string, a scalar, and emb [6,4] partitioned in two (two slices of "
        "one tensor in the table). logits = x @ dense/kernel + dense/bias (an Identity), "
        "probs = softmax(logits + sum(emb, 0)). 'checkpoint_values' lists every variable as "
        "tf.compat.v1.train.NewCheckpointReader reads it (strings hex-encoded), and emb as the "
        "session computed it (TF's reader refuses sliced V1 entries; Saver.restore reads them). "
        + PRODUCER_NOTE)


BUILDERS = {
    "tf1_cnn_train": build_tf1_cnn_train,
    "tf1_partitioned": build_tf1_partitioned,
    "keras_cnn_savedmodel": build_keras_cnn,
    "keras_seq_savedmodel": build_keras_seq,
    "keras_mha_savedmodel": build_keras_mha,
    "control_flow": build_control_flow,
    "dtypes": build_dtypes,
    "tf1_v1_checkpoint": build_tf1_v1_checkpoint,
}


# =============================================================================
# bench model (not committed): a frozen MLP of a few large dense layers

def gen_bench(out: Path, mb: int):
    """bigmodel.pb: x[?,W] -> (MatMul W*W + BiasAdd + Relu) * L -> output.

    Written directly in canonical wire format (one node at a time streamed to
    the file), so generating ~320 MB takes seconds; only the NodeDef classes
    of the TF wheel are used, no graph is built."""
    import numpy as _np
    from tensorflow.core.framework import node_def_pb2, types_pb2
    out.mkdir(parents=True, exist_ok=True)
    width = 4096
    per_layer = width * width * 4
    layers = max(1, -(-mb * 1_000_000 // per_layer))
    rng = _np.random.default_rng(SEED)
    path = out / "bigmodel.pb"
    tmp = path.with_suffix(".pb.tmp")
    t0 = time.time()

    def node_bytes(n) -> bytes:
        b = pbcanon.encode(n)
        return pbcanon._tag(1, 2) + pbcanon._varint(len(b)) + b

    def const(name, arr):
        n = node_def_pb2.NodeDef(name=name, op="Const")
        n.attr["dtype"].type = types_pb2.DT_FLOAT
        t = n.attr["value"].tensor
        t.dtype = types_pb2.DT_FLOAT
        for s in arr.shape:
            t.tensor_shape.dim.add().size = s
        t.tensor_content = arr.tobytes()
        return n

    def op(name, optype, inputs, **attrs):
        n = node_def_pb2.NodeDef(name=name, op=optype, input=inputs)
        n.attr["T"].type = types_pb2.DT_FLOAT
        for k, v in attrs.items():
            if isinstance(v, bool):
                n.attr[k].b = v
            else:
                n.attr[k].s = v.encode()
        return n

    with open(tmp, "wb") as f:
        x = node_def_pb2.NodeDef(name="input", op="Placeholder")
        x.attr["dtype"].type = types_pb2.DT_FLOAT
        x.attr["shape"].shape.dim.add().size = -1
        x.attr["shape"].shape.dim.add().size = width
        f.write(node_bytes(x))
        prev = "input"
        scale = _np.float32(1.0 / _np.sqrt(width))
        for i in range(layers):
            w = rng.standard_normal((width, width), dtype=_np.float32)
            w *= scale
            f.write(node_bytes(const(f"dense_{i}/kernel", w)))
            del w
            b = rng.standard_normal((width,), dtype=_np.float32) * _np.float32(0.01)
            f.write(node_bytes(const(f"dense_{i}/bias", b)))
            f.write(node_bytes(op(f"dense_{i}/MatMul", "MatMul", [prev, f"dense_{i}/kernel"],
                                  transpose_a=False, transpose_b=False)))
            f.write(node_bytes(op(f"dense_{i}/BiasAdd", "BiasAdd",
                                  [f"dense_{i}/MatMul", f"dense_{i}/bias"], data_format="NHWC")))
            f.write(node_bytes(op(f"dense_{i}/Relu", "Relu", [f"dense_{i}/BiasAdd"])))
            prev = f"dense_{i}/Relu"
        f.write(node_bytes(op("output", "Identity", [prev])))
        # versions (field 4) after the nodes (field 1): canonical field order
        versions = b"\x08" + pbcanon._varint(2474)      # VersionDef.producer
        f.write(pbcanon._tag(4, 2) + pbcanon._varint(len(versions)) + versions)
    tmp.replace(path)
    info = {"kind": "graphdef", "files": ["bigmodel.pb"],
            "inputs": {"input:0": {"dtype": "float32", "shape": [-1, width], "key": "input__0"}},
            "outputs": ["output:0"],
            "notes": f"bench model: {layers} dense layers {width}x{width} float32 "
                     f"(tensor_content), seed {SEED}; canonical encoding; not committed"}
    (out / "bigmodel.json").write_text(json.dumps(info, indent=2) + "\n")
    size = path.stat().st_size
    print(f"[gen_fixtures] bench: {path} {size / 1e6:.0f} MB, {layers} layers, "
          f"{time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
