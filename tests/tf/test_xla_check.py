"""tf-xla-check against real TensorFlow 2.21: for every graph here, our offline verdict must
match what TF does when the graph runs inside ``tf.function(jit_compile=True)`` on CPU.

Each graph (fixture frozen graphs, tf-freeze outputs, graphs crafted here with real TF, and a
tf-quant output) is imported with ``tf.graph_util.import_graph_def`` inside
``tf.compat.v1.wrap_function``, pruned to its outputs (placeholders become arguments), wrapped
in ``tf.function(jit_compile=True)`` and called on inputs. TF either runs it or raises the XLA
compilation error; ``tf-xla-check --outputs ...`` must say the same, and when both say "does
not compile", the op TF names first must be among the ops we report.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest

from conftest import (BIN_DIR, FIXTURES, REPO, load_case, parse_graphdef_bytes, run_tool,
                      tf)

v1 = tf.compat.v1
TOOL = "tf-xla-check"


# -----------------------------------------------------------------------------
# running a graph under XLA with real TF

def placeholders(gd):
    return [n for n in gd.node if n.op == "Placeholder"]


def value_for(node):
    dt = tf.dtypes.as_dtype(node.attr["dtype"].type)
    shp = node.attr["shape"].shape
    shape = [] if shp.unknown_rank else [d.size if d.size >= 0 else 2 for d in shp.dim]
    if dt == tf.string:
        return tf.constant(np.full(shape, b"7", dtype=object))
    if dt == tf.bool:
        return tf.constant(np.zeros(shape, bool))
    if dt in (tf.quint8, tf.qint8, tf.qint32):
        return tf.constant(np.ones(shape, dt.as_numpy_dtype), dtype=dt)
    if dt.is_integer:
        return tf.constant(np.ones(shape, dt.as_numpy_dtype))
    return tf.constant(np.asarray(np.random.RandomState(0).rand(*shape), dt.as_numpy_dtype))


def run_under_xla(gd, outputs, inputs=None):
    """(compiled?, error message) of gd's outputs under jit_compile=True on CPU; the arguments
    are the placeholders, or the tensors `inputs` (fed whatever op produces them)."""
    w = v1.wrap_function(lambda: tf.graph_util.import_graph_def(gd, name=""), [])
    g = w.graph
    if inputs is None:
        ins = placeholders(gd)
        feeds = [g.get_tensor_by_name(n.name + ":0") for n in ins]
        values = [value_for(n) for n in ins]
    else:
        feeds = [g.get_tensor_by_name(t) for t in inputs]
        values = [tf.constant(np.asarray(np.random.RandomState(0).rand(
            *[d if d is not None else 2 for d in t.shape]), t.dtype.as_numpy_dtype))
            for t in feeds]
    f = w.prune(feeds, [g.get_tensor_by_name(o if ":" in o else o + ":0") for o in outputs])
    xf = tf.function(lambda *a: f(*a), jit_compile=True)
    with tf.device("/CPU:0"):
        try:
            xf(*values)
            return True, ""
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
            return False, str(e)


def tf_blamed_op(msg):
    """The op TF's error names first (as a graph op: _Arg is a Placeholder)."""
    m = re.search(r"on XLA_\w+_JIT: (\w+) \(No registered", msg)
    if m:
        return {"_Arg": "Placeholder", "_Retval": "_Retval"}.get(m.group(1), m.group(1))
    m = re.search(r"with op (\w+) must be a compile-time constant", msg)
    if m:
        return m.group(1)
    if "Mode string must be 'MIN_COMBINED'" in msg:
        return "Dequantize"
    return None


def ours(gd_bytes, outputs, tmp_path, canonical, inputs=None):
    rep = tmp_path / "xla.json"
    cut = ["--inputs", ",".join(inputs)] if inputs else []
    r = run_tool(TOOL, "--outputs", ",".join(outputs), *cut, "--report", rep, input=gd_bytes,
                 check=False)
    assert r.returncode in (0, 1), r.stderr.decode()
    if canonical:
        assert r.stdout == gd_bytes, "the graph must pass through byte-identical"
    else:
        # Python's protobuf orders map entries its own way even when "deterministic"; the tool
        # writes TF C++'s canonical order (sorted keys). Same message, possibly other bytes.
        assert parse_graphdef_bytes(r.stdout) == parse_graphdef_bytes(gd_bytes)
    report = json.loads(rep.read_text())["changes"]["xla"]
    assert (r.returncode == 0) == report["compilable"]
    return report


RESULTS: dict[str, tuple] = {}


def agree(name, gd_bytes, outputs, tmp_path, canonical=True, inputs=None):
    gd = parse_graphdef_bytes(gd_bytes)
    tf_ok, msg = run_under_xla(gd, outputs, inputs)
    report = ours(gd_bytes, outputs, tmp_path, canonical, inputs)
    our_ops = sorted({f["op"] for f in report["findings"]})
    RESULTS[name] = (tf_ok, report["compilable"], tf_blamed_op(msg), our_ops)
    assert report["compilable"] == tf_ok, (
        f"{name}: TF {'compiled' if tf_ok else 'failed'}, we say "
        f"{'compiles' if report['compilable'] else 'fails'}: {our_ops}\nTF: {msg[:600]}")
    if not tf_ok:
        blamed = tf_blamed_op(msg)
        assert blamed in our_ops, f"{name}: TF blames {blamed}, we report {our_ops}\n{msg[:600]}"


# -----------------------------------------------------------------------------
# fixture graphs and tf-freeze outputs

FIXTURE_GRAPHS = {
    "keras_cnn_frozen": ("keras_cnn_savedmodel/frozen.pb", None),
    "keras_seq_frozen": ("keras_seq_savedmodel/frozen.pb", None),
    "keras_mha_frozen": ("keras_mha_savedmodel/frozen.pb", None),
    "control_flow_v1": ("control_flow/v1_graph.pb", None),
    "tf1_cnn_train": ("tf1_cnn_train/graph.pb", ["softmax:0", "logits:0"]),
    "tf1_partitioned": ("tf1_partitioned/graph.pb", ["output:0"]),
}


def detected_outputs(gd):
    consumed = {i.lstrip("^").split(":")[0] for n in gd.node for i in n.input}
    return [n.name + ":0" for n in gd.node
            if n.name not in consumed and n.op not in ("NoOp", "Const", "Placeholder")]


@pytest.mark.needs_bin(TOOL)
@pytest.mark.parametrize("name", sorted(FIXTURE_GRAPHS))
def test_fixture_graph_agrees_with_tf(name, tmp_path):
    path, outputs = FIXTURE_GRAPHS[name]
    data = (FIXTURES / path).read_bytes()
    agree(name, data, outputs or detected_outputs(parse_graphdef_bytes(data)), tmp_path)


@pytest.mark.needs_bin(TOOL)
def test_dtypes_fixture_outputs_agree_with_tf(tmp_path):
    """Constants of every dtype fetched from a compiled function (_Retval's type set)."""
    data = (FIXTURES / "dtypes/graph.pb").read_bytes()
    gd = parse_graphdef_bytes(data)
    picked = {"string", "float32", "bfloat16", "complex64", "qint8", "uint16", "bool"}
    for out in load_case("dtypes")["outputs"]:
        if out.split("/")[0] in picked:
            agree(f"dtypes[{out}]", data, [out], tmp_path)


FREEZE_CASES = ["keras_cnn_savedmodel", "keras_seq_savedmodel", "keras_mha_savedmodel",
                "control_flow"]


@pytest.mark.needs_bin(TOOL, "tf-freeze")
@pytest.mark.parametrize("case", FREEZE_CASES)
def test_freeze_output_agrees_with_tf(case, tmp_path):
    frozen = run_tool("tf-freeze", FIXTURES / case / "saved_model").stdout
    agree(f"tf-freeze {case}", frozen, detected_outputs(parse_graphdef_bytes(frozen)), tmp_path)


# -----------------------------------------------------------------------------
# graphs crafted with real TF

def build(fn):
    g = tf.Graph()
    with g.as_default():
        fn()
    return g.as_graph_def().SerializeToString(deterministic=True)


def g_reshape_sum():  # the shape depends on an argument's value: XLA specialises, compiles
    x = v1.placeholder(tf.float32, [4], name="x")
    n = tf.cast(tf.reduce_sum(tf.ones_like(x)), tf.int32)
    tf.identity(tf.reshape(x, tf.stack([n, -1])), name="out")


def g_reshape_random():  # the shape depends on a random number: data-dependent
    x = v1.placeholder(tf.float32, [4], name="x")
    n = tf.cast(v1.random_uniform([], 1, 2), tf.int32)
    tf.identity(tf.reshape(x, tf.stack([n, -1])), name="out")


def g_reshape_placeholder():
    x = v1.placeholder(tf.float32, [4], name="x")
    s = v1.placeholder(tf.int32, [2], name="s")
    tf.identity(tf.reshape(x, s * 2), name="out")


def g_strings():
    x = v1.placeholder(tf.float32, [4], name="x")
    tf.identity(tf.strings.to_hash_bucket_fast(tf.strings.as_string(x), 10), name="out")


def g_string_placeholder():
    x = v1.placeholder(tf.string, [2], name="x")
    tf.identity(tf.strings.length(x), name="out")


def g_string_output():
    x = v1.placeholder(tf.float32, [], name="x")
    tf.identity(tf.constant("hi"), name="out")
    tf.identity(x, name="o2")


def g_where():
    x = v1.placeholder(tf.float32, [4], name="x")
    tf.identity(tf.where(x > 0.5), name="out")


def g_unique():
    x = v1.placeholder(tf.int32, [4], name="x")
    u, _ = tf.unique(x)
    tf.identity(u, name="out")


def dequantize(mode, from_placeholder):
    def fn():
        if from_placeholder:
            q = v1.placeholder(tf.quint8, [8], name="q")
        else:
            q = tf.constant(np.arange(8, dtype=np.uint8), dtype=tf.quint8)
        d = tf.raw_ops.Dequantize(input=q, min_range=tf.constant(-1.0),
                                  max_range=tf.constant(1.0), mode=mode)
        tf.identity(d, name="out")
    return fn


def g_lookup_table():
    keys = tf.constant([1, 2], tf.int64)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.constant([3, 4], tf.int64)), -1)
    x = v1.placeholder(tf.int64, [2], name="x")
    tf.identity(table.lookup(x), name="out")


def g_while_v1():
    x = v1.placeholder(tf.float32, [], name="x")
    v1.disable_control_flow_v2()
    try:
        r = v1.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 2.0), [tf.constant(0), x])
    finally:
        v1.enable_control_flow_v2()
    tf.identity(r[1], name="out")


def g_while_v2():
    x = v1.placeholder(tf.float32, [], name="x")
    r = tf.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 2.0), [tf.constant(0), x])
    tf.identity(r[1], name="out")


def g_cond_v2_with_string_op():
    x = v1.placeholder(tf.float32, [], name="x")
    r = tf.cond(x > 0.5,
                lambda: tf.strings.to_number(tf.strings.as_string(x)),
                lambda: x * 2.0)
    tf.identity(r, name="out")


def g_print():
    x = v1.placeholder(tf.float32, [], name="x")
    p = tf.print(x)
    with tf.control_dependencies([p]):
        tf.identity(x, name="out")


def g_matmul_uint8():  # MatMul has XLA kernels, but none for uint8
    a = v1.placeholder(tf.uint8, [2, 2], name="a")
    tf.identity(tf.raw_ops.MatMul(a=a, b=a), name="out")


def g_matmul_int32():
    a = v1.placeholder(tf.int32, [2, 2], name="a")
    tf.identity(tf.raw_ops.MatMul(a=a, b=a), name="out")


def g_function_with_string_op():  # a PartitionedCall whose body does not compile
    @tf.function(autograph=False)
    def f(x):
        return tf.strings.to_number(tf.strings.as_string(x))

    x = v1.placeholder(tf.float32, [2], name="x")
    tf.identity(f(x), name="out")


def g_function_ok():
    @tf.function(autograph=False)
    def f(x):
        return tf.nn.relu(x) * 2.0

    x = v1.placeholder(tf.float32, [2], name="x")
    tf.identity(f(x), name="out")


def g_while_shape_from_loop_var():  # a shape from the loop counter: not a constant
    x = v1.placeholder(tf.float32, [], name="x")
    r = tf.while_loop(lambda i, a: i < 3,
                      lambda i, a: (i + 1, a + tf.reduce_sum(tf.zeros(tf.stack([i])))),
                      [tf.constant(0), x])
    tf.identity(r[1], name="out")


def g_while_constant_shape():
    x = v1.placeholder(tf.float32, [], name="x")
    r = tf.while_loop(lambda i, a: i < 3,
                      lambda i, a: (i + 1, a + tf.reduce_sum(tf.zeros(tf.stack([2])))),
                      [tf.constant(0), x])
    tf.identity(r[1], name="out")


def g_cond_shape_from_placeholder():  # the branch gets the argument's value as a constant
    x = v1.placeholder(tf.float32, [], name="x")
    n = v1.placeholder(tf.int32, [], name="n")
    r = tf.cond(x > 0.5, lambda: tf.reduce_sum(tf.zeros(tf.stack([n]))), lambda: x)
    tf.identity(r, name="out")


def g_cond_random_shape():
    x = v1.placeholder(tf.float32, [], name="x")
    r = tf.cond(x > 0.5,
                lambda: tf.reduce_sum(tf.zeros(tf.stack(
                    [tf.cast(v1.random_uniform([], 1, 3), tf.int32)]))),
                lambda: x)
    tf.identity(r, name="out")


CRAFTED = {
    "while_shape_from_loop_var": g_while_shape_from_loop_var,
    "while_constant_shape": g_while_constant_shape,
    "cond_shape_from_placeholder": g_cond_shape_from_placeholder,
    "cond_random_shape": g_cond_random_shape,
    "matmul_uint8": g_matmul_uint8,
    "matmul_int32": g_matmul_int32,
    "function_with_string_op": g_function_with_string_op,
    "function_ok": g_function_ok,
    "reshape_of_argument_value": g_reshape_sum,
    "reshape_data_dependent": g_reshape_random,
    "reshape_placeholder_shape": g_reshape_placeholder,
    "string_ops": g_strings,
    "string_placeholder": g_string_placeholder,
    "string_output": g_string_output,
    "where": g_where,
    "unique": g_unique,
    "dequantize_min_first": dequantize("MIN_FIRST", True),
    "dequantize_min_first_const": dequantize("MIN_FIRST", False),
    "dequantize_scaled": dequantize("SCALED", True),
    "dequantize_min_combined": dequantize("MIN_COMBINED", True),
    "lookup_table": g_lookup_table,
    "tf1_while_loop": g_while_v1,
    "while_v2": g_while_v2,
    "cond_v2_string_branch": g_cond_v2_with_string_op,
    "print": g_print,
}


@pytest.mark.needs_bin(TOOL)
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_graph_agrees_with_tf(name, tmp_path):
    data = build(CRAFTED[name])
    outputs = ["out:0"] + (["o2:0"] if name == "string_output" else [])
    agree(name, data, outputs, tmp_path, canonical=False)


@pytest.mark.needs_bin(TOOL)
def test_tf_quant_output_agrees_with_tf(tmp_path):
    assert (BIN_DIR / "tf-quant").exists(), f"tf-quant is not built in {BIN_DIR}"
    src = FIXTURES / "keras_cnn_savedmodel/frozen.pb"
    for mode in ("int8", "uint8", "float16"):
        r = run_tool("tf-quant", mode, src, check=False)
        if r.returncode != 0:
            continue
        gd = parse_graphdef_bytes(r.stdout)
        agree(f"tf-quant {mode}", r.stdout, detected_outputs(gd), tmp_path)


# -----------------------------------------------------------------------------
# CLI behaviour

@pytest.mark.needs_bin(TOOL)
def test_annotated_graph_still_runs_in_tf(tmp_path):
    src = FIXTURES / "keras_cnn_savedmodel/frozen.pb"
    r = run_tool(TOOL, "--annotate", src)
    gd = parse_graphdef_bytes(r.stdout)
    marked = [n for n in gd.node if "_XlaCompile" in n.attr]
    assert marked and all(n.attr["_XlaScope"].s.startswith(b"jit_scope_") for n in marked)
    outputs = detected_outputs(gd)
    ins = placeholders(gd)
    w = v1.wrap_function(lambda: tf.graph_util.import_graph_def(gd, name=""), [])
    g = w.graph
    f = w.prune([g.get_tensor_by_name(n.name + ":0") for n in ins],
                [g.get_tensor_by_name(o) for o in outputs])
    f(*[value_for(n) for n in ins])


@pytest.mark.needs_bin(TOOL)
def test_bad_input_exits_2(tmp_path):
    data = (FIXTURES / "keras_cnn_savedmodel/frozen.pb").read_bytes()
    r = run_tool(TOOL, "--device", "tpu", input=data, check=False)
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode().count("\n") == 1 and "unknown device 'tpu'" in r.stderr.decode()
    cyc = v1.GraphDef()
    for a, b in (("a", "b"), ("b", "a")):
        n = cyc.node.add(name=a, op="Identity", input=[b])
        n.attr["T"].type = tf.float32.as_datatype_enum
    r = run_tool(TOOL, input=cyc.SerializeToString(), check=False)
    assert r.returncode == 2 and r.stdout == b"" and "cycle" in r.stderr.decode()


@pytest.mark.needs_bin(TOOL)
def test_exit_zero_and_gpu(tmp_path):
    data = build(g_strings)
    assert run_tool(TOOL, "--exit-zero", input=data, check=False).returncode == 0
    r = run_tool(TOOL, "--device", "gpu", "--report", tmp_path / "r.json", input=data,
                 check=False)
    assert r.returncode == 1
    rep = json.loads((tmp_path / "r.json").read_text())["changes"]["xla"]
    assert rep["device"] == "XLA_GPU_JIT" and not rep["compilable"]


SAVED_MODELS = ["keras_cnn_savedmodel", "keras_seq_savedmodel", "keras_mha_savedmodel",
                "control_flow"]


@pytest.mark.needs_bin(TOOL)
@pytest.mark.parametrize("case", SAVED_MODELS)
def test_saved_model_agrees_with_tf(case, tmp_path):
    """A SavedModel's serving signature called inside tf.function(jit_compile=True): its
    variables are captured resources (function arguments), not ops to compile."""
    info = load_case(case)
    model = tf.saved_model.load(str(FIXTURES / case / "saved_model"))
    fn = model.signatures["serving_default"]
    with np.load(FIXTURES / case / "io.npz") as z:
        feeds = {spec["signature_key"]: tf.constant(z[spec["key"]])
                 for spec in info["inputs"].values()}
    xf = tf.function(lambda **kw: fn(**kw), jit_compile=True)
    try:
        with tf.device("/CPU:0"):
            xf(**feeds)
        tf_ok, msg = True, ""
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
        tf_ok, msg = False, str(e)
    rep = tmp_path / "xla.json"
    r = run_tool(TOOL, FIXTURES / case / "saved_model", "--report", rep, check=False)
    assert r.returncode in (0, 1), r.stderr.decode()
    report = json.loads(rep.read_text())["changes"]["xla"]
    ops = sorted({f["op"] for f in report["findings"]})
    RESULTS[f"saved_model {case}"] = (tf_ok, report["compilable"], tf_blamed_op(msg), ops)
    assert report["compilable"] == tf_ok, f"{case}: TF {tf_ok}, we {ops}\n{msg[:600]}"


# -----------------------------------------------------------------------------
# signatures and cuts whose inputs are not placeholders

def g_parsed_input():
    """A string placeholder parsed into the float tensor 'x' the model starts from."""
    s = v1.placeholder(tf.string, [None], name="s")
    x = tf.identity(tf.reshape(tf.strings.to_number(s), [-1, 2]), name="x")
    w = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    tf.identity(tf.nn.relu(x @ w), name="out")


@pytest.mark.needs_bin(TOOL)
@pytest.mark.parametrize("inputs", [None, ["x:0"]], ids=["whole", "cut_at_x"])
def test_inputs_cut_agrees_with_tf(inputs, tmp_path):
    agree(f"parsed input, --inputs {inputs}", build(g_parsed_input), ["out:0"], tmp_path,
          canonical=False, inputs=inputs)


@pytest.fixture(scope="module")
def tf1_serving(tmp_path_factory):
    import realworld
    root = tmp_path_factory.mktemp("xla_signatures")
    realworld.tf1_serving_example(root)
    return root / "tf1_serving_example"


def signature_under_xla(export, key):
    """(compiled?, message) of a SavedModel signature called inside jit_compile=True, fed at
    the signature's own input tensors (for a TF1 serving export: 'x:0', an Identity after
    ParseExample, or the serialized tf.Examples)."""
    loaded = tf.saved_model.load(str(export))  # kept alive: the signature reads its variables
    fn = loaded.signatures[key]
    feeds = {}
    for k, spec in fn.structured_input_signature[1].items():
        shape = [d if d is not None else 2 for d in spec.shape]
        if spec.dtype == tf.string:
            ex = tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[1, 2, 3, 4]))}))
            feeds[k] = tf.constant([ex.SerializeToString()] * shape[0])
        else:
            feeds[k] = tf.constant(np.ones(shape, spec.dtype.as_numpy_dtype))
    xf = tf.function(lambda **kw: fn(**kw), jit_compile=True)
    try:
        with tf.device("/CPU:0"):
            xf(**feeds)
        return True, ""
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
        return False, str(e)


@pytest.mark.needs_bin(TOOL)
@pytest.mark.parametrize("key", ["serving_default", "predict_x", "regress_x_to_y",
                                 "classify_x_to_probs"])
def test_signature_with_computed_inputs_agrees_with_tf(tf1_serving, key, tmp_path):
    """The signature's inputs are the compiled function's arguments: 'x:0' is an Identity of
    ParseExample's output, cut there by default (no --inputs)."""
    tf_ok, msg = signature_under_xla(tf1_serving, key)
    rep = tmp_path / "xla.json"
    r = run_tool(TOOL, tf1_serving, "--signature", key, "--report", rep, check=False)
    assert r.returncode in (0, 1), r.stderr.decode()
    report = json.loads(rep.read_text())["changes"]["xla"]
    ops = sorted({f["op"] for f in report["findings"]})
    RESULTS[f"tf1 serving signature {key}"] = (tf_ok, report["compilable"], tf_blamed_op(msg), ops)
    assert report["compilable"] == tf_ok, f"{key}: TF {tf_ok}, we {ops}\n{msg[:600]}"
    if not tf_ok:
        assert tf_blamed_op(msg) in ops + ["_Arg"], f"{key}: TF blames {tf_blamed_op(msg)}: {ops}"


@pytest.mark.needs_bin(TOOL)
def test_saved_model_without_serving_default(tmp_path):
    """No serving_default and no --signature: an error naming the signatures there are; with
    --signature the verdict agrees with TF."""
    m = tf.Module()
    m.w = tf.Variable(np.ones((3, 2), np.float32))
    m.predict = tf.function(lambda x: {"y": tf.nn.relu(x @ m.w)},
                            input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    m.describe = tf.function(lambda x: {"s": tf.strings.as_string(x)},
                             input_signature=[tf.TensorSpec([None], tf.float32)])
    export = tmp_path / "sm"
    tf.saved_model.save(m, str(export), signatures={"predict": m.predict, "describe": m.describe})
    r = run_tool(TOOL, export, check=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and r.stdout == b"" and err.count("\n") == 1, err
    assert "'describe', 'predict'" in err and "--signature" in err, err
    for key in ("predict", "describe"):
        tf_ok, msg = signature_under_xla(export, key)
        rep = tmp_path / f"{key}.json"
        r = run_tool(TOOL, export, "--signature", key, "--report", rep, check=False)
        assert r.returncode in (0, 1), r.stderr.decode()
        report = json.loads(rep.read_text())["changes"]["xla"]
        ops = sorted({f["op"] for f in report["findings"]})
        RESULTS[f"saved model signature {key}"] = (tf_ok, report["compilable"],
                                                   tf_blamed_op(msg), ops)
        assert report["compilable"] == tf_ok, f"{key}: TF {tf_ok}, we {ops}\n{msg[:600]}"


@pytest.mark.needs_bin(TOOL)
def test_vacuous_checks_are_errors(tmp_path):
    """Nothing to check, a call of a missing function: exit 2 and one line, never 'compiles'."""
    lone = v1.GraphDef()
    lone.node.add(name="x", op="Placeholder").attr["dtype"].type = tf.float32.as_datatype_enum
    call = v1.GraphDef()
    call.CopyFrom(lone)
    n = call.node.add(name="call", op="PartitionedCall", input=["x"])
    n.attr["Tin"].list.type.append(tf.float32.as_datatype_enum)
    n.attr["Tout"].list.type.append(tf.float32.as_datatype_enum)
    n.attr["f"].func.name = "missing_fn"
    for gd, word in ((lone, "nothing to check"), (call, "missing_fn")):
        r = run_tool(TOOL, input=gd.SerializeToString(), check=False)
        err = r.stderr.decode()
        assert r.returncode == 2 and r.stdout == b"" and err.count("\n") == 1, err
        assert word in err, err
    g = tf.Graph()
    with pytest.raises(Exception):  # TF agrees that the call graph is broken
        with g.as_default():
            tf.graph_util.import_graph_def(call, name="")
        with v1.Session(graph=g) as s:
            s.run("call:0", {"x:0": np.ones([], np.float32)})


# Runs last (pytest keeps file order).
def test_agreement_table(request):
    """Prints the agreement table (run with -s to see it); always passes once run last."""
    if RESULTS:
        print("\n| graph | TF 2.21 jit_compile | tf-xla-check | TF blames | we report |")
        print("|---|---|---|---|---|")
        for name, (tf_ok, our_ok, blamed, ops) in RESULTS.items():
            print(f"| {name} | {'compiles' if tf_ok else 'fails'} | "
                  f"{'compiles' if our_ok else 'fails'} | {blamed or ''} | {', '.join(ops)} |")
