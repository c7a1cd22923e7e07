"""tf-prune against real TensorFlow.

What is shown here, with TF 2.21 as the judge:

- ``--sparsity 0`` leaves every frozen fixture's outputs bitwise equal (and the file too);
- the achieved sparsity of every pruned weight Const, read back with TF's ``tensor_util``,
  equals tfmot's target ``N - max(round(N(1-S)), 1)`` zeros, and what is kept is the largest
  magnitudes; ``--global``, ``--block`` and ``--n-m 2:4`` hold their pattern;
- at 50% sparsity the gzip size of a weight-dominated frozen graph drops by >= 40%;
- ``--channels`` on a Keras CNN/MLP whose weights were zeroed per channel by this script and
  frozen with ``convert_variables_to_constants_v2``: TF runs the result, outputs equal within
  1e-6, weights physically smaller, FLOPs lower, residual channels kept with a reason;
- bad flags exit 2 with one line, before the graph is read.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import tensor_util

from conftest import (FIXTURES, REPO, all_cases, assert_bitwise, feeds_for, load_io,
                      parse_graphdef_bytes, run_graphdef, run_tool)

TOOL = "tf-prune"
needs = pytest.mark.needs_bin(TOOL)
CASES = all_cases()
FROZEN = [pytest.param(case, m, id=f"{case}/{m['file']}")
          for case, doc in CASES.items() for m in doc["models"]
          if m["format"] == "graphdef" and m.get("outputs")]
WEIGHT_OPS = {"Conv2D": 1, "DepthwiseConv2dNative": 1, "MatMul": 1, "BatchMatMulV2": 1,
              "BatchMatMul": 1, "Conv2DBackpropInput": 1}


# -----------------------------------------------------------------------------
# helpers

def prune(src, *args, tmp_path=None):
    """tf-prune SRC ARGS... --report R; returns (GraphDef parsed by TF, report['changes']['prune'])."""
    report = (tmp_path or FIXTURES) / "prune-report.json" if tmp_path else None
    extra = ["--report", str(report)] if report else []
    r = run_tool(TOOL, src, *args, *extra)
    assert r.stdout, f"{TOOL} wrote nothing"
    rep = json.loads(report.read_text())["changes"]["prune"] if report else None
    return parse_graphdef_bytes(r.stdout), rep


def consts(gd) -> dict[str, np.ndarray]:
    return {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor)
            for n in gd.node if n.op == "Const"}


def weight_consts(gd) -> dict[str, tuple[str, dict]]:
    """Const name -> (consumer op, consumer attrs) for every weight Const (through Identity)."""
    by = {n.name: n for n in gd.node}
    out = {}
    for n in gd.node:
        if n.op not in WEIGHT_OPS:
            continue
        src = n.input[WEIGHT_OPS[n.op]]
        while src in by and by[src].op == "Identity":
            src = by[src].input[0]
        if src in by and by[src].op == "Const" and src not in out:
            out[src] = (n.op, n.attr)
    return out


def expected_zeros(n: int, s: float) -> int:
    return n - max(round(n * (1 - s)), 1)   # python round: half to even, as tf.round


def input_axis(op: str, attr, rank: int) -> int:
    if op == "MatMul":
        return 1 if attr["transpose_b"].b else 0
    if op.startswith("BatchMatMul"):
        return rank - 1 if attr["adj_y"].b else rank - 2
    return 2


def freeze_keras(model, spec):
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    gd = frozen.graph.as_graph_def()
    inp = [t.name for t in frozen.inputs][0]
    out = [t.name for t in frozen.outputs][0]
    return gd, inp, out


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """A weight-dominated frozen MLP (about 1.2 MB of float32 weights)."""
    tf.keras.utils.set_random_seed(7)
    m = tf.keras.Sequential([tf.keras.layers.Input((256,)),
                             tf.keras.layers.Dense(512, activation="relu"),
                             tf.keras.layers.Dense(256, activation="relu"),
                             tf.keras.layers.Dense(10)])
    gd, inp, out = freeze_keras(m, tf.TensorSpec([None, 256], tf.float32))
    path = tmp_path_factory.mktemp("mlp") / "frozen.pb"
    path.write_bytes(gd.SerializeToString())
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
    return path, gd, inp, out, x


# -----------------------------------------------------------------------------
# sparsity 0: nothing changes

@needs
@pytest.mark.parametrize("case,model", FROZEN)
def test_sparsity_zero_is_bitwise_identity(case, model, tmp_path):
    src = FIXTURES / case / model["file"]
    gd, rep = prune(src, "--sparsity", "0", tmp_path=tmp_path)
    original = parse_graphdef_bytes(src.read_bytes())
    outputs = list(model["outputs"])
    feeds = feeds_for(model, load_io(case))
    for name, a, b in zip(outputs, run_graphdef(gd, feeds, outputs),
                          run_graphdef(original, feeds, outputs)):
        assert_bitwise(a, b, f"{case} {name}")
    assert gd.SerializeToString(deterministic=True) == \
        original.SerializeToString(deterministic=True)
    assert all(t["zeros_after"] == t["zeros_before"] for t in rep["tensors"])


# -----------------------------------------------------------------------------
# achieved sparsity equals the target, per tensor

def check_per_tensor(original, pruned, s, names):
    before, after = consts(original), consts(pruned)
    assert names, "no weight tensors"
    for name in names:
        w, p = before[name], after[name]
        assert p.shape == w.shape and p.dtype == w.dtype
        n = w.size
        assert int(np.count_nonzero(w == 0)) == 0, "fixture weights have no zeros"
        assert int(np.count_nonzero(p == 0)) == expected_zeros(n, s), \
            f"{name}: {np.count_nonzero(p == 0)} zeros of {n} at S={s}"
        kept = p != 0
        assert np.array_equal(p[kept], w[kept]), f"{name}: kept values changed"
        if (~kept).any():
            assert np.abs(w[kept]).min() >= np.abs(w[~kept]).max(), f"{name}: not by magnitude"


@needs
@pytest.mark.parametrize("s", [0.3, 0.5, 0.75, 0.9])
def test_achieved_sparsity_equals_target_per_tensor(s, mlp, tmp_path):
    for src in [mlp[0], FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"]:
        original = parse_graphdef_bytes(src.read_bytes())
        pruned, rep = prune(src, "--sparsity", str(s), tmp_path=tmp_path)
        names = list(weight_consts(original))
        check_per_tensor(original, pruned, s, names)
        assert sorted(t["name"] for t in rep["tensors"]) == sorted(names)
        for t in rep["tensors"]:
            assert t["zeros_after"] == expected_zeros(t["params"], s)


@needs
def test_global_threshold_hits_the_target_overall(mlp, tmp_path):
    original = parse_graphdef_bytes(mlp[0].read_bytes())
    pruned, _ = prune(mlp[0], "--sparsity", "0.6", "--global", tmp_path=tmp_path)
    names = list(weight_consts(original))
    w = np.concatenate([consts(original)[n].ravel() for n in names])
    p = np.concatenate([consts(pruned)[n].ravel() for n in names])
    assert np.count_nonzero(p == 0) == expected_zeros(w.size, 0.6)
    assert np.abs(w[p != 0]).min() >= np.abs(w[p == 0]).max()


@needs
def test_block_pruning_zeroes_whole_blocks(mlp, tmp_path):
    original = parse_graphdef_bytes(mlp[0].read_bytes())
    pruned, _ = prune(mlp[0], "--sparsity", "0.5", "--block", "4x2", tmp_path=tmp_path)
    for name in weight_consts(original):
        p = consts(pruned)[name]
        r, c = p.shape
        blocks = (p.reshape(r // 4, 4, c // 2, 2) != 0).any(axis=(1, 3))
        assert blocks.size - blocks.sum() == expected_zeros(blocks.size, 0.5)
        full = (p.reshape(r // 4, 4, c // 2, 2) != 0).all(axis=(1, 3))
        assert np.array_equal(blocks, full), f"{name}: a block is partly zero"


@needs
def test_include_exclude_min_elements(mlp, tmp_path):
    original = parse_graphdef_bytes(mlp[0].read_bytes())
    names = list(weight_consts(original))
    pruned, rep = prune(mlp[0], "--sparsity", "0.5", "--min-elements", "100000",
                        tmp_path=tmp_path)
    pruned_names = [n for n in names if np.count_nonzero(consts(pruned)[n] == 0)]
    assert pruned_names == [n for n in names if consts(original)[n].size >= 100000]
    consumer = {t["name"]: t["consumer"] for t in rep["tensors"]}
    first = consumer[names[0]]
    pruned, _ = prune(mlp[0], "--sparsity", "0.5", "--exclude", f"^{first}$", tmp_path=tmp_path)
    assert np.count_nonzero(consts(pruned)[names[0]] == 0) == 0
    assert all(np.count_nonzero(consts(pruned)[n] == 0) for n in names[1:])
    pruned, _ = prune(mlp[0], "--sparsity", "0.5", "--include", f"^{first}$", tmp_path=tmp_path)
    assert [n for n in names if np.count_nonzero(consts(pruned)[n] == 0)] == [names[0]]


@needs
def test_two_of_four_holds_in_every_group(mlp, tmp_path):
    for src in [mlp[0], FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"]:
        original = parse_graphdef_bytes(src.read_bytes())
        pruned, _ = prune(src, "--n-m", "2:4", tmp_path=tmp_path)
        for name, (op, attr) in weight_consts(original).items():
            p = consts(pruned)[name]
            axis = input_axis(op, attr, p.ndim)
            q = np.moveaxis(p, axis, -1)
            full = q.shape[-1] // 4 * 4
            groups = q[..., :full].reshape(*q.shape[:-1], -1, 4)
            nz = np.count_nonzero(groups, axis=-1)
            assert (nz == 2).all(), f"{name} ({op}, axis {axis}): {np.unique(nz)}"
            if full < q.shape[-1]:
                assert (np.count_nonzero(q[..., full:], axis=-1) <= 2).all()


# -----------------------------------------------------------------------------
# size

@needs
def test_half_sparsity_shrinks_gzip_by_40_percent(mlp, tmp_path):
    src = mlp[0]
    out = tmp_path / "pruned.pb"
    run_tool(TOOL, src, "--sparsity", "0.5", "-o", out, "--report", tmp_path / "r.json")
    rep = json.loads((tmp_path / "r.json").read_text())["changes"]["prune"]
    before = len(gzip.compress(src.read_bytes()))
    after = len(gzip.compress(out.read_bytes()))
    assert after <= 0.6 * before, f"gzip {before} -> {after}"
    assert rep["gzip_bytes_after"] <= 0.6 * rep["gzip_bytes_before"]
    # and the pruned model still runs in TF
    gd = parse_graphdef_bytes(out.read_bytes())
    (y,) = run_graphdef(gd, {mlp[2]: mlp[4]}, [mlp[3]])
    assert y.shape == (4, 10) and np.isfinite(y).all()


@needs
def test_half_sparsity_shrinks_gzip_of_mobilenetv2(tmp_path):
    # build/models/mobilenetv2, generated on first use (the fold and quant tiers share it).
    import sys
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_models  # noqa: E402
    src = gen_models.ensure(["mobilenetv2"]) / "mobilenetv2" / "frozen.pb"
    out = tmp_path / "pruned.pb"
    run_tool(TOOL, src, "--sparsity", "0.5", "-o", out, timeout=600)
    before = len(gzip.compress(src.read_bytes(), 6))
    after = len(gzip.compress(out.read_bytes(), 6))
    assert after <= 0.6 * before, f"gzip {before} -> {after}"


# -----------------------------------------------------------------------------
# --channels

@pytest.fixture(scope="module")
def dead_channel_cnn(tmp_path_factory):
    """A Keras CNN/MLP whose weights this script zeroes per output channel, frozen by TF."""
    L = tf.keras.layers
    tf.keras.utils.set_random_seed(11)
    x = L.Input((8, 8, 3))
    c1 = L.Conv2D(8, 3, padding="same", name="c1")(x)
    bn = L.BatchNormalization(name="bn")(c1)
    pool = L.MaxPooling2D(2)(L.ReLU()(bn))
    c2 = L.Conv2D(8, 3, padding="same", activation="relu", name="c2")(pool)
    c2b = L.Conv2D(8, 3, padding="same", activation="relu", name="c2b")(c2)
    res = L.Add()([c2b, c2])                       # residual: c2b's channels must stay
    c3 = L.Conv2D(6, 1, activation="relu", name="c3")(res)
    gap = L.GlobalAveragePooling2D()(c3)
    d1 = L.Dense(16, activation="relu", name="d1")(gap)
    y = L.Dense(4, name="d2")(d1)
    m = tf.keras.Model(x, y)
    rng = np.random.default_rng(3)

    def zero(layer, chans, bias=None):
        k, b = layer.get_weights()
        k[..., chans] = 0.0
        b[chans] = 0.0 if bias is None else bias
        layer.set_weights([k, b])

    zero(m.get_layer("c1"), [1, 4])
    g, beta, mean, var = m.get_layer("bn").get_weights()
    g, var = rng.uniform(0.5, 1.5, 8), rng.uniform(0.5, 1.5, 8)
    beta, mean = rng.normal(0, 0.3, 8), rng.normal(0, 0.3, 8)
    beta[[1, 4]], mean[[1, 4]] = -1.0, 0.0         # BN(0) = -1 -> relu 0: removable
    m.get_layer("bn").set_weights([g.astype(np.float32), beta.astype(np.float32),
                                   mean.astype(np.float32), var.astype(np.float32)])
    zero(m.get_layer("c2b"), [3])                  # kept: residual Add
    zero(m.get_layer("c3"), [0, 5], bias=[0.7, 0.0])   # 0.7 flows through GAP into d1's bias
    zero(m.get_layer("d1"), [2, 9], bias=[0.0, -0.3])  # relu(-0.3) = 0
    gd, inp, out = freeze_keras(m, tf.TensorSpec([None, 8, 8, 3], tf.float32))
    path = tmp_path_factory.mktemp("cnn") / "frozen.pb"
    path.write_bytes(gd.SerializeToString())
    xs = rng.standard_normal((5, 8, 8, 3)).astype(np.float32)
    return path, gd, inp, out, xs


def flops(gd, inp, x) -> int:
    """2·MACs of every Conv2D/MatMul, output shapes from running the graph."""
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    ops = [op for op in g.get_operations() if op.type in ("Conv2D", "MatMul")]
    with tf.compat.v1.Session(graph=g) as s:
        outs = s.run([op.outputs[0] for op in ops], {inp: x})
    total = 0
    for op, o in zip(ops, outs):
        w = op.inputs[1].shape.as_list()
        total += 2 * int(np.prod(o.shape[1:])) * int(np.prod(w[:-1] if op.type == "Conv2D"
                                                               else w[:1]))
    return total


@needs
def test_channels_removes_dead_channels_exactly(dead_channel_cnn, tmp_path):
    path, original, inp, out, x = dead_channel_cnn
    pruned, rep = prune(path, "--channels", tmp_path=tmp_path)
    (ref,) = run_graphdef(original, {inp: x}, [out])
    (got,) = run_graphdef(pruned, {inp: x}, [out])
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)

    def float_elems(gd):
        return sum(v.size for v in consts(gd).values() if v.dtype == np.float32)
    assert float_elems(pruned) < float_elems(original)
    assert len(pruned.SerializeToString()) < len(original.SerializeToString())
    assert flops(pruned, inp, x) < flops(original, inp, x)
    # the report's static count agrees with the shapes TF computed
    assert rep["flops_before"] == {"flops": flops(original, inp, x), "unknown": 0}
    assert rep["flops_after"] == {"flops": flops(pruned, inp, x), "unknown": 0}

    ch = {layer["layer"].split("/")[-2]: layer for layer in rep["channels"]["layers"]}
    assert ch["c1"]["removed"] == [1, 4]
    assert ch["c2b"]["removed"] == [] and any("residual" in k for k in ch["c2b"]["kept"])
    assert ch["c3"]["removed"] == [0, 5]
    assert ch["d1"]["removed"] == [2, 9]
    assert rep["params_after"] < rep["params_before"]
    # what was pruned by magnitude stays exact too, and the result runs again through tf-prune
    again = run_tool(TOOL, "--channels", input=pruned.SerializeToString())
    (y2,) = run_graphdef(parse_graphdef_bytes(again.stdout), {inp: x}, [out])
    np.testing.assert_allclose(y2, ref, rtol=0, atol=1e-6)


# -----------------------------------------------------------------------------
# bad input

@needs
@pytest.mark.parametrize("args,msg", [
    (["--sparsity", "1"], "--sparsity 1: must be in [0, 1)"),
    (["--sparsity=-0.1"], "--sparsity -0.1: must be in [0, 1)"),
    (["--sparsity", "-0.1"], "--sparsity -0.1: must be in [0, 1)"),
    (["--sparsity", "half"], "--sparsity half"),
    (["--sparsity", "0.5", "--block", "4"], "--block '4'"),
    (["--sparsity", "0.5", "--block", "0x4"], "--block '0x4'"),
    (["--n-m", "4:2"], "--n-m '4:2'"),
    (["--n-m", "2-4"], "--n-m '2-4'"),
    (["--sparsity", "0.5", "--include", "("], "--include '('"),
    (["--channel-sparsity", "1.5"], "--channel-sparsity 1.5: must be in [0, 1)"),
    ([], "nothing to do"),
])
def test_bad_flags_exit_2_with_one_line(args, msg, tmp_path):
    # the input does not exist: flags are checked before the graph is read
    r = run_tool(TOOL, tmp_path / "missing.pb", *args, check=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and not r.stdout
    assert err.count("\n") == 1 and err.startswith("tf-prune: error: ") and msg in err, err


@needs
def test_embeddings_only_with_the_flag(tmp_path):
    src = FIXTURES / "keras_seq_savedmodel" / "frozen.pb"
    original = parse_graphdef_bytes(src.read_bytes())
    gathers = {n.input[0] for n in original.node if n.op == "GatherV2"}
    by = {n.name: n for n in original.node}
    tables = set()
    for t in gathers:
        while by[t].op == "Identity":
            t = by[t].input[0]
        tables.add(t)
    assert tables
    pruned, _ = prune(src, "--sparsity", "0.5", tmp_path=tmp_path)
    for t in tables:
        assert np.array_equal(consts(pruned)[t], consts(original)[t])
    pruned, rep = prune(src, "--sparsity", "0.5", "--embeddings", tmp_path=tmp_path)
    for t in tables:
        n = consts(original)[t].size
        assert np.count_nonzero(consts(pruned)[t] == 0) == expected_zeros(n, 0.5)
    assert any(t["op"] == "GatherV2" for t in rep["tensors"])


@needs
def test_channel_sparsity_removes_the_weakest_neurons(mlp, tmp_path):
    path, original, inp, out, x = mlp
    weights = consts(original)
    by = {n.name: n for n in original.node}

    def kernel(mm):
        src = mm.input[1]
        while by[src].op == "Identity":
            src = by[src].input[0]
        return src
    mms = [n for n in original.node if n.op == "MatMul"]
    head = [m.name for m in mms if weights[kernel(m)].shape[-1] == 10]
    assert len(head) == 1
    pruned, rep = prune(path, "--channel-sparsity", "0.25", "--exclude", f"^{head[0]}$",
                        tmp_path=tmp_path)
    after = consts(pruned)
    shapes = sorted(after[kernel(m)].shape for m in mms)
    assert shapes == sorted([(256, 384), (384, 192), (192, 10)]), shapes
    assert rep["channels"]["channels_removed"] == 128 + 64
    assert rep["flops_after"]["flops"] < rep["flops_before"]["flops"]
    (y,) = run_graphdef(pruned, {inp: x}, [out])
    assert y.shape == (4, 10) and np.isfinite(y).all()


@needs
def test_channels_on_the_keras_cnn_fixture_through_depthwise_and_batch_norms(tmp_path):
    """The fixture as TF froze it (weights behind two Identity nodes), with conv channel 2 made
    dead here: it is removed through BiasAdd, the batch norm, ReLU and the depthwise conv; the
    depthwise channel's constant relu(bn2(0)) is folded through the mean into the dense bias."""
    case = "keras_cnn_savedmodel"
    model = [m for m in CASES[case]["models"] if m["format"] == "graphdef"][0]
    gd = parse_graphdef_bytes((FIXTURES / case / model["file"]).read_bytes())
    by = {n.name: n for n in gd.node}

    def const_of(name):
        while by[name].op == "Identity":
            name = by[name].input[0]
        return by[name]

    def edit(name, fn):
        n = const_of(name)
        v = tensor_util.MakeNdarray(n.attr["value"].tensor).copy()
        fn(v)
        n.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(v))

    conv = next(n for n in gd.node if n.op == "Conv2D")
    bias = next(n for n in gd.node if n.op == "BiasAdd" and n.input[0] == conv.name)
    bn1 = next(n for n in gd.node if n.op == "FusedBatchNormV3" and n.input[0] == bias.name)
    edit(conv.input[1], lambda v: v.__setitem__((..., 2), 0.0))
    edit(bias.input[1], lambda v: v.__setitem__(2, 0.0))
    edit(bn1.input[2], lambda v: v.__setitem__(2, -1.0))   # offset: BN(0) = -1 - mean·k
    edit(bn1.input[3], lambda v: v.__setitem__(2, 0.0))    # mean
    src = tmp_path / "dead.pb"
    src.write_bytes(gd.SerializeToString())
    pruned, rep = prune(src, "--channels", tmp_path=tmp_path)
    outputs = list(model["outputs"])
    feeds = feeds_for(model, load_io(case))
    for a, b in zip(run_graphdef(pruned, feeds, outputs), run_graphdef(gd, feeds, outputs)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    (layer,) = rep["channels"]["layers"]
    assert layer["removed"] == [2] and layer["channels_after"] == 7
    after = consts(pruned)
    assert after[const_of(conv.input[1]).name].shape == (3, 3, 3, 7)
    dw = next(n for n in pruned.node if n.op == "DepthwiseConv2dNative")
    assert after[const_of(dw.input[1]).name].shape == (3, 3, 7, 1)
    assert rep["flops_after"]["flops"] < rep["flops_before"]["flops"]
    assert rep["flops_after"]["unknown"] == 0


@needs
def test_lstm_kernels_inside_the_while_body_are_pruned(tmp_path):
    """keras_seq's LSTM kernels reach the While body as loop inputs; they are pruned too."""
    case = "keras_seq_savedmodel"
    model = [m for m in CASES[case]["models"] if m["format"] == "graphdef"][0]
    src = FIXTURES / case / model["file"]
    original = parse_graphdef_bytes(src.read_bytes())
    pruned, rep = prune(src, "--sparsity", "0.5", tmp_path=tmp_path)
    inside = [t for t in rep["tensors"] if "while_body" in t["consumer"]]
    assert len(inside) == 2, rep["tensors"]
    check_per_tensor(original, pruned, 0.5, [t["name"] for t in rep["tensors"]])
    outputs = list(model["outputs"])
    (y,) = run_graphdef(pruned, feeds_for(model, load_io(case)), outputs)
    assert np.isfinite(y).all() and np.allclose(y.sum(-1), 1, atol=1e-5)
