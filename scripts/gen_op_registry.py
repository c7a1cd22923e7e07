#!/usr/bin/env python3
"""Dump TensorFlow's op registry for the `tf-ops` crate, plus TF-computed arity fixtures.

Usage: .venv/bin/python scripts/gen_op_registry.py [--check]

Writes, relative to the repository root:

  crates/ops/data/ops.pb
      Every op registered once `import tensorflow` has run (public ops and internal ones such
      as `_Arg`, `_Retval`, `_FusedConv2D`, `_Recv`), as one serialized `tensorflow.OpList`.
      It comes from the C API's `TF_GetAllOpList`, the same call TensorFlow's own ApiDefMap
      uses (python/framework/c_api_util.py). `summary` and `description` are cleared on every
      OpDef, ArgDef and AttrDef to keep the file small; everything else (types, defaults,
      allowed values, minimums, deprecations, full-type info, flags) is kept. Ops are sorted
      by name.

  crates/ops/data/VERSION
      `tensorflow <version>`, `git <git version>` and `ops <count>` lines.

  crates/ops/tests/data/arity_cases.json
      About 70 nodes built in real TF graphs (`Graph.create_op`, which runs the C API's attr
      inference and default filling). For each: the NodeDef TF built, the same node with every
      attr equal to its OpDef default removed, TF's own input/output counts, output dtypes and
      per-argument list lengths (`TF_OperationOutputListLength`). The Rust tests check the
      registry's arity/type/port/default-attr logic against these.

Determinism: running the script twice gives byte-identical files. Protobuf bytes are written
in canonical form (fields by number, map entries sorted by key), which is what prost emits, so
decoding and re-encoding in Rust gives the same bytes. Python's `SerializeToString` does not
sort map keys; the OpList has no non-empty map anywhere (asserted below), and NodeDefs are
assembled entry by entry in key order.

`--check` regenerates into memory and exits 1 if any committed file differs.

Not included: ops that live in separately loaded custom-op libraries shipped in the wheel but
not loaded by `import tensorflow` (TFLite's experimental `AudioMicrofrontend`).
"""

import ctypes
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import attr_value_pb2, node_def_pb2, op_def_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session as c_api  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS_PB = os.path.join(ROOT, "crates/ops/data/ops.pb")
VERSION = os.path.join(ROOT, "crates/ops/data/VERSION")
CASES = os.path.join(ROOT, "crates/ops/tests/data/arity_cases.json")


# --------------------------------------------------------------------------------------------
# The registry dump


def all_op_list():
    buf = c_api.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList()
        ops.ParseFromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    return ops


def assert_no_populated_maps(msg, path):
    """Fail if any map field below `msg` has an entry (their byte order would not be canonical)."""
    for field, value in msg.ListFields():
        here = f"{path}.{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if len(value):
                raise SystemExit(f"gen_op_registry: map field {here} is populated; "
                                 "its serialization would not be canonical")
        elif field.type == field.TYPE_MESSAGE:
            items = value if field.is_repeated else [value]
            for i, item in enumerate(items):
                assert_no_populated_maps(item, f"{here}[{i}]")


def registry_bytes():
    ops = all_op_list()
    names = [op.name for op in ops.op]
    if len(names) != len(set(names)):
        raise SystemExit("gen_op_registry: duplicate op names in TF_GetAllOpList")
    out = op_def_pb2.OpList()
    for src in sorted(ops.op, key=lambda o: o.name.encode()):
        op = out.op.add()
        op.CopyFrom(src)
        op.ClearField("summary")
        op.ClearField("description")
        for arg in list(op.input_arg) + list(op.output_arg):
            arg.ClearField("description")
        for attr in op.attr:
            attr.ClearField("description")
    assert_no_populated_maps(out, "OpList")
    data = out.SerializeToString(deterministic=True)
    # Round trip through the parser as a sanity check of what we are about to commit.
    check = op_def_pb2.OpList()
    check.ParseFromString(data)
    assert check == out
    version = f"tensorflow {tf.__version__}\ngit {tf.version.GIT_VERSION}\nops {len(out.op)}\n"
    return data, version.encode()


# --------------------------------------------------------------------------------------------
# Arity fixtures


def canonical_node_bytes(node):
    """NodeDef bytes with fields in number order and attr entries sorted by key (as prost)."""
    head = node_def_pb2.NodeDef(name=node.name, op=node.op, input=node.input, device=node.device)
    parts = [head.SerializeToString(deterministic=True)]
    for key in sorted(node.attr, key=lambda k: k.encode()):
        one = node_def_pb2.NodeDef()
        one.attr[key].CopyFrom(node.attr[key])
        assert_no_populated_maps(node.attr[key], f"{node.name}.attr[{key}]")
        parts.append(one.SerializeToString(deterministic=True))
    tail = node_def_pb2.NodeDef()
    if node.HasField("experimental_debug_info"):
        tail.experimental_debug_info.CopyFrom(node.experimental_debug_info)
    if node.HasField("experimental_type"):
        tail.experimental_type.CopyFrom(node.experimental_type)
    parts.append(tail.SerializeToString(deterministic=True))
    data = b"".join(parts)
    check = node_def_pb2.NodeDef()
    check.ParseFromString(data)
    assert check == node, node
    return data


def attr(value):
    """Python value -> AttrValue, for the case table below."""
    A = attr_value_pb2.AttrValue
    if isinstance(value, A):
        return value
    if isinstance(value, tf.DType):
        return A(type=value.as_datatype_enum)
    if isinstance(value, bool):
        return A(b=value)
    if isinstance(value, int):
        return A(i=value)
    if isinstance(value, float):
        return A(f=value)
    if isinstance(value, str):
        return A(s=value.encode())
    if isinstance(value, Func):
        return A(func=attr_value_pb2.NameAttrList(name=value.name))
    if isinstance(value, Shape):
        return A(shape=tf.TensorShape(value.dims).as_proto())
    if isinstance(value, list):
        lst = A.ListValue()
        if value and isinstance(value[0], tf.DType):
            lst.type.extend(v.as_datatype_enum for v in value)
        elif value and isinstance(value[0], int):
            lst.i.extend(value)
        elif value and isinstance(value[0], str):
            lst.s.extend(v.encode() for v in value)
        elif value and isinstance(value[0], Shape):
            lst.shape.extend(tf.TensorShape(v.dims).as_proto() for v in value)
        elif value:
            raise TypeError(value)
        return A(list=lst)
    raise TypeError(value)


class Func:
    def __init__(self, name):
        self.name = name


class Shape:
    def __init__(self, dims):
        self.dims = dims


f32, f16, i32, i64, s, b = tf.float32, tf.float16, tf.int32, tf.int64, tf.string, tf.bool
res, u8 = tf.resource, tf.quint8


def const(value, dtype):
    return attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(value, dtype=dtype))


# Each case: (node name, op, inputs, attrs). An input is a dtype (a Placeholder of that dtype),
# ("ref", dtype) (a VariableV2, whose output is a ref), or a list of those (one list-typed
# input argument). Attrs are passed to `Graph.create_op`; TF infers the rest from the inputs
# and fills OpDef defaults, exactly as for a Python-built graph.
#
# The "direct call" case calls a library function by name, like a TF1 `Defun` call site.
CASES_TABLE = [
    ("const", "Const", [], {"dtype": f32, "value": const([1.0, 2.0], f32)}),
    ("placeholder", "Placeholder", [], {"dtype": i64}),
    ("placeholder_with_default", "PlaceholderWithDefault", [f32], {"shape": Shape([])}),
    ("identity", "Identity", [f32], {}),
    ("identity_n", "IdentityN", [[f32, i32]], {}),
    ("concat_v2", "ConcatV2", [[f32, f32, f32], i32], {}),
    ("concat", "Concat", [i32, [f16, f16]], {}),
    ("pack", "Pack", [[f32, f32, f32, f32]], {}),
    ("unpack", "Unpack", [f32], {"num": 3}),
    ("split", "Split", [i32, f32], {"num_split": 2}),
    ("split_v", "SplitV", [f32, i64, i32], {"num_split": 3}),
    ("fused_batch_norm", "FusedBatchNorm", [f32] * 5, {}),
    ("fused_batch_norm_v3", "FusedBatchNormV3", [f16] + [f32] * 4, {}),
    ("fused_batch_norm_grad_v3", "FusedBatchNormGradV3", [f32] * 6, {}),
    ("fused_batch_norm_ex", "_FusedBatchNormEx", [f32] * 5 + [[]], {}),
    ("conv2d", "Conv2D", [f32, f32], {"strides": [1, 1, 1, 1], "padding": "SAME"}),
    ("fused_conv2d", "_FusedConv2D", [f32, f32, [f32], []],
     {"strides": [1, 1, 1, 1], "padding": "SAME", "fused_ops": ["BiasAdd"], "num_args": 1}),
    ("depthwise", "DepthwiseConv2dNative", [f32, f32],
     {"strides": [1, 1, 1, 1], "padding": "VALID"}),
    ("matmul", "MatMul", [f32, f32], {}),
    ("batch_matmul_v2", "BatchMatMulV2", [f16, f16], {}),
    ("bias_add", "BiasAdd", [f32, f32], {}),
    ("variable_v2", "VariableV2", [], {"shape": Shape([2]), "dtype": f32}),
    ("assign", "Assign", [("ref", f32), f32], {}),
    ("ref_identity", "RefIdentity", [("ref", i32)], {}),
    ("var_handle", "VarHandleOp", [], {"dtype": f32, "shape": Shape([2])}),
    ("read_variable", "ReadVariableOp", [res], {"dtype": f32}),
    ("assign_variable", "AssignVariableOp", [res, f32], {}),
    ("no_op", "NoOp", [], {}),
    ("switch", "Switch", [f32, b], {}),
    ("ref_switch", "RefSwitch", [("ref", f32), b], {}),
    ("merge", "Merge", [[f32, f32, f32]], {}),
    ("enter", "Enter", [f32], {"frame_name": "loop"}),
    ("top_k_v2", "TopKV2", [f32, i32], {}),
    ("unique", "Unique", [i64], {}),
    ("shape_n", "ShapeN", [[f32, f32, f32]], {"out_type": i64}),
    ("broadcast_gradient_args", "BroadcastGradientArgs", [i32, i32], {}),
    ("sparse_split", "SparseSplit", [i64, i64, f32, i64], {"num_split": 2}),
    ("dynamic_partition", "DynamicPartition", [f32, i32], {"num_partitions": 3}),
    ("dynamic_stitch", "DynamicStitch", [[i32, i32], [f32, f32]], {}),
    ("add_n", "AddN", [[f32, f32, f32]], {}),
    ("quantize_v2", "QuantizeV2", [f32, f32, f32], {"T": u8}),
    ("dequantize", "Dequantize", [u8, f32, f32], {}),
    ("arg_max", "ArgMax", [f32, i32], {}),
    ("shape", "Shape", [f32], {}),
    ("cast", "Cast", [f32], {"DstT": f16}),
    ("svd", "Svd", [f32], {}),
    ("restore_v2", "RestoreV2", [s, s, s], {"dtypes": [f32, i32, s]}),
    ("save_v2", "SaveV2", [s, s, s, [f32, i64]], {}),
    ("assert", "Assert", [b, [f32, i32]], {}),
    ("parse_example_v2", "ParseExampleV2",
     [s, s, s, s, s, [f32, i64]],
     {"num_sparse": 2, "sparse_types": [i64, s], "ragged_value_types": [f32],
      "ragged_split_types": [i64], "dense_shapes": [Shape([]), Shape([2])]}),
    ("parse_single_sequence_example", "ParseSingleSequenceExample",
     [s, s, [], [], [], [], [], s], {}),
    ("ctc_beam_search_decoder", "CTCBeamSearchDecoder", [f32, i32],
     {"beam_width": 4, "top_paths": 2}),
    ("queue", "FIFOQueueV2", [], {"component_types": [f32, i32]}),
    ("queue_dequeue", "QueueDequeueV2", [res], {"component_types": [f32, i32]}),
    ("tensor_array", "TensorArrayV3", [i32], {"dtype": f32}),
    ("tensor_list_from_tensor", "TensorListFromTensor", [f32, i32], {}),
    ("iterator_get_next", "IteratorGetNext", [res],
     {"output_types": [f32, i64], "output_shapes": [Shape([2]), Shape([])]}),
    ("where", "Where", [b], {}),
    ("bitcast", "Bitcast", [f32], {"type": i32}),
    ("arg", "_Arg", [], {"T": f32, "index": 0}),
    ("retval", "_Retval", [i32], {"index": 0}),
    ("recv", "_Recv", [], {"tensor_type": f32, "tensor_name": "t", "send_device": "/cpu:0",
                           "send_device_incarnation": 1, "recv_device": "/cpu:0"}),
    ("send", "_Send", [f32], {"tensor_name": "t", "send_device": "/cpu:0",
                              "send_device_incarnation": 1, "recv_device": "/cpu:0"}),
    ("n_ints_out_default", "NIntsOutDefault", [], {}),
    ("n_polymorphic_out_default", "NPolymorphicOutDefault", [], {}),
    ("partitioned_call", "StatefulPartitionedCall", [[f32]],
     {"Tout": [f32, i32], "f": Func("two_outputs")}),
    ("if", "If", [b, [f32]], {"Tout": [f32, i32], "then_branch": Func("two_outputs"),
                              "else_branch": Func("two_outputs")}),
    ("while", "While", [[f32, i32]], {"cond": Func("loop_cond"), "body": Func("loop_body")}),
    ("direct_call", "two_outputs", [f32], {}),
]


def make_functions():
    """Concrete functions used by the call/control-flow cases, keyed by a stable name."""

    @tf.function(autograph=False)
    def two_outputs(x):
        return x * 2.0, tf.cast(x, tf.int32)

    @tf.function(autograph=False)
    def loop_cond(x, i):
        return i < 3

    @tf.function(autograph=False)
    def loop_body(x, i):
        return x + 1.0, i + 1

    scalar = tf.TensorSpec([], tf.float32)
    iscalar = tf.TensorSpec([], tf.int32)
    return {
        "two_outputs": two_outputs.get_concrete_function(scalar),
        "loop_cond": loop_cond.get_concrete_function(scalar, iscalar),
        "loop_body": loop_body.get_concrete_function(scalar, iscalar),
    }


def rename_functions(graph_def, concrete):
    """TF names functions `__inference_two_outputs_123`; rename to the stable keys above."""
    mapping = {cf.function_def.signature.name: key for key, cf in concrete.items()}

    def fix_attr(a):
        if a.HasField("func") and a.func.name in mapping:
            a.func.name = mapping[a.func.name]
        for f in a.list.func:
            if f.name in mapping:
                f.name = mapping[f.name]

    def fix_node(node):
        node.op = mapping.get(node.op, node.op)
        for a in node.attr.values():
            fix_attr(a)

    for fdef in graph_def.library.function:
        fdef.signature.name = mapping.get(fdef.signature.name, fdef.signature.name)
        for node in fdef.node_def:
            fix_node(node)
    for node in graph_def.node:
        fix_node(node)
    return mapping


class CApi:
    """The few TensorFlow C API calls that pywrap_tf_session does not expose, via ctypes.

    `TF_OperationOutputListLength` / `TF_OperationInputListLength` give TF's own length of each
    (possibly list-typed) argument of an op. The wheel's libtensorflow_cc.so.2 exports the
    whole C API and is already loaded by `import tensorflow`.
    """

    def __init__(self):
        lib = ctypes.CDLL(os.path.join(os.path.dirname(tf.__file__), "libtensorflow_cc.so.2"))
        vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        for name, res, args in [
            ("TF_NewGraph", vp, []), ("TF_DeleteGraph", None, [vp]),
            ("TF_NewStatus", vp, []), ("TF_DeleteStatus", None, [vp]),
            ("TF_GetCode", i, [vp]), ("TF_Message", cp, [vp]),
            ("TF_NewBufferFromString", vp, [cp, ctypes.c_size_t]),
            ("TF_DeleteBuffer", None, [vp]),
            ("TF_NewImportGraphDefOptions", vp, []),
            ("TF_DeleteImportGraphDefOptions", None, [vp]),
            ("TF_GraphImportGraphDef", None, [vp, vp, vp, vp]),
            ("TF_GraphOperationByName", vp, [vp, cp]),
            ("TF_OperationNumInputs", i, [vp]), ("TF_OperationNumOutputs", i, [vp]),
            ("TF_OperationInputListLength", i, [vp, cp, vp]),
            ("TF_OperationOutputListLength", i, [vp, cp, vp]),
        ]:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        self.lib = lib

    def arg_lengths(self, graph_def, node_name, op_def):
        """Imports `graph_def` into a fresh C graph; returns (input lens, output lens) by arg."""
        lib = self.lib
        data = graph_def.SerializeToString()
        graph, status = lib.TF_NewGraph(), lib.TF_NewStatus()
        buf = lib.TF_NewBufferFromString(data, len(data))
        opts = lib.TF_NewImportGraphDefOptions()
        try:
            lib.TF_GraphImportGraphDef(graph, buf, opts, status)
            self._ok(status, "import")
            op = lib.TF_GraphOperationByName(graph, node_name.encode())
            assert op, node_name
            lens = []
            for args, fn in ((op_def.input_arg, lib.TF_OperationInputListLength),
                             (op_def.output_arg, lib.TF_OperationOutputListLength)):
                got = {}
                for a in args:
                    got[a.name] = fn(op, a.name.encode(), status)
                    self._ok(status, f"{node_name}:{a.name}")
                lens.append(got)
            assert sum(lens[0].values()) == lib.TF_OperationNumInputs(op)
            assert sum(lens[1].values()) == lib.TF_OperationNumOutputs(op)
            return lens
        finally:
            lib.TF_DeleteImportGraphDefOptions(opts)
            lib.TF_DeleteBuffer(buf)
            lib.TF_DeleteStatus(status)
            lib.TF_DeleteGraph(graph)

    def _ok(self, status, what):
        if self.lib.TF_GetCode(status) != 0:
            raise SystemExit(f"gen_op_registry: C API {what}: {self.lib.TF_Message(status)}")


def build_input(g, spec, counter):
    counter[0] += 1
    name = f"in{counter[0]}"
    if isinstance(spec, tuple):
        _, dtype = spec
        op = g.create_op("VariableV2", [], attrs={"shape": attr(Shape([])), "dtype": attr(dtype)},
                         name=name)
        return op.outputs[0]
    return g.create_op("Placeholder", [], attrs={"dtype": attr(spec)}, name=name).outputs[0]


def strip_defaults(node, op_def):
    stripped = node_def_pb2.NodeDef()
    stripped.CopyFrom(node)
    removed = []
    for a in op_def.attr:
        if a.HasField("default_value") and a.name in node.attr and \
                node.attr[a.name] == a.default_value:
            del stripped.attr[a.name]
            removed.append(a.name)
    return stripped, sorted(removed)


def build_case(name, op_type, inputs, attrs, concrete, capi):
    g = tf.Graph()
    with g.as_default():
        for cf in concrete.values():
            cf.add_to_graph(g)
        if op_type in concrete:
            op_type = concrete[op_type].function_def.signature.name
        resolved = {}
        for key, value in attrs.items():
            if isinstance(value, Func):
                value = Func(concrete[value.name].function_def.signature.name)
            resolved[key] = attr(value)
        # Python's graph building groups flat inputs into list arguments by the list-length
        # attrs, so (like the generated op wrappers) state those; TF infers the rest.
        op_def = g.op_def_for_type(op_type)
        assert len(op_def.input_arg) == len(inputs), name
        counter = [0]
        flat_inputs = []
        for arg, spec in zip(op_def.input_arg, inputs):
            if isinstance(spec, list):
                if arg.number_attr and arg.number_attr not in resolved:
                    resolved[arg.number_attr] = attr(len(spec))
                if arg.type_list_attr and arg.type_list_attr not in resolved:
                    resolved[arg.type_list_attr] = attr(
                        [t[1] if isinstance(t, tuple) else t for t in spec])
                flat_inputs.extend(build_input(g, s, counter) for s in spec)
            else:
                flat_inputs.append(build_input(g, spec, counter))
        op = g.create_op(op_type, flat_inputs, attrs=resolved, name=name)
        op_def = op.op_def
        in_lens, out_lens = capi.arg_lengths(g.as_graph_def(), name, op_def)
        num_inputs = len(op.inputs)
        output_types = [t.dtype.as_datatype_enum for t in op.outputs]
        graph_def = g.as_graph_def()

    mapping = rename_functions(graph_def, concrete)
    node = next(n for n in graph_def.node if n.name == name)
    in_library = node.op in mapping.values()
    stripped, removed = strip_defaults(node, op_def)

    def ranges(args, lens):
        out, start = {}, 0
        for a in args:
            out[a.name] = [start, start + lens[a.name]]
            start += lens[a.name]
        return out, start

    input_ranges, n_in = ranges(op_def.input_arg, in_lens)
    output_ranges, n_out = ranges(op_def.output_arg, out_lens)
    assert n_in == num_inputs, (name, n_in, num_inputs)
    assert n_out == len(output_types), (name, n_out, output_types)

    case = {
        "name": name,
        "op": node.op,
        "node_def": canonical_node_bytes(node).hex(),
        "stripped_node_def": canonical_node_bytes(stripped).hex(),
        "stripped_attrs": removed,
        "num_inputs": num_inputs,
        "num_outputs": len(output_types),
        "output_types": output_types,
        "input_ranges": input_ranges,
        "output_ranges": output_ranges,
    }
    if in_library or any(a.HasField("func") for a in node.attr.values()):
        library = type(graph_def.library)()
        for f in sorted(graph_def.library.function, key=lambda f: f.signature.name):
            library.function.add().signature.CopyFrom(f.signature)
        case["library_signatures"] = library.SerializeToString(deterministic=True).hex()
    return case


def cases_bytes():
    concrete = make_functions()
    names = [c[0] for c in CASES_TABLE]
    assert len(names) == len(set(names))
    capi = CApi()
    cases = [build_case(*c, concrete, capi) for c in CASES_TABLE]
    doc = {
        "generated_by": "scripts/gen_op_registry.py",
        "tensorflow": tf.__version__,
        "note": "TF-built nodes; counts and dtypes read from the TF graph. Do not edit.",
        "cases": cases,
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


# --------------------------------------------------------------------------------------------


def main(argv):
    check = "--check" in argv[1:]
    ops_pb, version = registry_bytes()
    outputs = {OPS_PB: ops_pb, VERSION: version, CASES: cases_bytes()}
    stale = []
    for path, data in outputs.items():
        rel = os.path.relpath(path, ROOT)
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old == data:
            print(f"{rel}: up to date ({len(data)} bytes)", file=sys.stderr)
            continue
        if check:
            stale.append(rel)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        print(f"{rel}: written ({len(data)} bytes)", file=sys.stderr)
    if stale:
        print("gen_op_registry: stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
