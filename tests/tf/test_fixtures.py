"""Sanity of the committed fixtures (no project binary needed).

- every case.json lists exactly the files of its directory, and they exist;
- every committed protobuf file is canonical (pbcanon.encode(parse(file)) == file, the
  wire-level reorder of the file == file, embedded control-flow contexts too), and the
  pure-python protobuf runtime re-serializes each file to the same bytes;
- TF loads each SavedModel / frozen graph / .meta + checkpoint and reproduces io.npz;
- TF's C++ runtime decodes the dtypes Consts to expected.npz / expected.json;
- sizes stay within budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pbcanon
from conftest import (FIXTURES, HERE, all_cases, assert_bitwise, assert_close, feeds_for,
                      load_io, read_message, run_graphdef, serve_meta_graph, session, tf)

CASES = all_cases()
REQUIRED_CASES = ["tf1_cnn_train", "tf1_partitioned", "tf1_v1_checkpoint", "keras_cnn_savedmodel",
                  "keras_seq_savedmodel", "keras_mha_savedmodel", "control_flow", "dtypes"]
PB_FORMATS = {"GraphDef", "MetaGraphDef", "SavedModel", "FingerprintDef"}
PB_FILES = sorted(f"{c}/{rel}" for c, d in CASES.items()
                  for rel, info in d["file_info"].items() if info["format"] in PB_FORMATS)


def test_required_cases_present():
    missing = [c for c in REQUIRED_CASES if c not in CASES]
    assert not missing, f"missing fixture cases {missing}; run `make fixtures`"


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_json_lists_every_file(case):
    d = FIXTURES / case
    doc = CASES[case]
    on_disk = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    assert sorted(doc["files"]) == on_disk, "case.json 'files' does not match the directory"
    for f in doc["files"]:
        assert f in doc["file_info"] and doc["file_info"][f]["desc"], f"{f} is not described"
    assert doc["kind"] in ("graphdef", "savedmodel", "meta", "checkpoint")
    for key in ("inputs", "outputs", "models", "notes"):
        assert key in doc, f"case.json lacks {key!r}"
    if doc.get("io"):
        io = load_io(case, doc["io"])
        for m in doc["models"]:
            for name, spec in list(m["inputs"].items()) + list(m.get("outputs", {}).items()):
                if m["name"] == "dtypes":
                    continue
                assert spec["key"] in io, f"{m['name']}: io key {spec['key']!r} of {name} missing"


@pytest.mark.parametrize("rel", PB_FILES)
def test_protobuf_file_is_canonical(rel):
    ok, why = pbcanon.is_canonical((FIXTURES / rel).read_bytes(),
                                   pbcanon.message_class_for(rel))
    assert ok, f"{rel}: {why}"


def test_pure_python_runtime_agrees():
    """PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python sorts map keys with deterministic=True;
    its serialization of every committed protobuf file must be the file itself."""
    script = r'''
import os, sys, types, json
sp = [p for p in sys.path if p.endswith("site-packages")][0]
pkg = types.ModuleType("tensorflow"); pkg.__path__ = [os.path.join(sp, "tensorflow")]
sys.modules["tensorflow"] = pkg          # load the *_pb2 modules without TF's __init__
sys.path.insert(0, sys.argv[1])
from google.protobuf.internal import api_implementation
assert api_implementation.Type() == "python", api_implementation.Type()
import pbcanon
bad = []
for path in json.loads(sys.argv[2]):
    data = open(path, "rb").read()
    m = pbcanon.message_class_for(path)(); m.ParseFromString(data)
    pbcanon.normalize_embedded(m, lambda x: x.SerializeToString(deterministic=True))
    if m.SerializeToString(deterministic=True) != data:
        bad.append(path)
print(json.dumps(bad))
'''
    paths = [str(FIXTURES / r) for r in PB_FILES]
    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    r = subprocess.run([sys.executable, "-c", script, str(HERE), json.dumps(paths)],
                       capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    bad = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert not bad, f"pure-python runtime re-serializes these differently: {bad}"


# -----------------------------------------------------------------------------
# TF reproduces io.npz

def _models(fmt):
    return [pytest.param(c, m, id=f"{c}/{m['file']}") for c, d in CASES.items()
            for m in d["models"] if m["format"] == fmt]


@pytest.mark.parametrize("case,model", _models("savedmodel"))
def test_savedmodel_reproduces_io(case, model):
    d = FIXTURES / case
    io = load_io(case)
    loaded = tf.saved_model.load(str(d / model["file"]))
    fn = loaded.signatures[model["signature"]]
    args = {spec["signature_key"]: tf.constant(io[spec["key"]])
            for spec in model["inputs"].values()}
    res = fn(**args)
    for name, spec in model["outputs"].items():
        assert_close(res[spec["signature_key"]].numpy(), io[spec["key"]],
                     f"{case} {spec['signature_key']}")
    # signature metadata in case.json matches the SavedModel
    mg = serve_meta_graph(read_message(d / model["file"] / "saved_model.pb"))
    sig = mg.signature_def[model["signature"]]
    assert sorted(t.name for t in sig.inputs.values()) == sorted(model["inputs"])
    assert sorted(t.name for t in sig.outputs.values()) == sorted(model["outputs"])


@pytest.mark.parametrize("case,model", [p for p in _models("graphdef")
                                        if p.values[1]["name"] != "dtypes"])
def test_graphdef_reproduces_io(case, model):
    io = load_io(case)
    gd = read_message(FIXTURES / case / model["file"])
    fetches = list(model["outputs"])
    got = run_graphdef(gd, feeds_for(model, io), fetches)
    for name, v in zip(fetches, got):
        assert_close(v, io[model["outputs"][name]["key"]], f"{case}/{model['file']} {name}")


@pytest.mark.parametrize("case,model", _models("meta"))
def test_meta_checkpoint_reproduces_io(case, model):
    d = FIXTURES / case
    io = load_io(case)
    g = tf.Graph()
    with g.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(d / model["file"]))
    with session(g) as s:
        saver.restore(s, str(d / model["checkpoint"]))
        fetches = list(model["outputs"])
        got = s.run(fetches, feed_dict=feeds_for(model, io))
    for name, v in zip(fetches, got):
        assert_close(v, io[model["outputs"][name]["key"]], f"{case}/{model['file']} {name}")
    state = (d / model.get("checkpoint_state", "checkpoint")).read_text()
    assert f'model_checkpoint_path: "{model["checkpoint"]}"' in state


def test_tf1_partitioned_checkpoint_has_slices():
    r = tf.train.load_checkpoint(str(FIXTURES / "tf1_partitioned" / "model.ckpt"))
    shapes = r.get_variable_to_shape_map()
    assert shapes["emb"] == [6, 2] and shapes["proj/w"] == [2, 3]
    io = load_io("tf1_partitioned")
    assert_bitwise(r.get_tensor("emb"), io["emb_full__0"], "emb (merged slices)")


def test_tf1_cnn_train_has_ref_and_resource_variables():
    meta = read_message(FIXTURES / "tf1_cnn_train" / "model.ckpt.meta")
    ops = {n.op for n in meta.graph_def.node}
    assert {"VariableV2", "VarHandleOp", "Switch", "Merge", "FusedBatchNormV3",
            "ApplyAdam", "ResourceApplyAdam", "SaveV2", "RestoreV2"} <= ops, ops


def test_control_flow_ops():
    d = FIXTURES / "control_flow"
    v1 = {n.op for n in read_message(d / "v1_graph.pb").node}
    assert {"Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond"} <= v1
    sm = read_message(d / "saved_model" / "saved_model.pb")
    lib = serve_meta_graph(sm).graph_def.library
    body_ops = {n.op for f in lib.function for n in f.node_def}
    assert body_ops & {"If", "StatelessIf"} and body_ops & {"While", "StatelessWhile"}


# -----------------------------------------------------------------------------
# dtypes: TF's decoding == expected.*

def test_dtypes_decoded_by_tf_match_expected():
    d = FIXTURES / "dtypes"
    exp = json.loads((d / "expected.json").read_text())["consts"]
    gd = read_message(d / "graph.pb")
    names = [n.name for n in gd.node]
    assert sorted(names) == sorted(exp)
    got = run_graphdef(gd, {}, [f"{n}:0" for n in names])
    with np.load(d / "expected.npz") as z:
        npz = {k: z[k] for k in z.files}
    for name, val in zip(names, got):
        e = exp[name]
        arr = np.asarray(val)
        if arr.dtype.names:
            arr = arr[arr.dtype.names[0]]
        assert list(arr.shape) == e["shape"], name
        flat = arr.reshape(-1)
        if "hex" in e:
            assert [bytes(b).hex() for b in flat.tolist()] == e["hex"], name
            continue
        if "bits" in e:
            if np.issubdtype(arr.dtype, np.complexfloating):
                comp = np.stack([flat.real, flat.imag], 1).reshape(-1)
                bits = comp.view(np.uint32 if arr.dtype == np.complex64 else np.uint64)
            else:
                bits = flat.view({1: np.uint8, 2: np.uint16, 4: np.uint32,
                                  8: np.uint64}[arr.dtype.itemsize])
            assert [int(b) for b in bits] == e["bits"], name
        else:
            kind = np.dtype(arr.dtype).name
            if kind in ("int4", "int2"):
                values = [int(v) for v in flat.astype(np.int8)]
            elif kind in ("uint4", "uint2"):
                values = [int(v) for v in flat.astype(np.uint8)]
            elif arr.dtype == np.bool_:
                values = [bool(v) for v in flat]
            else:
                values = [int(v) for v in flat.tolist()]
            assert values == e["values"], name
        spec = e["npz"]
        stored = npz[spec["key"]]
        if spec["meaning"] == "raw bit patterns":
            assert_bitwise(stored.reshape(-1), bits, name)
        elif stored.dtype == arr.dtype:
            assert_bitwise(stored, arr, name)
        else:
            assert stored.reshape(-1).tolist() == e["values"], name


def test_attrs_graph_features():
    gd = read_message(FIXTURES / "dtypes" / "attrs.pb")
    kinds = set()
    for n in gd.node:
        for v in n.attr.values():
            kinds.add(v.WhichOneof("value"))
            if v.WhichOneof("value") == "list":
                kinds.update(f"list.{f.name}" for f, _ in v.list.ListFields())
    assert {"list", "s", "i", "f", "b", "type", "shape", "tensor", "func"} <= kinds, kinds
    assert {"list.func", "list.type", "list.shape", "list.tensor", "list.s", "list.i",
            "list.f", "list.b"} <= kinds, kinds
    fns = {f.signature.name: f for f in gd.library.function}
    assert any(v.placeholder for f in fns.values() for n in f.node_def for v in n.attr.values())
    assert fns["add_one"].arg_attr and fns["add_one"].control_ret
    assert fns["read_two"].resource_arg_unique_id
    assert gd.library.gradient and gd.HasField("debug_info")
    assert gd.debug_info.traces and gd.debug_info.frames_by_id and gd.debug_info.traces_by_id
    assert any(n.HasField("experimental_debug_info") for n in gd.node)
    assert any(n.HasField("experimental_type") for n in gd.node)


# -----------------------------------------------------------------------------
# budgets

def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_size_budget(case):
    assert _size(FIXTURES / case) < 1024 * 1024, f"{case} exceeds 1 MiB"


def test_total_size_budget():
    assert _size(FIXTURES) < 8 * 1024 * 1024
    assert _size(FIXTURES / "keras_cnn_savedmodel") < 500 * 1000
