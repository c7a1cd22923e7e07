"""tf-transform against real TensorFlow.

Every transform is run on a small graph made by TF 2.21 (tf.compat.v1 ops); the transformed
graph is imported and run by TF and compared with the original (numeric transforms: the max
abs error is printed, ``-s`` shows it; the table in docs/tools/tf-transform.md), or checked
structurally against GTT's documented semantics. The README pipeline written as one
tf-transform call gives the same bytes as the pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from conftest import BIN_DIR, FIXTURES, parse_graphdef_bytes, run_graphdef, run_tool

TOOL = "tf-transform"
needs = pytest.mark.needs_bin(TOOL)
v1 = tf.compat.v1
RNG = np.random.default_rng(7)
X = RNG.standard_normal((1, 12, 12, 3)).astype(np.float32)
FROZEN = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"


def transform(gd, transforms, *, inputs="x", outputs="out", extra=()):
    args = ["--transforms", transforms, *extra]
    if inputs:
        args += ["--inputs", inputs]
    if outputs:
        args += ["--outputs", outputs]
    r = run_tool(TOOL, *args, input=gd.SerializeToString())
    return parse_graphdef_bytes(r.stdout)


def build(fn):
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, 12, 12, 3], name="x")
        tf.identity(fn(x), name="out")
    return g.as_graph_def()


def weights(*shape):
    return tf.constant(RNG.standard_normal(shape).astype(np.float32) * 0.3)


def run(gd, fetch="out:0"):
    return run_graphdef(gd, {"x:0": X}, [fetch])[0]


def compare(name, before, after, atol):
    a, b = run(before), run(after)
    err = float(np.max(np.abs(a.astype(np.float64) - b)))
    print(f"\nmax abs error {name}: {err:.3g}")
    assert a.shape == b.shape and err <= atol, f"{name}: {err}"
    return err


def ops(gd):
    return [n.op for n in gd.node]


def conv_net(x):
    y = tf.nn.conv2d(x, weights(3, 3, 3, 8), 1, "SAME")
    return tf.nn.relu(tf.nn.bias_add(y, weights(8)))


# --- transforms with a pass behind them -------------------------------------------------------

@needs
def test_strip_unused_nodes():
    def f(x):
        tf.nn.relu(x, name="unused")
        return conv_net(x)
    gd = build(f)
    out = transform(gd, 'strip_unused_nodes(type=float, shape="1,12,12,3")')
    assert "unused" not in {n.name for n in out.node}
    compare("strip_unused_nodes", gd, out, 0)


@needs
def test_fold_constants():
    gd = build(lambda x: x * (tf.constant(2.0) + tf.constant(3.0)) + tf.reduce_sum(weights(4, 4)))
    out = transform(gd, "fold_constants(ignore_errors=true)")
    assert "Sum" not in ops(out) and "AddV2" in ops(out)
    compare("fold_constants", gd, out, 1e-6)


@needs
def test_fold_batch_norms():
    def f(x):
        y = tf.nn.conv2d(x, weights(3, 3, 3, 8), 1, "SAME")
        return y * weights(8)
    gd = build(f)
    out = transform(gd, "fold_constants fold_batch_norms")
    assert "Mul" not in ops(out)
    compare("fold_batch_norms", gd, out, 1e-5)


@needs
def test_fold_old_batch_norms():
    def f(x):
        y = tf.nn.conv2d(x, weights(3, 3, 3, 8), 1, "SAME")
        var = tf.constant(RNG.uniform(0.5, 2, 8).astype(np.float32))
        y, _, _ = v1.nn.fused_batch_norm(y, weights(8), weights(8), weights(8), var,
                                          is_training=False)
        return y
    gd = build(f)
    out = transform(gd, "fold_old_batch_norms")
    assert not [o for o in ops(out) if o.startswith("FusedBatchNorm")]
    compare("fold_old_batch_norms", gd, out, 1e-5)


@needs
def test_merge_duplicate_nodes():
    w = RNG.standard_normal((3, 3, 3, 4)).astype(np.float32)
    gd = build(lambda x: tf.nn.conv2d(x, tf.constant(w), 1, "SAME")
               + tf.nn.conv2d(x, tf.constant(w), 1, "SAME"))
    out = transform(gd, "merge_duplicate_nodes")
    assert ops(out).count("Conv2D") == 1
    compare("merge_duplicate_nodes", gd, out, 0)


@needs
def test_quantize_weights():
    gd = build(lambda x: tf.nn.conv2d(x, weights(3, 3, 3, 64), 1, "SAME"))
    out = transform(gd, "quantize_weights")
    assert "Dequantize" in ops(out)
    assert "Dequantize" not in ops(transform(gd, "quantize_weights(minimum_size=100000)"))
    compare("quantize_weights", gd, out, 0.05)


@needs
def test_round_weights():
    gd = build(lambda x: tf.nn.conv2d(x, weights(3, 3, 3, 64), 1, "SAME"))
    out = transform(gd, "round_weights(num_steps=256)")
    w = [n for n in out.node if n.op == "Const" and len(n.attr["value"].tensor.tensor_content) > 4000]
    vals = np.frombuffer(w[0].attr["value"].tensor.tensor_content, np.float32)
    assert len(np.unique(vals)) <= 256
    compare("round_weights", gd, out, 0.05)


# --- rewrites ----------------------------------------------------------------------------------

def pad_conv(x, resize, pad):
    if resize:
        x = v1.image.resize_bilinear(x, [16, 16])
    if pad:
        x = tf.pad(x, [[0, 0], [1, 1], [2, 2], [0, 0]], mode="REFLECT")
    return tf.nn.conv2d(x, weights(3, 3, 3, 4), 1, "VALID")


@pytest.mark.parametrize("name,resize,pad,op", [
    ("fuse_pad_and_conv", False, True, "FusedPadConv2D"),
    ("fuse_resize_and_conv", True, False, "FusedResizeAndPadConv2D"),
    ("fuse_resize_pad_and_conv", True, True, "FusedResizeAndPadConv2D"),
])
@needs
def test_fuse_conv(name, resize, pad, op):
    gd = build(lambda x: pad_conv(x, resize, pad))
    out = transform(gd, name)
    assert op in ops(out) and "Conv2D" not in ops(out)
    compare(name, gd, out, 1e-5)


@needs
def test_flatten_atrous_conv():
    def f(x):
        y = tf.space_to_batch_nd(x, [2, 2], [[2, 2], [2, 2]])
        y = tf.nn.conv2d(y, weights(3, 3, 3, 4), 1, "VALID")
        return tf.compat.v1.batch_to_space_nd(y, [2, 2], [[0, 0], [0, 0]])
    gd = build(f)
    out = transform(gd, "flatten_atrous_conv")
    assert "SpaceToBatchND" not in ops(out) and "BatchToSpaceND" not in ops(out)
    compare("flatten_atrous_conv", gd, out, 1e-5)


@needs
def test_backport_concatv2():
    gd = build(lambda x: tf.concat([x, tf.nn.relu(x)], axis=3))
    out = transform(gd, "backport_concatv2")
    assert "Concat" in ops(out) and "ConcatV2" not in ops(out)
    compare("backport_concatv2", gd, out, 0)


@needs
def test_backport_tensor_array_v3():
    def f(x):
        raw = tf.raw_ops
        h, flow = raw.TensorArrayV3(size=2, dtype=tf.float32)
        flow = raw.TensorArrayWriteV3(handle=h, index=0, value=x, flow_in=flow)
        flow = raw.TensorArrayWriteV3(handle=h, index=1, value=x * 2.0, flow_in=flow)
        return raw.TensorArrayGatherV3(handle=h, indices=[0, 1], flow_in=flow, dtype=tf.float32)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, 12, 12, 3], name="x")
        tf.identity(f(x), name="out")
    gd = g.as_graph_def()
    out = transform(gd, "backport_tensor_array_v3")
    assert not [o for o in ops(out) if o.startswith("TensorArray") and o.endswith("V3")]
    assert any(n.name.endswith("/replacement_flow_node") for n in out.node)
    # The V2 ops exist for graphs older than producer 26 (what the backport is for): run the
    # output as such a graph.
    out.versions.producer = 25
    compare("backport_tensor_array_v3", gd, out, 0)


@needs
def test_inline_partitionedcall():
    @tf.function
    def inner(x):
        return tf.nn.relu(x) * 2.0

    @tf.function
    def outer(x):
        return tf.identity(inner(x) + 1.0, name="out")
    gd = outer.get_concrete_function(tf.TensorSpec([1, 12, 12, 3], tf.float32, name="x")) \
        .graph.as_graph_def()
    assert "PartitionedCall" in ops(gd)
    out = transform(gd, "inline_partitionedcall", outputs=None)
    assert "PartitionedCall" not in ops(out)
    compare("inline_partitionedcall", gd, out, 0)


@needs
def test_insert_logging():
    gd = build(conv_net)
    out = transform(gd, 'insert_logging(op=Relu, show_name=true, message="relu:")')
    assert ops(out).count("Print") == 1
    compare("insert_logging", gd, out, 0)


@needs
def test_remove_nodes():
    gd = build(lambda x: tf.nn.relu(tf.identity(tf.identity(x))))
    out = transform(gd, "remove_nodes(op=Identity, op=CheckNumerics)")
    assert ops(out).count("Identity") == 1  # the output
    compare("remove_nodes", gd, out, 0)


# --- edits: the graph still imports and computes the same -------------------------------------

EDITS = {
    "add_default_attributes": lambda o: True,
    "obfuscate_names": lambda o: {n.name for n in o.node} >= {"x", "out"}
    and len(o.node) > 2 and all(len(n.name) <= 3 for n in o.node),
    "remove_attribute(attribute_name=use_cudnn_on_gpu)":
        lambda o: all("use_cudnn_on_gpu" not in n.attr for n in o.node),
    "rename_attribute(old_attribute_name=_x, new_attribute_name=_y)": lambda o: True,
    "rename_node(old_node_name=Relu, new_node_name=activation)":
        lambda o: "activation" in {n.name for n in o.node},
    "rename_op(old_op_name=Relu, new_op_name=Relu6)": lambda o: "Relu6" in ops(o),
    "set_device(device=/cpu:0)": lambda o: all(n.device == "/cpu:0" for n in o.node),
    "remove_device": lambda o: all(n.device == "" for n in o.node),
    "remove_control_dependencies": lambda o: all(not i.startswith("^") for n in o.node
                                                 for i in n.input),
    "sort_by_execution_order": lambda o: [n.name for n in o.node][0] in ("x", "Const"),
}


@pytest.mark.parametrize("t", list(EDITS))
@needs
def test_edits(t):
    def f(x):
        with tf.control_dependencies([tf.constant(1.0)]):
            return conv_net(x)
    gd = build(f)
    gd.node.reverse() if t == "sort_by_execution_order" else None
    out = transform(gd, t)
    assert EDITS[t](out), t
    if t.startswith("rename_op"):
        a, b = run(gd), run(out)
        assert np.array_equal(np.minimum(a, 6), b)
    else:
        compare(t.split("(")[0], gd, out, 0)


@needs
def test_freeze_requantization_ranges_without_ranges_passes_through(tmp_path):
    gd = build(conv_net)
    log = tmp_path / "log.txt"
    log.write_text("")
    out = transform(gd, f'freeze_requantization_ranges(min_max_log_file="{log}")')
    assert out == gd


@needs
def test_sparsify_gather():
    w = np.zeros((50, 1), np.float32)
    w[[3, 17, 41]] = [[0.5], [-2.0], [1.25]]
    ids = np.array([3, 4, 17, 41, 0], np.int32)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.int32, [None], name="x")
        emb = tf.gather(tf.identity(tf.constant(w)), x)
        tf.identity(emb * 2.0, name="out")
    gd = g.as_graph_def()
    out = transform(gd, "sparsify_gather")
    assert "GatherV2" not in ops(out) and "LookupTableFindV2" in ops(out)
    want = run_graphdef(gd, {"x:0": ids}, ["out:0"])[0]
    with tf.Graph().as_default() as g2:
        tf.graph_util.import_graph_def(out, name="")
        with v1.Session(graph=g2) as s:
            s.run("group_deps")
            got = s.run("out:0", {"x:0": ids})
    err = float(np.max(np.abs(got - want)))
    print(f"\nmax abs error sparsify_gather: {err:.3g}")
    assert got.shape == want.shape and err == 0


@needs
def test_fake_quantize_training():
    rng = np.random.default_rng(17)  # its own seed: the error in the docs does not vary

    def w(*shape):
        return tf.constant(rng.standard_normal(shape).astype(np.float32) * 0.3)

    def f(x):
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w(3, 3, 3, 8), 1, "SAME"), w(8)))
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")
        y = tf.nn.relu6(tf.nn.conv2d(y, w(3, 3, 8, 8), 1, "SAME"))
        return tf.matmul(tf.reshape(y, [1, 6 * 6 * 8]), w(6 * 6 * 8, 10))
    gd = build(f)
    out = transform(gd, "fake_quantize_training")
    q = {n.name: n for n in out.node if "Quant" in n.op}
    # GTT's choices: a fixed [0, 6] FakeQuant for the Relu6 (through the Reshape); the tensor's
    # own range, unsigned, for the Relu (through the pool); signed for the input and weights.
    fq = [n for n in q.values() if n.op == "FakeQuantWithMinMaxVars"]
    assert len(fq) == 1 and fq[0].input[0] == "Reshape", fq
    qdq = [n for n in q.values() if n.op == "QuantizeAndDequantizeV2"]
    assert len(qdq) == 5 and all(n.attr["num_bits"].i == 8 for n in q.values())
    assert [n.attr["signed_input"].b for n in qdq].count(False) == 1
    for n in out.node:
        if n.op in ("Conv2D", "MatMul"):
            assert all(i in q for i in n.input), n
    a = run(gd)
    err = compare("fake_quantize_training", gd, out, 0.05 * float(np.abs(a).max()))
    print(f"fake_quantize_training: max abs error {err:.3g} of output max {np.abs(a).max():.3g}")


# --- quantize_nodes: int8 kernels, run by TF with oneDNN on (in a worker process) -------------

# The int8 kernels need oneDNN, which TF reads at import and this tier runs with off.
INT8_WORKER = """
import json, sys
import numpy as np
import tensorflow as tf
x = np.load(sys.argv[1])
def run(path):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(open(path, "rb").read()),
                                       name="")
    with tf.compat.v1.Session(graph=g) as s:
        return s.run("out:0", {"x:0": x}).reshape(len(x), -1).astype(np.float64)
ref = run(sys.argv[2])
res = {}
for p in sys.argv[3:]:
    got = run(p)
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    res[p] = {"cosine_min": float(cos.min()), "max_abs_err": float(np.abs(ref - got).max()),
              "ref_max_abs": float(np.abs(ref).max())}
print(json.dumps(res))
"""


def int8_net(x, rng):
    # Its own seed, so the numbers do not depend on which tests ran before.
    def w(*shape):
        return tf.constant(rng.standard_normal(shape).astype(np.float32) * 0.3)
    y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w(3, 3, 3, 8), 1, "SAME"), w(8)))
    return tf.nn.bias_add(tf.nn.conv2d(y, w(3, 3, 8, 4), 1, "SAME"), w(4))


def ranges_file(gd, calib, path):
    """tf-run --calibrate when built; else the same file from TF (min/max of every float
    tensor the rewrite may need; one-bin histograms)."""
    if (BIN_DIR / "tf-run").is_file():
        np.savez(path.with_suffix(".npz"), x=calib)
        path.with_name("calibrated.pb").write_bytes(gd.SerializeToString())
        run_tool("tf-run", path.with_name("calibrated.pb"), "--calibrate", path.with_suffix(".npz"),
                 "-o", path, "-q")
        return
    names = [n.name + ":0" for n in gd.node
             if n.op in ("Placeholder", "Conv2D", "BiasAdd", "Relu", "Relu6", "MatMul")]
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    with v1.Session(graph=g) as s:
        vals = s.run(names, {"x:0": calib})
    tensors = {n: {"min": float(v.min()), "max": float(v.max()), "count": int(v.size),
                   "hist_max": float(np.abs(v).max()), "histogram": [int(v.size)]}
               for n, v in zip(names, vals)}
    path.write_text(json.dumps({"format": "tf-tools-activation-ranges", "version": 1,
                                "source": "test", "samples": len(calib),
                                "smoke_run_only": False, "bins": 1, "tensors": tensors}))


@needs
def test_quantize_nodes(tmp_path):
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 12, 12, 3], name="x")
        rng = np.random.default_rng(16)
        tf.identity(int8_net(x, rng), name="out")
    gd = g.as_graph_def()
    calib = rng.standard_normal((64, 12, 12, 3)).astype(np.float32)
    held = rng.standard_normal((16, 12, 12, 3)).astype(np.float32)
    ranges = tmp_path / "ranges.json"
    ranges_file(gd, calib, ranges)
    paths = {"float": tmp_path / "float.pb"}
    paths["float"].write_bytes(gd.SerializeToString())
    for name, t in [("ranges", f"quantize_nodes(ranges={ranges})"),
                    ("fallback", "quantize_nodes(fallback_min=-16, fallback_max=16)"),
                    ("legacy", f"quantize_nodes(ranges={ranges}, legacy_gtt=frozen)")]:
        out = transform(gd, t)
        assert ops(out).count("QuantizeV2") == 1 and "Conv2D" not in ops(out), (name, ops(out))
        paths[name] = tmp_path / f"{name}.pb"
        paths[name].write_bytes(out.SerializeToString())
    np.save(tmp_path / "x.npy", held)
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-c", INT8_WORKER, str(tmp_path / "x.npy"),
                        str(paths["float"]), str(paths["ranges"]), str(paths["fallback"]),
                        str(paths["legacy"])],
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    res = json.loads(r.stdout)
    assert "QuantizedConv2D" in ops(transform(gd, f"quantize_nodes(ranges={ranges}, "
                                                  "legacy_gtt=dynamic)"))
    for name in ("ranges", "fallback", "legacy"):
        m = res[str(paths[name])]
        print(f"\nquantize_nodes {name}: {m}")
        assert m["cosine_min"] >= 0.99 and m["max_abs_err"] <= 0.1 * m["ref_max_abs"], (name, m)
    # Without ranges: one line saying how to get them, exit 2, nothing on stdout.
    r = run_tool(TOOL, "--transforms", "quantize_nodes", "--inputs", "x", "--outputs", "out",
                 input=gd.SerializeToString(), check=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and r.stdout == b"" and err.count("\n") == 1, err
    assert "tf-run --calibrate" in err and "quantize_nodes(ranges=ranges.json)" in err


# --- the CLI ---------------------------------------------------------------------------------

@needs
def test_readme_pipeline_as_one_call(tmp_path):
    pipe = run_tool("tf-quant", "int8", input=run_tool(
        "tf-fold", input=run_tool("tf-strip", str(FROZEN)).stdout).stdout).stdout
    out = tmp_path / "one.pb"
    run_tool(TOOL, f"--in_graph={FROZEN}", f"--out_graph={out}", "--transforms",
             "strip_unused_nodes fold_constants fold_batch_norms fold_old_batch_norms "
             "quantize_weights(mode=int8)")
    assert out.read_bytes() == pipe


@needs
def test_gtt_flags_and_text_output(tmp_path):
    out = tmp_path / "out.pbtxt"
    run_tool(TOOL, f"--in_graph={FROZEN}", f"--out_graph={out}", "--output_as_text",
             "--outputs=Identity", "--transforms=remove_device sort_by_execution_order")
    from google.protobuf import text_format
    gd = text_format.Parse(out.read_text(), graph_pb2.GraphDef())
    assert any(n.name == "Identity" for n in gd.node)
