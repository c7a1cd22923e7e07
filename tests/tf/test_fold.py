"""tf-fold against real TensorFlow.

What is shown here, with TF 2.21 as the judge:

- every fixture graph and the generated Keras models (MobileNetV2, ResNet50, a transformer
  encoder; ``scripts/gen_models.py``, random weights) go through ``tf-freeze | tf-strip |
  tf-fold`` (``tf-strip | tf-fold`` for plain GraphDefs) and TF computes the same outputs from
  the folded graph as from its input, within 1e-5 relative (and the logits feeding a Softmax
  too, where saturation would hide differences);
- no FusedBatchNorm* is left after a convolution or matmul;
- the folded graph has no more nodes than TF's own offline optimizer gives on the same input:
  Grappler (constant folding, arithmetic, dependency and function optimizers) followed by
  ``optimize_for_inference``; both counts are printed;
- every constant tf-fold created holds the value TF computes for that node (TF runs the node of
  the unfolded graph in a Session): integers, bools and strings exactly, floats within a few
  ulp; a graph built here exercises every kernel of the native evaluator on several dtypes;
- constant predicates remove dead branches (TF1 ``Switch``/``Merge``, functional ``If``);
- bad input (a cycle, a Const whose content disagrees with its shape, an unknown op) never
  crashes; unknown ops are listed in the report; the flags do what they say.

All TF runs here disable Grappler (``disable_meta_optimizer``) so that exactly the graph's own
nodes execute.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, rewriter_config_pb2
from tensorflow.python.grappler import tf_optimizer
from tensorflow.python.tools import optimize_for_inference_lib

from conftest import BIN_DIR, FIXTURES, REPO, all_cases, load_io, parse_graphdef_bytes, run_tool

TOOL = "tf-fold"
needs = pytest.mark.needs_bin("tf-fold", "tf-strip", "tf-freeze")
v1 = tf.compat.v1

CASES = all_cases()
# generated (not committed) models; TF_MODELS_DIR points elsewhere
MODELS_DIR = Path(os.environ.get("TF_MODELS_DIR", REPO / "build" / "models"))
GEN_MODELS = ["mobilenetv2", "resnet50", "transformer"]
BN_OPS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
          "BatchNormWithGlobalNormalization"}
CONV_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul", "Conv2DBackpropInput", "Conv3D"}
SUMMARY: dict[str, dict] = {}


# -----------------------------------------------------------------------------
# running graphs in TF

def plain_config():
    cfg = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    cfg.graph_options.rewrite_options.disable_meta_optimizer = True
    return cfg


def import_gd(gd):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    return g


def run_plain(gd, feeds: dict, fetches: list):
    """Run exactly the graph's nodes (no Grappler)."""
    g = import_gd(gd)
    with v1.Session(graph=g, config=plain_config()) as s:
        feeds = {k: v for k, v in feeds.items() if _has_tensor(g, k)}
        return s.run(fetches, feed_dict=feeds)


def _has_tensor(g, name):
    try:
        g.get_tensor_by_name(name)
        return True
    except (KeyError, ValueError):
        return False


def rel_err(a, b) -> float:
    """Normwise relative error max|a-b| / max|b| over finite values (NaN and inf must sit at
    the same places); 0 for exact integer/bool/string equality, inf otherwise."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    if a.dtype == tf.bfloat16.as_numpy_dtype:
        a, b = a.astype(np.float32), b.astype(np.float32)
    if a.dtype.kind not in "fc":
        return 0.0 if np.array_equal(a, b) else float("inf")
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    a64 = a.astype(wide)
    b64 = b.astype(wide)
    fin = np.isfinite(b64)
    same_special = np.array_equal(np.isnan(a64), np.isnan(b64)) and \
        np.array_equal(a64[np.isinf(b64)], b64[np.isinf(b64)])
    if not same_special:
        return float("inf")
    if not fin.any():
        return 0.0
    scale = float(np.max(np.abs(b64[fin])))
    diff = float(np.max(np.abs(a64[fin] - b64[fin])))
    return diff / scale if scale > 0 else diff


def fold_bytes(data: bytes, *args) -> tuple[graph_pb2.GraphDef, dict]:
    """tf-fold ARGS... on a serialized GraphDef; returns the graph and the fold report."""
    r = run_tool(TOOL, *args, "--report", "-", input=data, timeout=300)
    report = json.loads(r.stderr.decode()[r.stderr.decode().index("{"):])
    return parse_graphdef_bytes(r.stdout), report["changes"]["fold"]


# -----------------------------------------------------------------------------
# the pipelines: every fixture model and every generated model

class Pipeline:
    """One model through tf-freeze | tf-strip | tf-fold, with what TF needs to run it."""

    def __init__(self, pid, source, feeds, fetches, stripped: bytes, fold_args=()):
        self.id = pid
        self.source = source
        self.feeds = feeds
        self.fetches = fetches
        self.fold_args = list(fold_args)
        self.stripped_bytes = stripped
        self.stripped = parse_graphdef_bytes(stripped)
        self.folded, self.report = fold_bytes(stripped, *self.fold_args)


def _pipe(cmds: list[list[str]]) -> bytes:
    data = None
    for cmd in cmds:
        r = run_tool(cmd[0], *cmd[1:], input=data, timeout=300)
        data = r.stdout
    return data


def _fixture_specs():
    specs = []
    for case, doc in CASES.items():
        for m in doc.get("models", []):
            if not m.get("outputs"):
                continue
            specs.append(pytest.param(("fixture", case, m["name"]), id=f"{case}/{m['name']}"))
    return specs


def _model_specs():
    return [pytest.param(("generated", name, variant), id=f"{name}/{variant}")
            for name in GEN_MODELS for variant in ("saved_model", "frozen")]


SPECS = _fixture_specs() + _model_specs()


@pytest.fixture(scope="session")
def generated_models():
    """build/models/<name>/ made by scripts/gen_models.py (skipped when present)."""
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_models
    return gen_models.ensure(GEN_MODELS, MODELS_DIR)


@functools.lru_cache(maxsize=None)
def pipeline(spec) -> Pipeline:
    kind, case, name = spec
    root = (FIXTURES if kind == "fixture" else MODELS_DIR) / case
    doc = json.loads((root / "case.json").read_text())
    m = next(x for x in doc["models"] if x["name"] == name)
    io = dict(np.load(root / "io.npz"))
    strip_args = []
    fold_args = []
    if m["format"] == "savedmodel":
        # tf-freeze names placeholders and outputs after the signature keys.
        feeds = {f"{s['key']}:0": io[s["key"]] for s in m["inputs"].values()}
        fetches = [f"{s['key']}:0" for s in m["outputs"].values()]
        cmds = [["tf-freeze", str(root / m["file"])], ["tf-strip"]]
    else:
        feeds = {t: io[s["key"]] for t, s in m["inputs"].items()}
        fetches = list(m["outputs"])
        outs = ",".join(t.split(":")[0] for t in fetches)
        # Outputs that other nodes read are not sinks: name them, as for tf-strip.
        fold_args = ["--outputs", outs]
        if "is_training:0" in feeds:
            # the TF1 training switch, bound so that tf-fold can remove the training branch
            del feeds["is_training:0"]
            strip_args = ["--set", "is_training=false"]
        if m["format"] == "meta":
            cmds = [["tf-freeze", str(root / m["checkpoint"]), "--outputs", outs],
                    ["tf-strip", "--outputs", outs, *strip_args]]
        else:
            cmds = [["tf-strip", str(root / m["file"]), "--outputs", outs, *strip_args]]
    return Pipeline(f"{case}/{name}", root, feeds, fetches, _pipe(cmds), fold_args)


def softmax_inputs(p: Pipeline) -> list[tuple[str, str]]:
    """The tensors feeding each Softmax (the logits), as (name in the input graph, name in the
    folded graph): compared too, since a saturated softmax hides differences."""
    def src(gd):
        return {n.name: (n.input[0] if ":" in n.input[0] else n.input[0] + ":0")
                for n in gd.node if n.op == "Softmax"}
    a, b = src(p.stripped), src(p.folded)
    return [(a[k], b[k]) for k in sorted(a) if k in b]


def get(spec, request) -> Pipeline:
    if spec[0] == "generated":
        request.getfixturevalue("generated_models")
    return pipeline(spec)


# -----------------------------------------------------------------------------
# Grappler + optimize_for_inference, run offline on the same graph

def grappler(gd, outputs: list[str]):
    """TF's meta-optimizer offline with constant folding, arithmetic, dependency and function
    optimizers (two iterations), the outputs protected as fetch nodes."""
    g = import_gd(gd)
    with g.as_default():
        mg = v1.train.export_meta_graph(graph=g, graph_def=gd)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(outputs)
    mg.collection_def["train_op"].CopyFrom(fetch)
    cfg = config_pb2.ConfigProto()
    rw = cfg.graph_options.rewrite_options
    rw.optimizers.extend(["function", "constfold", "arithmetic", "dependency"])
    rw.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.TWO
    rw.min_graph_nodes = -1
    return tf_optimizer.OptimizeGraph(cfg, mg)


def tf_reference(gd, inputs: list[str], outputs: list[str]):
    """Grappler, then optimize_for_inference (which folds batch norms) when it applies."""
    opt = grappler(gd, outputs)
    try:
        g = import_gd(opt)
        types = [g.get_operation_by_name(i).outputs[0].dtype.as_datatype_enum for i in inputs]
        return optimize_for_inference_lib.optimize_for_inference(opt, inputs, outputs, types)
    except Exception as e:  # noqa: BLE001 - OFI does not handle every graph (functions, loops)
        print(f"optimize_for_inference failed ({type(e).__name__}: {e}); Grappler alone")
        return opt


# -----------------------------------------------------------------------------
# every model: same outputs, no BN after conv, no larger than TF's optimizer, TF's constants

@needs
@pytest.mark.parametrize("spec", SPECS)
def test_folded_graph_reproduces_outputs(spec, request):
    """Outputs within 1e-5 relative (the tier's convention: rtol=1e-5, atol=1e-6, as for
    tf-freeze); the logits feeding a Softmax within 1e-5 normwise (max|a-b| / max|b|)."""
    p = get(spec, request)
    logits = softmax_inputs(p)
    ref = run_plain(p.stripped, p.feeds, p.fetches + [a for a, _ in logits])
    got = run_plain(p.folded, p.feeds, p.fetches + [b for _, b in logits])
    n = len(p.fetches)
    errs = {}
    for name, a, b in zip(p.fetches, got[:n], ref[:n]):
        errs[name] = rel_err(a, b)
        assert errs[name] < float("inf"), f"{p.id} {name}: values differ"
        if np.asarray(b).dtype.kind in "fc" and np.isfinite(b).all():
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{p.id} {name}")
    for (name, _), a, b in zip(logits, got[n:], ref[n:]):
        errs[f"logits {name}"] = e = rel_err(a, b)
        assert e <= 1e-5, f"{p.id} logits {name}: normwise relative error {e:.3g} > 1e-5"
    worst = max(errs.values(), default=0.0)
    SUMMARY.setdefault(p.id, {})["max_rel_err"] = worst
    print(f"{p.id}: max normwise relative error {worst:.3g} "
          f"({'; '.join(f'{k} {v:.2g}' for k, v in errs.items())})")


@needs
@pytest.mark.parametrize("spec", SPECS)
def test_no_batch_norm_left_after_conv_or_matmul(spec, request):
    p = get(spec, request)
    by_name = {n.name: n for n in p.folded.node}

    def producer(s):
        return by_name.get(s.lstrip("^").split(":")[0])

    for n in p.folded.node:
        if n.op not in BN_OPS:
            continue
        x = producer(n.input[0])
        while x is not None and x.op in {"BiasAdd", "Add", "AddV2", "BatchToSpaceND", "Identity"}:
            x = producer(x.input[0])
        assert x is None or x.op not in CONV_OPS, \
            f"{p.id}: {n.op} '{n.name}' still follows {x.op} '{x.name}'"
    bns = [n for n in p.stripped.node if n.op in BN_OPS
           and n.attr["is_training"].b is False and n.attr.get("is_training") is not None]
    if bns:
        print(f"{p.id}: {len(bns)} inference batch norms before, "
              f"{sum(n.op in BN_OPS for n in p.folded.node)} batch norms after")


@needs
@pytest.mark.parametrize("spec", SPECS)
def test_not_larger_than_grappler_and_optimize_for_inference(spec, request):
    p = get(spec, request)
    outputs = sorted({f.split(":")[0] for f in p.fetches})
    inputs = sorted({f.split(":")[0] for f in p.feeds})
    ref = tf_reference(p.stripped, inputs, outputs)
    ours = len(p.folded.node)
    SUMMARY.setdefault(p.id, {}).update(
        {"input": len(p.stripped.node), "tf_fold": ours, "grappler_ofi": len(ref.node)})
    print(f"{p.id}: input {len(p.stripped.node)} nodes, tf-fold {ours}, "
          f"Grappler+optimize_for_inference {len(ref.node)}")
    assert ours <= len(ref.node), \
        f"{p.id}: tf-fold left {ours} nodes, Grappler+optimize_for_inference {len(ref.node)}"


BF16 = tf.bfloat16.as_numpy_dtype


def ulp_distance(a, b):
    """Distance in units in the last place, for arrays of one float dtype (bfloat16 too)."""
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia = a.view(bits).astype(np.int64)
    ib = b.view(bits).astype(np.int64)
    top = np.int64(1) << (8 * a.dtype.itemsize - 1)
    # map sign-magnitude to a monotonic integer line
    ia = np.where(ia < 0, -(ia + top), ia)
    ib = np.where(ib < 0, -(ib + top), ib)
    return np.abs(ia - ib)


def assert_tf_value(ours, theirs, what, maxulp=4):
    """Integers, bools and strings exactly; floats within a few ulp."""
    a = np.asarray(ours)
    b = np.asarray(theirs)
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != TF's {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape} != TF's {b.shape}"
    if a.dtype in (np.float16, np.float32, np.float64, BF16):
        nan_a = np.isnan(a.astype(np.float64))
        nan_b = np.isnan(b.astype(np.float64))
        assert (nan_a == nan_b).all(), f"{what}: NaNs differ"
        d = ulp_distance(a[~nan_b], b[~nan_b])
        worst = int(d.max()) if d.size else 0
        assert worst <= maxulp, f"{what}: {worst} ulp from TF's value (max {maxulp})"
        return worst
    assert a.tolist() == b.tolist(), f"{what}: {a.tolist()!r} != TF's {b.tolist()!r}"
    return 0


def const_value(gd, name):
    n = next(x for x in gd.node if x.name == name)
    assert n.op == "Const", f"{name} is a {n.op}"
    return tf.make_ndarray(n.attr["value"].tensor)


def check_folded_against_tf(original, folded, report, feeds, what):
    """Each constant tf-fold created equals what TF computes for that tensor; returns how many
    were checked and the largest float distance in ulp."""
    entries = report["folded"]
    if not entries:
        return 0, 0
    values = run_plain(original, feeds, [e["tensor"] for e in entries])
    failures = []
    worst = 0
    for e, theirs in zip(entries, values):
        try:
            worst = max(worst, assert_tf_value(const_value(folded, e["node"]), theirs,
                                               f"{e['tensor']} ({e['op']}, {e['how']})"))
        except AssertionError as err:
            failures.append(str(err).split("\n")[0])
    assert not failures, f"{what}: {len(failures)} folded tensor(s) differ from TF:\n" + \
        "\n".join(failures)
    return len(entries), worst


@needs
@pytest.mark.parametrize("spec", SPECS)
def test_folded_constants_equal_tf_values(spec, request):
    p = get(spec, request)
    n, ulp = check_folded_against_tf(p.stripped, p.folded, p.report, p.feeds, p.id)
    print(f"{p.id}: {n} folded tensors equal TF's values (floats within {ulp} ulp)")


@needs
@pytest.mark.parametrize("spec", SPECS)
def test_every_foldable_node_equals_tf(spec, request):
    """Every node of the graph an output, constant folding only: each node the native evaluator
    or the static shapes can compute becomes a Const in place, and TF computes the same value for
    that node of the unfolded graph (not only the frontier the normal run keeps)."""
    p = get(spec, request)
    names = [n.name for n in p.stripped.node]
    folded, report = fold_bytes(p.stripped_bytes, "--passes", "constant", "--outputs",
                                ",".join(names))
    n, ulp = check_folded_against_tf(p.stripped, folded, report, p.feeds, p.id)
    by_how = {h: sum(e["how"] == h for e in report["folded"]) for h in ("evaluated", "shape")}
    print(f"{p.id}: all {n} foldable nodes equal TF's values ({by_how['evaluated']} evaluated, "
          f"{by_how['shape']} from static shapes; floats within {ulp} ulp)")


@needs
@pytest.mark.parametrize("spec", SPECS)
def test_fold_is_a_fixed_point(spec, request):
    p = get(spec, request)
    again, report = fold_bytes(p.folded.SerializeToString(), *p.fold_args)
    assert len(again.node) == len(p.folded.node), f"{p.id}: a second run changed the graph"
    assert not report["passes"], f"{p.id}: second run still changed {report['passes']}"


def test_summary_table(request):
    """Prints the collected figures (run last with -s to see them)."""
    if SUMMARY:
        print("\nmodel | input | tf-fold | Grappler+OFI | max rel err")
        for k, v in SUMMARY.items():
            print(f"{k} | {v.get('input', '')} | {v.get('tf_fold', '')} | "
                  f"{v.get('grappler_ofi', '')} | {v.get('max_rel_err', '')}")


# -----------------------------------------------------------------------------
# the native evaluator, op by op, judged by TF

def _const_graph():
    """A graph of constant subgraphs covering every kernel (several dtypes each), plus shape
    queries on a partly known placeholder. Returns (GraphDef, node names to fold, feeds)."""
    g = tf.Graph()
    names = []
    readers = []

    def keep(t):
        names.append(t.op.name if hasattr(t, "op") else t.name)
        return t

    def read(t):
        """An output of a multi-output op, read by something that is not constant: it must
        become a constant of its own."""
        p = v1.placeholder_with_default(tf.zeros([], t.dtype), [], name=f"p{len(readers)}")
        readers.append(tf.add(t, p).op.name)

    rng = np.random.RandomState(7)
    with g.as_default():
        f32 = tf.constant(rng.standard_normal((3, 4)).astype(np.float32), name="f32")
        f64 = tf.constant(rng.standard_normal((3, 4)), name="f64")
        f16 = tf.constant(rng.standard_normal((3, 4)).astype(np.float16), name="f16")
        bf16 = tf.cast(tf.constant(rng.standard_normal((3, 4)).astype(np.float32)), tf.bfloat16)
        pos = tf.constant(rng.uniform(0.1, 3.0, (3, 4)).astype(np.float32), name="pos")
        i32 = tf.constant(rng.randint(-50, 50, (3, 4)).astype(np.int32), name="i32")
        i64 = tf.constant(rng.randint(-50, 50, (3, 4)).astype(np.int64), name="i64")
        u8 = tf.constant(rng.randint(0, 255, (3, 4)).astype(np.uint8), name="u8")
        nz = rng.randint(-9, 9, (3, 4))
        nz32 = tf.constant(np.where(nz == 0, 3, nz).astype(np.int32), name="nz32")
        row = tf.constant(rng.standard_normal((4,)).astype(np.float32), name="row")
        b = tf.constant(rng.randint(0, 2, (3, 4)).astype(bool), name="b")
        s = tf.constant([[b"a", b"bc"], [b"", b"xyz"]], name="s")
        keep(bf16)
        for x in (f32, f64, f16, bf16):
            for op in (tf.negative, tf.abs, tf.square, tf.nn.relu, tf.nn.relu6, tf.floor, tf.math.ceil,
                       tf.round, tf.sign, tf.tanh, tf.sigmoid, tf.exp):
                keep(op(x))
        for op in (tf.sqrt, tf.math.rsqrt, tf.math.log, tf.math.reciprocal, tf.math.log1p):
            keep(op(pos))
        keep(tf.nn.softplus(f32))
        keep(tf.nn.leaky_relu(f32, alpha=0.3))
        keep(tf.math.expm1(f32))
        keep(tf.sin(f32))
        keep(tf.cos(f32))
        for x, y in ((f32, pos), (f64, f64 * 2 + 1), (i32, nz32), (i64, i64 + 100)):
            for op in (tf.add, tf.subtract, tf.multiply, tf.maximum, tf.minimum,
                       tf.math.squared_difference, tf.math.floordiv, tf.math.floormod):
                keep(op(x, y))
        keep(tf.raw_ops.Add(x=f32, y=row))
        keep(tf.raw_ops.RealDiv(x=f32, y=pos))
        keep(tf.raw_ops.Div(x=i32, y=nz32))
        keep(tf.raw_ops.TruncateDiv(x=i32, y=nz32))
        keep(tf.raw_ops.TruncateMod(x=i32, y=nz32))
        keep(tf.raw_ops.DivNoNan(x=f32, y=f32 * 0 + row))
        keep(tf.pow(pos, f32))
        keep(tf.pow(tf.abs(i32) % 5, tf.constant(3)))
        keep(tf.nn.bias_add(f32, row))
        keep(tf.add_n([f32, pos, f32]))
        keep(tf.raw_ops.AddV2(x=u8, y=u8))
        keep(tf.raw_ops.Mul(x=u8, y=u8))
        keep(tf.raw_ops.Sub(x=u8, y=tf.constant(np.uint8(200))))
        for op in (tf.equal, tf.not_equal, tf.less, tf.less_equal, tf.greater, tf.greater_equal):
            keep(op(f32, row))
            keep(op(i32, nz32))
        keep(tf.equal(s, tf.constant(b"bc")))
        keep(tf.logical_and(b, tf.logical_not(b[::-1])))
        keep(tf.logical_or(b, tf.constant([True, False, False, True])))
        keep(tf.logical_not(b))
        for op in (tf.reduce_sum, tf.reduce_prod, tf.reduce_max, tf.reduce_min, tf.reduce_mean):
            keep(op(f32, axis=1))
            keep(op(i32, axis=0, keepdims=True))
            keep(op(f64))
        keep(tf.reduce_all(b, axis=1))
        keep(tf.reduce_any(b, axis=[0, 1]))
        keep(tf.argmax(f32, axis=1))
        keep(tf.argmin(i32, axis=0, output_type=tf.int32))
        for dt in (tf.float32, tf.float64, tf.float16, tf.int32, tf.int64, tf.uint8, tf.bool,
                   tf.bfloat16):
            keep(tf.cast((tf.abs(f32) if dt == tf.uint8 else f32) * 10, dt))
            keep(tf.cast(i32, dt))
        keep(tf.cast(b, tf.float32))
        keep(tf.matmul(f32, tf.transpose(pos)))
        keep(tf.matmul(f32, pos, transpose_a=True))
        keep(tf.matmul(i32, tf.transpose(nz32)))
        keep(tf.matmul(tf.reshape(tf.range(24.0), (2, 3, 4)), tf.reshape(tf.range(8.0), (4, 2))))
        keep(tf.raw_ops.BatchMatMulV2(x=tf.reshape(f32, (1, 3, 4)), y=tf.reshape(pos, (1, 3, 4)),
                                      adj_y=True))
        keep(tf.range(2, 17, 3))
        keep(tf.range(10, 0, -3))
        keep(tf.range(0.5, 3.0, 0.3))
        keep(tf.range(tf.constant(5, tf.int64)))
        # shapes and data movement
        for x in (f32, i64, s, b, f16):
            keep(tf.shape(x))
            keep(tf.size(x))
            keep(tf.rank(x))
            keep(tf.reshape(x, [-1]))
            keep(tf.expand_dims(x, -1))
            keep(tf.transpose(x))
            keep(tf.concat([x, x], axis=0))
            keep(tf.stack([x, x], axis=1))
            keep(tf.tile(x, [2, 1]))
            keep(tf.reverse(x, [1]))
            keep(tf.gather(x, [1, 0, 1], axis=1))
            keep(tf.slice(x, [0, 1], [-1, 1]))
            keep(x[::-1, 1:])
            keep(x[1, ...])
            keep(x[:, tf.newaxis, 0])
            keep(x[-1:, ::2])
            keep(tf.fill([2, 3], x[0, 0]))
            keep(tf.zeros_like(x))
            if x.dtype != tf.string:
                keep(tf.ones_like(x))
                keep(tf.pad(x, [[1, 0], [0, 2]]))
                keep(tf.broadcast_to(x[0], [2, 3, 4]))
                keep(tf.where(b, x, tf.reverse(x, [0])))
            keep(tf.raw_ops.Select(condition=tf.constant([True, False]), x=x[:2], y=x[-2:]))
        for t in tf.unstack(f32, axis=1):
            read(t)
        for t in tf.split(i64, 2, axis=1):
            read(t)
        for t in tf.split(f32, [1, -1, 2], axis=1):
            read(t)
        keep(tf.squeeze(tf.reshape(f32, (3, 1, 4, 1))))
        keep(tf.squeeze(tf.reshape(f32, (3, 1, 4, 1)), axis=[1]))
        keep(tf.pad(f32, [[0, 1], [2, 0]], constant_values=7.0))
        keep(tf.raw_ops.BroadcastArgs(s0=tf.constant([3, 1]), s1=tf.constant([4])))
        read(tf.raw_ops.ShapeN(input=[f32, pos[:2]])[1])
        keep(tf.raw_ops.Concat(concat_dim=tf.constant(1), values=[i32, nz32]))
        keep(tf.raw_ops.Identity(input=f32))
        keep(tf.raw_ops.Snapshot(input=i32))
        keep(tf.stop_gradient(f32))
        # shapes of a placeholder whose batch is unknown
        x = v1.placeholder(tf.float32, [None, 5, 7], name="x")
        shp = tf.shape(x)
        keep(shp[1:])
        keep(shp[-1] * shp[1])
        keep(tf.rank(x))
        keep(tf.range(shp[2]))
        tf.reshape(tf.reshape(x, [-1, 35]), tf.stack([shp[0] * 5, 7]), name="dyn_reshape")
    feeds = {"x:0": np.arange(70, dtype=np.float32).reshape(2, 5, 7)}
    return g.as_graph_def(), names, readers, feeds


@pytest.mark.needs_bin("tf-fold")
def test_every_kernel_equals_tf():
    """Each op of the native evaluator, folded alone (every node an output, so each one becomes
    a Const of its own), against TF running the same node."""
    gd, names, readers, feeds = _const_graph()
    folded, report = fold_bytes(gd.SerializeToString(), "--outputs",
                                ",".join(names + readers + ["dyn_reshape"]))
    by_name = {n.name: n for n in folded.node}
    assert not report["unsupported_ops"], report["unsupported_ops"]
    assert not report["eval_errors"], report["eval_errors"]
    not_folded = [n for n in names if by_name[n].op != "Const"]
    checked, ulp = check_folded_against_tf(gd, folded, report, feeds, "kernels")
    # Reshape(x, Pack(batch*5, 7)): the batch is unknown, the shape becomes [-1, 7].
    shape = by_name[by_name["dyn_reshape"].input[1]]
    assert shape.op == "Const" and tf.make_ndarray(shape.attr["value"].tensor).tolist() == [-1, 7]
    np.testing.assert_array_equal(run_plain(folded, feeds, ["dyn_reshape:0"])[0],
                                  run_plain(gd, feeds, ["dyn_reshape:0"])[0])
    ops = sorted({e["op"] for e in report["folded"]})
    print(f"{checked} folded tensors of {len(ops)} ops equal TF's (floats within {ulp} ulp): "
          f"{', '.join(ops)}")
    assert not not_folded, f"left unfolded: {not_folded}"
    multi = [e for e in report["folded"] if e["node"] != e["tensor"].split(":")[0]]
    assert len(multi) == len(readers), multi
    already = {n.name for n in gd.node if n.op == "Const"}   # TF's Python folds some itself
    assert checked == len(set(names) - already) + len(readers)


# -----------------------------------------------------------------------------
# control flow with constant predicates

@needs
def test_tf1_training_branches_go_with_constant_predicate(request):
    """tf1_cnn_train with --set is_training=false: tf-fold removes the batch-norm training
    branches (Switch/Merge) and then folds the batch norm into the conv."""
    spec = next(s.values[0] for s in SPECS if s.values[0][1] == "tf1_cnn_train")
    p = get(spec, request)
    before = {n.op for n in p.stripped.node}
    after = {n.op for n in p.folded.node}
    assert {"Switch", "Merge"} <= before
    assert not after & {"Switch", "Merge"}, f"left: {after & {'Switch', 'Merge'}}"
    assert not after & BN_OPS
    assert p.report["passes"].get("control", {}).get("switch", 0) > 0


def _if_graph():
    """A tf.function with tf.cond on a condition TF cannot resolve when tracing but that is
    constant once shapes are known (StatelessIf), frozen by TF."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32, name="x")])
    def f(x):
        pred = tf.shape(x)[0] > 1
        return tf.cond(pred, lambda: tf.nn.relu(x) * 2.0, lambda: x - 1.0)

    frozen = convert_variables_to_constants_v2(f.get_concrete_function(),
                                               lower_control_flow=False)
    return frozen.graph.as_graph_def(), frozen.inputs[0].name, frozen.outputs[0].name


@pytest.mark.needs_bin("tf-fold")
def test_functional_if_with_constant_condition_is_inlined():
    gd, x, y = _if_graph()
    assert any(n.op in ("If", "StatelessIf") for n in gd.node)
    folded, report = fold_bytes(gd.SerializeToString(), "--outputs", y.split(":")[0])
    assert not any(n.op in ("If", "StatelessIf") for n in folded.node)
    assert report["passes"]["control"]["if"] == 1
    feeds = {x: np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], np.float32)}
    a = run_plain(folded, feeds, [y])[0]
    b = run_plain(gd, feeds, [y])[0]
    np.testing.assert_array_equal(a, b)


# -----------------------------------------------------------------------------
# bad input

@pytest.mark.needs_bin("tf-fold")
def test_cycle_is_an_error_not_a_crash():
    gd = graph_pb2.GraphDef()
    a = gd.node.add(name="a", op="Identity", input=["b"])
    a.attr["T"].type = tf.float32.as_datatype_enum
    b = gd.node.add(name="b", op="Identity", input=["a"])
    b.attr["T"].type = tf.float32.as_datatype_enum
    r = run_tool(TOOL, input=gd.SerializeToString(), check=False)
    assert r.returncode == 2 and r.stdout == b""
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "cycle" in err and "panic" not in err, err


@pytest.mark.needs_bin("tf-fold")
def test_broken_const_and_unknown_op_are_left_and_reported():
    g = tf.Graph()
    with g.as_default():
        c = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3), name="c")
        tf.add(c, 1.0, name="add")
        tf.constant(np.ones(4, np.float32), name="d")
    gd = g.as_graph_def()
    # d: content for 4 floats, shape says 5
    d = next(n for n in gd.node if n.name == "d")
    d.attr["value"].tensor.tensor_shape.dim[0].size = 5
    d.attr["value"].tensor.tensor_content = np.ones(4, np.float32).tobytes()
    neg = gd.node.add(name="uses_d", op="Neg", input=["d"])
    neg.attr["T"].type = tf.float32.as_datatype_enum
    unk = gd.node.add(name="mystery", op="NoSuchOp", input=["add"])
    unk.attr["T"].type = tf.float32.as_datatype_enum
    after = gd.node.add(name="after", op="Neg", input=["mystery"])
    after.attr["T"].type = tf.float32.as_datatype_enum
    r = run_tool(TOOL, "--report", "-", input=gd.SerializeToString(), check=False)
    assert r.returncode == 0, r.stderr.decode()
    out = parse_graphdef_bytes(r.stdout)
    ops = {n.name: n.op for n in out.node}
    assert ops["add"] == "Const"                   # folded
    assert ops["mystery"] == "NoSuchOp" and ops["after"] == "Neg"
    assert ops["uses_d"] == "Neg" and ops["d"] == "Const"
    rep = json.loads(r.stderr.decode()[r.stderr.decode().index("{"):])["changes"]["fold"]
    assert {"node": "mystery", "op": "NoSuchOp"} in rep["unknown_ops"]
    assert any("'d'" in w for w in rep["warnings"]), rep["warnings"]
    assert "panicked" not in r.stderr.decode()


# -----------------------------------------------------------------------------
# flags

def _bn_graph():
    """Conv2D + BiasAdd + FusedBatchNormV3 (inference), then a Fill of 1M floats."""
    rng = np.random.RandomState(3)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 3], name="x")
        w = tf.constant(rng.standard_normal((3, 3, 3, 4)).astype(np.float32))
        y = tf.nn.conv2d(x, w, 1, "SAME")
        y = tf.nn.bias_add(y, tf.constant(rng.standard_normal(4).astype(np.float32)))
        y, *_ = tf.raw_ops.FusedBatchNormV3(
            x=y, scale=rng.uniform(0.5, 1.5, 4).astype(np.float32),
            offset=rng.standard_normal(4).astype(np.float32),
            mean=rng.standard_normal(4).astype(np.float32),
            variance=rng.uniform(0.5, 2, 4).astype(np.float32), is_training=False)
        y = tf.identity(tf.nn.relu(y), name="y")
        big = tf.fill([1024, 1024], 2.0)
        tf.reduce_sum(big * tf.reduce_mean(y), name="z")
    return g.as_graph_def()


@pytest.mark.needs_bin("tf-fold")
@pytest.mark.parametrize("args,bn_left", [
    ([], False),
    (["--no-batchnorm"], True),
    (["--passes", "constant,algebra"], True),
    (["--passes", "batchnorm"], False),
])
def test_pass_selection(args, bn_left):
    gd = _bn_graph()
    folded, report = fold_bytes(gd.SerializeToString(), "--outputs", "y,z", *args)
    left = any(n.op == "FusedBatchNormV3" for n in folded.node)
    assert left == bn_left, (args, report["passes"])
    feeds = {"x:0": np.random.RandomState(0).standard_normal((2, 8, 8, 3)).astype(np.float32)}
    a = run_plain(folded, feeds, ["y:0", "z:0"])
    b = run_plain(gd, feeds, ["y:0", "z:0"])
    for u, v in zip(a, b):
        assert rel_err(u, v) <= 1e-5
    if not bn_left:
        assert report["passes"]["batchnorm"]["fused_batch_norm"] == 1


@pytest.mark.needs_bin("tf-fold")
def test_max_const_bytes():
    gd = _bn_graph()
    _, small = fold_bytes(gd.SerializeToString(), "--outputs", "y,z", "--max-const-bytes", "1MiB")
    assert any(s["op"] == "Fill" for s in small["skipped_large"]), small["skipped_large"]
    folded, big = fold_bytes(gd.SerializeToString(), "--outputs", "y,z",
                             "--max-const-bytes", "8MiB")
    assert not big["skipped_large"]
    # The Fill was folded into the Mul's constant input, 4 MiB of it.
    sizes = [len(n.attr["value"].tensor.tensor_content) for n in folded.node if n.op == "Const"]
    assert max(sizes) <= 8 << 20


@pytest.mark.needs_bin("tf-fold")
def test_bad_flags_exit_2():
    gd = _bn_graph().SerializeToString()
    for args in (["--passes", "nope"], ["--max-const-bytes", "ten"], ["--outputs", "missing"]):
        r = run_tool(TOOL, *args, input=gd, check=False)
        assert r.returncode == 2 and r.stdout == b"", args
        assert r.stderr.decode().startswith("tf-fold: error:") or b"error" in r.stderr, args


# -----------------------------------------------------------------------------
# batch-norm folding: every producer it handles, judged by TF

def _bn_params(rng, c):
    return dict(scale=rng.uniform(0.5, 1.5, c).astype(np.float32),
                offset=rng.uniform(-0.5, 0.5, c).astype(np.float32),
                mean=rng.uniform(-0.5, 0.5, c).astype(np.float32),
                variance=rng.uniform(0.5, 2.0, c).astype(np.float32))


def _bn_variants():
    """name -> (GraphDef, feeds, output, producer op folded into)."""
    out = {}
    rng = np.random.RandomState(11)

    def build(name, fn, x_shape, producer=None):
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, x_shape, name="x")
            y = fn(x)
            tf.identity(y, name="y")
        gd = g.as_graph_def()
        if producer is not None:
            gd.versions.producer = producer
        feed_shape = [2 if d is None else d for d in x_shape]
        feeds = {"x:0": rng.standard_normal(feed_shape).astype(np.float32)}
        out[name] = (gd, feeds)

    def fused(y, version="V3", c=None):
        c = c or y.shape[-1]
        p = _bn_params(rng, c)
        op = {"V1": tf.raw_ops.FusedBatchNorm, "V2": tf.raw_ops.FusedBatchNormV2,
              "V3": tf.raw_ops.FusedBatchNormV3}[version]
        fmt = "NDHWC" if len(y.shape) == 5 else "NHWC"
        return op(x=y, epsilon=0.001, is_training=False, data_format=fmt, **p)[0]

    def w(*shape):
        return tf.constant(rng.standard_normal(shape).astype(np.float32) * 0.3)

    def b(c):
        return tf.constant(rng.standard_normal(c).astype(np.float32) * 0.1)

    build("conv2d+biasadd+fbn_v3",
          lambda x: fused(tf.nn.bias_add(tf.nn.conv2d(x, w(3, 3, 3, 8), 1, "SAME"), b(8))),
          [None, 8, 8, 3])
    build("conv2d+add+fbn_v2",
          lambda x: fused(tf.add(tf.nn.conv2d(x, w(3, 3, 3, 8), 2, "VALID"), b(8)), "V2"),
          [None, 9, 9, 3])
    build("depthwise+fbn_v1",
          lambda x: fused(tf.nn.depthwise_conv2d(x, w(3, 3, 4, 2), [1, 1, 1, 1], "SAME"), "V1"),
          [None, 8, 8, 4])
    build("conv2d_transpose+fbn_v3",
          lambda x: fused(tf.nn.conv2d_transpose(x, w(3, 3, 5, 4), [2, 16, 16, 5], 2, "SAME")),
          [2, 8, 8, 4])
    build("conv3d+fbn_v3",
          lambda x: fused(tf.nn.conv3d(x, w(2, 2, 2, 3, 6), [1, 1, 1, 1, 1], "SAME")),
          [None, 4, 4, 4, 3])
    build("atrous_conv2d+biasadd+fbn_v3",
          lambda x: fused(tf.nn.bias_add(v1.nn.atrous_conv2d(x, w(3, 3, 3, 8), 2, "SAME"), b(8))),
          [2, 12, 12, 3])

    def decomposed(y):
        c = y.shape[-1]
        p = _bn_params(rng, c)
        return tf.nn.batch_normalization(y, p["mean"], p["variance"], p["offset"], p["scale"],
                                         0.001)
    build("matmul+biasadd+decomposed_bn",
          lambda x: decomposed(tf.nn.bias_add(tf.matmul(x, w(6, 5)), b(5))), [None, 6])
    build("matmul_transpose_b+decomposed_bn",
          lambda x: decomposed(tf.matmul(x, w(5, 6), transpose_b=True)), [None, 6])
    build("conv2d+decomposed_bn",
          lambda x: decomposed(tf.nn.conv2d(x, w(1, 1, 3, 4), 1, "SAME")), [None, 5, 5, 3])

    # BatchNormWithGlobalNormalization was removed at GraphDef version 9: written by hand
    # into a graph of producer 8, which TF still runs.
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 6, 6, 3], name="x")
        conv = tf.nn.conv2d(x, w(3, 3, 3, 4), 1, "SAME", name="conv")
        p = _bn_params(rng, 4)
        for k, v in p.items():
            tf.constant(v, name=f"bn_{k}")
        tf.identity(conv, name="y")
    gd = g.as_graph_def()
    bn = gd.node.add(name="bn", op="BatchNormWithGlobalNormalization",
                     input=["conv", "bn_mean", "bn_variance", "bn_offset", "bn_scale"])
    bn.attr["T"].type = tf.float32.as_datatype_enum
    bn.attr["variance_epsilon"].f = 0.001
    bn.attr["scale_after_normalization"].b = True
    next(n for n in gd.node if n.name == "y").input[0] = "bn"
    gd.versions.producer = 8
    out["conv2d+global_normalization"] = (
        gd, {"x:0": rng.standard_normal((2, 6, 6, 3)).astype(np.float32)})
    return out


BN_VARIANTS = _bn_variants()


@pytest.mark.needs_bin("tf-fold")
@pytest.mark.parametrize("name", sorted(BN_VARIANTS))
def test_batch_norm_folding_variants(name):
    gd, feeds = BN_VARIANTS[name]
    folded, report = fold_bytes(gd.SerializeToString(), "--outputs", "y")
    left = [n.op for n in folded.node if n.op in BN_OPS or n.op in ("Rsqrt", "Sub")]
    assert not left, f"{name}: left {left}; passes {report['passes']}"
    ops = [n.op for n in folded.node if n.op not in ("Const", "Placeholder", "Identity")]
    want = run_plain(gd, feeds, ["y:0"])[0]
    got = run_plain(folded, feeds, ["y:0"])[0]
    e = rel_err(got, want)
    print(f"{name}: {len(gd.node)} -> {len(folded.node)} nodes, ops left {ops}, "
          f"relative error {e:.2g}")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(want))))
    assert ops.count("BiasAdd") <= 1 and not {"Mul", "Add", "AddV2"} & set(ops), ops


# -----------------------------------------------------------------------------
# --tf-eval (optional build: `make tf-eval`: cargo build --release --features tf-eval ...)

TF_EVAL_BIN = os.environ.get("TF_FOLD_TF_EVAL_BIN")


def test_tf_eval_folds_ops_without_native_kernel():
    """Conv2D of constants has no native kernel: with --tf-eval TF's runtime computes it, and the
    folded constant is the value TF computes for the node in the original graph. `make test`
    runs it through `make test-tfeval` (which builds that tf-fold); `make test-tf` leaves it out."""
    assert TF_EVAL_BIN, ("set TF_FOLD_TF_EVAL_BIN to a tf-fold built with --features tf-eval "
                         "(make tf-eval; links TensorFlow; not in the default build)")
    src = FIXTURES / "dtypes" / "attrs.pb"
    outs = "case,call,poly,conv,mm,lrelu,ident"
    lib = str(REPO / "build" / "tflib")
    env = dict(os.environ, LD_LIBRARY_PATH=lib, TF_CPP_MIN_LOG_LEVEL="3")
    import subprocess
    r = subprocess.run([TF_EVAL_BIN, str(src), "--outputs", outs, "--tf-eval", "--report", "-"],
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    err = r.stderr.decode()
    report = json.loads(err[err.index('{\n  "tool"'):])["changes"]["fold"]
    folded = parse_graphdef_bytes(r.stdout)
    assert any(e["how"] == "tf-eval" and e["op"] == "Conv2D" for e in report["folded"])
    original = parse_graphdef_bytes(src.read_bytes())
    feeds = {"x:0": np.float32(1.5), "sel:0": np.int32(0)}
    n, _ = check_folded_against_tf(original, folded, report, feeds, "tf-eval")
    assert n >= 2


@pytest.mark.needs_bin("tf-fold")
def test_tf_eval_without_tensorflow_is_a_clear_error():
    r = run_tool(TOOL, "--tf-eval", input=_bn_graph().SerializeToString(), check=False)
    assert r.returncode == 2 and b"built without TensorFlow" in r.stderr
