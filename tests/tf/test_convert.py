"""tf-convert against real TensorFlow.

Contract (tf-convert [INPUT] [-o OUTPUT] [--text] [--tag TAG] [--signature NAME] [--force]):
INPUT is a binary or text GraphDef, a MetaGraphDef (.meta), a SavedModel directory or its
saved_model.pb (stdin when omitted); the output is always the GraphDef (binary, or pbtxt
with --text; stdout when -o is omitted). Exit 0 on success, 2 on error with one line on
stderr.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pbcanon
from conftest import (FIXTURES, all_cases, assert_bitwise, assert_close, expected_graphdef,
                      feeds_for, load_io, parse_graphdef_bytes, parse_graphdef_text,
                      read_message, run_graphdef, run_tool, serve_meta_graph)

TOOL = "tf-convert"
needs = pytest.mark.needs_bin(TOOL)

CASES = all_cases()
BINARY_FORMATS = {"GraphDef", "MetaGraphDef", "SavedModel"}


def _files(formats):
    out = []
    for case, doc in CASES.items():
        for rel, info in doc["file_info"].items():
            if info["format"] in formats:
                out.append(f"{case}/{rel}")
    return sorted(out)


PB_FILES = _files(BINARY_FORMATS)           # every GraphDef / .meta / saved_model.pb
TEXT_FILES = _files({"GraphDef (text)"})
SAVEDMODEL_DIRS = sorted(f"{c}/{m['file']}" for c, d in CASES.items() for m in d["models"]
                         if m["format"] == "savedmodel")
META_FILES = _files({"MetaGraphDef"})


def _convert(src: Path, out: Path, *extra) -> Path:
    run_tool(TOOL, src, "-o", out, *extra)
    assert out.is_file(), f"{TOOL} exited 0 but wrote no {out}"
    return out


def _graph_equal(actual, expected, what):
    if actual != expected:
        # a readable hint: first differing node
        an = {n.name: n for n in actual.node}
        en = {n.name: n for n in expected.node}
        hint = ""
        if set(an) != set(en):
            hint = (f"; missing nodes {sorted(set(en) - set(an))[:5]}, "
                    f"extra nodes {sorted(set(an) - set(en))[:5]}")
        else:
            bad = [k for k in en if an[k] != en[k]]
            if bad:
                hint = f"; first differing node {bad[0]!r}"
            for f in ("library", "versions", "debug_info"):
                if actual.HasField(f) != expected.HasField(f) or getattr(actual, f) != getattr(expected, f):
                    hint += f"; field {f} differs"
        raise AssertionError(f"{what}: GraphDef differs from the expected message{hint}")


def _assert_canonical_bytes(out: bytes, msg, what):
    expected = pbcanon.encode(msg)
    if out != expected:
        prost_style = pbcanon.encode(msg, map_entry_defaults=False)
        note = (" -- it matches the prost style, which omits default map keys/values "
                "(e.g. arg_attr / resource_arg_unique_id key 0); C++, upb and TF's files "
                "write them" if out == prost_style else "")
        raise AssertionError(pbcanon._first_diff(f"{what}: output vs canonical", out, expected)
                             + note)


# -----------------------------------------------------------------------------
# message equality

@needs
@pytest.mark.parametrize("rel", PB_FILES)
def test_binary_output_equals_graphdef(rel, tmp_path):
    """tf-convert FILE -o out.pb: TF parses out.pb into a message == the input's GraphDef."""
    src = FIXTURES / rel
    out = _convert(src, tmp_path / "out.pb")
    _graph_equal(parse_graphdef_bytes(out.read_bytes()), expected_graphdef(src), rel)


@needs
@pytest.mark.parametrize("rel", PB_FILES)
def test_binary_output_is_canonical(rel, tmp_path):
    """The binary output is in canonical form (fields in number order, maps sorted by key,
    map entries carry key and value, as C++ SerializeToStringDeterministic); for a GraphDef
    input that means byte-identical output."""
    src = FIXTURES / rel
    out = _convert(src, tmp_path / "out.pb").read_bytes()
    _assert_canonical_bytes(out, expected_graphdef(src), rel)
    if src.suffix == ".pb" and src.name != "saved_model.pb":
        assert out == src.read_bytes(), f"{rel}: GraphDef pass-through is not byte-identical"


@needs
@pytest.mark.parametrize("rel", PB_FILES + TEXT_FILES)
def test_text_output_parses_back(rel, tmp_path):
    """tf-convert FILE --text -o out.pbtxt: text_format.Parse reads it back equal."""
    src = FIXTURES / rel
    out = _convert(src, tmp_path / "out.pbtxt", "--text")
    text = out.read_text(encoding="utf-8")
    _graph_equal(parse_graphdef_text(text), expected_graphdef(src), f"{rel} (--text)")


@needs
@pytest.mark.parametrize("rel", TEXT_FILES)
def test_text_input(rel, tmp_path):
    """A text GraphDef (what tf.io.write_graph(as_text=True) writes) converts to binary."""
    src = FIXTURES / rel
    out = _convert(src, tmp_path / "out.pb")
    _graph_equal(parse_graphdef_bytes(out.read_bytes()), parse_graphdef_text(src.read_text()),
                 rel)
    binary = src.with_suffix(".pb")
    if binary.exists():
        assert out.read_bytes() == binary.read_bytes(), f"{rel} -> binary differs from {binary.name}"


@needs
@pytest.mark.parametrize("rel", ["dtypes/graph.pb", "dtypes/attrs.pb", "control_flow/v1_graph.pb"])
def test_text_then_binary_roundtrip(rel, tmp_path):
    """binary -> --text -> binary gives back the same bytes (strings with non-UTF-8 bytes,
    special floats, every attr kind survive the text form)."""
    src = FIXTURES / rel
    txt = _convert(src, tmp_path / "a.pbtxt", "--text")
    back = _convert(txt, tmp_path / "b.pb")
    assert parse_graphdef_bytes(back.read_bytes()) == read_message(src)
    _assert_canonical_bytes(back.read_bytes(), read_message(src), f"{rel} (text round trip)")
    assert back.read_bytes() == src.read_bytes(), f"{rel}: text round trip changed the bytes"


@needs
@pytest.mark.parametrize("rel", SAVEDMODEL_DIRS)
def test_savedmodel_dir(rel, tmp_path):
    """tf-convert SAVEDMODEL_DIR -o g.pb == saved_model.meta_graphs[serve].graph_def."""
    d = FIXTURES / rel
    sm = read_message(d / "saved_model.pb")
    expected = serve_meta_graph(sm, "serve").graph_def
    out = _convert(d, tmp_path / "g.pb")
    _graph_equal(parse_graphdef_bytes(out.read_bytes()), expected, rel)
    out2 = _convert(d, tmp_path / "g2.pb", "--tag", "serve")
    assert out2.read_bytes() == out.read_bytes(), "--tag serve changed the output"


@needs
@pytest.mark.parametrize("rel", META_FILES)
def test_meta_file(rel, tmp_path):
    """tf-convert model.ckpt.meta -o g.pb == the MetaGraphDef's graph_def."""
    src = FIXTURES / rel
    out = _convert(src, tmp_path / "g.pb")
    _graph_equal(parse_graphdef_bytes(out.read_bytes()), read_message(src).graph_def, rel)


# -----------------------------------------------------------------------------
# the converted graphs still run in TF and give the recorded outputs

def _runnable_models():
    out = []
    for case, doc in CASES.items():
        for m in doc["models"]:
            if m.get("outputs"):
                out.append(pytest.param(case, m, id=f"{case}/{m['file']}"))
                for g in m.get("graph_files", []):
                    if g.endswith(".pb"):
                        mm = dict(m, file=g, format="graphdef_with_checkpoint")
                        out.append(pytest.param(case, mm, id=f"{case}/{g}"))
    return out


def _restore_spec(case: str, model: dict):
    """(restore op, filename tensor, checkpoint prefix) for graphs holding variables."""
    d = FIXTURES / case
    if model["format"] == "savedmodel":
        mg = serve_meta_graph(read_message(d / model["file"] / "saved_model.pb"))
        return (mg.saver_def.restore_op_name, mg.saver_def.filename_tensor_name,
                d / model["file"] / "variables" / "variables")
    if model["format"] in ("meta", "graphdef_with_checkpoint"):
        meta = read_message(d / next(m["file"] for m in CASES[case]["models"]
                                     if m.get("checkpoint") == model["checkpoint"]
                                     and m["format"] == "meta"))
        return (meta.saver_def.restore_op_name, meta.saver_def.filename_tensor_name,
                d / model["checkpoint"])
    return None


@needs
@pytest.mark.parametrize("case,model", _runnable_models())
def test_converted_graph_runs(case, model, tmp_path):
    """Import the converted GraphDef into a tf.Graph (restoring variables through the graph's
    own saver ops where it has any), feed io.npz inputs: outputs are bitwise equal to the same
    run of the original file, and match io.npz."""
    d = FIXTURES / case
    src = d / model["file"]
    out = _convert(src, tmp_path / "g.pb")
    converted = parse_graphdef_bytes(out.read_bytes())
    original = expected_graphdef(src)
    io = load_io(case) if (d / "io.npz").exists() else {}
    feeds = feeds_for(model, io)
    fetches = list(model["outputs"])
    restore = _restore_spec(case, model)
    got = run_graphdef(converted, feeds, fetches, restore)
    ref = run_graphdef(original, feeds, fetches, restore)
    for name, a, b in zip(fetches, got, ref):
        assert_bitwise(a, b, f"{case}/{model['file']} {name}: converted vs original")
        key = model["outputs"][name].get("key")
        if key in io:
            assert_close(a, io[key], f"{case}/{model['file']} {name} vs io.npz[{key!r}]")


# -----------------------------------------------------------------------------
# CLI contract

@needs
def test_stdin_to_stdout():
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    r = run_tool(TOOL, input=src.read_bytes())
    assert parse_graphdef_bytes(r.stdout) == read_message(src)


@needs
def test_stdin_text_to_stdout_text():
    src = FIXTURES / "tf1_cnn_train" / "graph.pbtxt"
    r = run_tool(TOOL, "--text", input=src.read_bytes())
    assert parse_graphdef_text(r.stdout.decode()) == parse_graphdef_text(src.read_text())


@needs
def test_saved_model_pb_file_equals_dir(tmp_path):
    d = FIXTURES / "keras_cnn_savedmodel" / "saved_model"
    a = _convert(d, tmp_path / "a.pb").read_bytes()
    b = _convert(d / "saved_model.pb", tmp_path / "b.pb").read_bytes()
    assert a == b


@needs
def test_force_overwrites(tmp_path):
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    out = tmp_path / "out.pb"
    out.write_bytes(b"stale")
    run_tool(TOOL, src, "-o", out, "--force")
    assert parse_graphdef_bytes(out.read_bytes()) == read_message(src)


def _assert_error(r, what):
    assert r.returncode == 2, f"{what}: exit {r.returncode}, want 2 (stderr: {r.stderr!r})"
    lines = r.stderr.decode(errors="replace").strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].strip(), \
        f"{what}: want exactly one line on stderr, got {r.stderr!r}"


@needs
def test_error_missing_input(tmp_path):
    r = run_tool(TOOL, tmp_path / "does-not-exist.pb", "-o", tmp_path / "o.pb", check=False)
    _assert_error(r, "missing input")
    assert not (tmp_path / "o.pb").exists() or (tmp_path / "o.pb").stat().st_size == 0


@needs
def test_error_garbage_input(tmp_path):
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xff\xff\xff this is not a protobuf \x00\x01")
    r = run_tool(TOOL, bad, "-o", tmp_path / "o.pb", check=False)
    _assert_error(r, "garbage input")


@needs
def test_error_unknown_tag(tmp_path):
    d = FIXTURES / "keras_cnn_savedmodel" / "saved_model"
    r = run_tool(TOOL, d, "--tag", "no-such-tag", "-o", tmp_path / "o.pb", check=False)
    _assert_error(r, "unknown tag")


def test_parametrization_is_not_empty():
    """Guards against an empty fixture tree silently collecting no conversion tests."""
    assert PB_FILES and TEXT_FILES and SAVEDMODEL_DIRS and META_FILES
    assert _runnable_models()
