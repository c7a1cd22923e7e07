"""Python TF test tier: run the project's binaries on tests/fixtures and let real
TensorFlow judge the results.

    .venv/bin/python -m pytest tests/tf            # binaries from target/release
    TF_TOOLS_BIN=/some/dir .venv/bin/python -m pytest tests/tf

Tests that need a binary carry ``@pytest.mark.needs_bin("tf-convert")``; when the
binary is missing they FAIL (not skip) with a message naming the path that was
tried, so a missing build can never look like a green run.  ``-m "not needs_bin"``
runs only the fixture checks.

TensorFlow is imported once per session (here).  The environment mirrors the one
scripts/gen_fixtures.py used (oneDNN off, tf_keras as tf.keras).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "tests" / "fixtures"
BIN_DIR = Path(os.environ.get("TF_TOOLS_BIN", str(REPO / "target" / "release")))

sys.path.insert(0, str(HERE))
import pbcanon  # noqa: E402

import tensorflow as tf  # noqa: E402  (once per session)

tf.get_logger().setLevel("ERROR")

from google.protobuf import text_format  # noqa: E402
from tensorflow.core.framework import graph_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2  # noqa: E402


# -----------------------------------------------------------------------------
# pytest plumbing

def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_bin(name): the test runs the named project binary from $TF_TOOLS_BIN "
        "(default target/release); it fails when the binary is missing")


def pytest_report_header(config):
    tools = sorted(p.name for p in BIN_DIR.glob("tf-*") if p.is_file()) if BIN_DIR.is_dir() else []
    return [f"tf tier: TF {tf.__version__}, fixtures {FIXTURES}",
            f"tf tier: TF_TOOLS_BIN={BIN_DIR} ({', '.join(tools) if tools else 'no tf-* binaries'})"]


_MISSING: dict[str, int] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    # checked in the call phase so that the test is reported FAILED (not ERROR or skipped)
    for mark in item.iter_markers(name="needs_bin"):
        for name in mark.args:
            path = BIN_DIR / name
            if not (path.is_file() and os.access(path, os.X_OK)):
                _MISSING[name] = _MISSING.get(name, 0) + 1
                pytest.fail(
                    f"MISSING BINARY: {path} does not exist or is not executable. Build it "
                    f"(cargo build --release) or point TF_TOOLS_BIN at the directory holding "
                    f"{name}.", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    for name, n in sorted(_MISSING.items()):
        terminalreporter.write_sep(
            "!", f"{n} test(s) FAILED because {BIN_DIR / name} is missing", red=True)


# -----------------------------------------------------------------------------
# fixtures and helpers

def load_case(name: str) -> dict:
    return json.loads((FIXTURES / name / "case.json").read_text())


def case_names() -> list[str]:
    if not FIXTURES.is_dir():
        return []
    return sorted(p.parent.name for p in FIXTURES.glob("*/case.json")
                  if not p.parent.name.startswith("."))


def all_cases() -> dict[str, dict]:
    return {n: load_case(n) for n in case_names()}


def load_io(case: str, name: str = "io.npz") -> dict[str, np.ndarray]:
    with np.load(FIXTURES / case / name) as z:
        return {k: z[k] for k in z.files}


def read_message(path: Path):
    cls = pbcanon.message_class_for(str(path))
    m = cls()
    m.ParseFromString(Path(path).read_bytes())
    return m


def parse_graphdef_bytes(data: bytes):
    gd = graph_pb2.GraphDef()
    gd.ParseFromString(data)
    return gd


def parse_graphdef_text(text: str):
    gd = graph_pb2.GraphDef()
    text_format.Parse(text, gd)
    return gd


def serve_meta_graph(sm, tag: str = "serve"):
    for mg in sm.meta_graphs:
        if tag in mg.meta_info_def.tags:
            return mg
    raise KeyError(f"no meta graph with tag {tag!r}")


def expected_graphdef(path: Path):
    """The GraphDef that tf-convert must produce for a fixture file or SavedModel dir."""
    path = Path(path)
    if path.is_dir():
        path = path / "saved_model.pb"
    if path.suffix == ".pbtxt":
        return parse_graphdef_text(path.read_text())
    m = read_message(path)
    if isinstance(m, saved_model_pb2.SavedModel):
        return serve_meta_graph(m).graph_def
    if isinstance(m, meta_graph_pb2.MetaGraphDef):
        return m.graph_def
    return m


def run_tool(name: str, *args, input: bytes | None = None, cwd=None, check=True,
             timeout=120) -> subprocess.CompletedProcess:
    cmd = [str(BIN_DIR / name), *map(str, args)]
    r = subprocess.run(cmd, input=input, capture_output=True, cwd=cwd, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}; stderr:\n"
                             f"{r.stderr.decode(errors='replace')}")
    return r


def import_graph(gd):
    g = tf.Graph()
    with g.as_default():
        tf.graph_util.import_graph_def(gd, name="")
    return g


def session(graph):
    cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1,
                                   inter_op_parallelism_threads=1)
    return tf.compat.v1.Session(graph=graph, config=cfg)


def feeds_for(model: dict, io: dict) -> dict:
    return {name: io[spec["key"]] for name, spec in model["inputs"].items()}


def run_graphdef(gd, feeds: dict, fetches: list[str], restore: tuple | None = None):
    """Import gd, optionally run a restore op (op name, filename tensor, prefix), fetch."""
    g = import_graph(gd)
    with session(g) as s:
        if restore:
            op, fname, prefix = restore
            s.run(op, {fname: str(prefix)})
        return s.run(fetches, feed_dict=feeds)


def assert_bitwise(actual, expected, what=""):
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.dtype == e.dtype and a.shape == e.shape, \
        f"{what}: {a.dtype}{a.shape} != {e.dtype}{e.shape}"
    if a.dtype == object:
        assert a.tolist() == e.tolist(), what
    else:
        assert a.tobytes() == e.tobytes(), \
            f"{what}: not bitwise equal (max abs diff {np.max(np.abs(a.astype(np.float64) - e.astype(np.float64)))})"


def assert_close(actual, expected, what="", rtol=1e-5, atol=1e-6):
    """io.npz was recorded by TF on the generating machine; other CPUs may differ by ulps."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if a.dtype.kind in "fc":
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(a, e, err_msg=what)


@pytest.fixture(scope="session")
def cases() -> dict[str, dict]:
    c = all_cases()
    assert c, f"no fixtures under {FIXTURES}; run `make fixtures`"
    return c
