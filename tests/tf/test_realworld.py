"""The real-world tier: models built the way other people build them (see realworld.py), run
through `tf-freeze | tf-strip | tf-fold | tf-quant int8` and judged by TensorFlow 2.21.

For every model and stage: the stage exits 0 and TF loads its output, every output of the chosen
signature is present and matches the original model (float stages within 1e-5 relative, int8
within a relative RMS of 0.1), at every (batch, sequence) size the model lists; or the stage
refuses with exit 2 and exactly one line on stderr. Which of the two is right is per model
(EXPECT). Cases the tools do not handle yet are marked xfail(strict=True) with the reason, so
they are reported on every run and flip to a failure the day they start passing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN_DIR, import_graph, parse_graphdef_bytes, session
import realworld

STAGES = [("tf-strip", []), ("tf-fold", []), ("tf-quant", ["int8"])]

# What each model must do: "accept" (the whole pipeline runs and matches) or
# ("refuse", word): tf-freeze exits 2 with one line that contains `word`.
EXPECT: dict[str, object] = {
    "tf2_counter": ("refuse", "--keep-variables '^count$'"),
    "tf1_ref_counter": ("refuse", "--keep-variables '^calls$'"),
    "tfmot_half_mask": ("refuse", "/mask' at run time, but the mask holds values other than 0 "
                                  "and 1"),
}

# Known gaps: model -> reason. strict: an unexpected pass fails the run until removed here.
KNOWN_GAPS: dict[str, str] = {}


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, realworld.Model]:
    return realworld.build_all(tmp_path_factory.mktemp("realworld"))


def _run(tool: str, args: list, data: bytes | None = None) -> subprocess.CompletedProcess:
    path = BIN_DIR / tool
    assert path.is_file(), f"MISSING BINARY: {path} (cargo build --release)"
    return subprocess.run([str(path), *map(str, args)], input=data, capture_output=True,
                          timeout=300)


def _one_line_refusal(r: subprocess.CompletedProcess, what: str) -> str:
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, f"{what}: exit {r.returncode}, stderr: {err}"
    assert r.stdout == b"", f"{what}: {len(r.stdout)} bytes on stdout with exit 2"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"{what}: expected one line on stderr, got:\n{err}"
    return lines[0]


def _outputs_of(gd_bytes: bytes, m: realworld.Model, batch: int, seq: int):
    gd = parse_graphdef_bytes(gd_bytes)
    g = import_graph(gd)  # raises if TF rejects the graph
    feeds = {f"{k}:0": make(batch, seq) for k, make in m.inputs.items()}
    with session(g) as s:
        vals = s.run([f"{o}:0" for o in m.outputs], feeds)
    return dict(zip(m.outputs, vals))


def _compare(got: dict, ref: dict, what: str, quantized: bool) -> None:
    for name, a in got.items():
        b = np.asarray(ref[name])
        a = np.asarray(a)
        assert a.shape == b.shape, f"{what} {name}: shape {a.shape} != {b.shape}"
        if a.dtype.kind == "f" and quantized:
            err = np.sqrt(np.mean((a - b) ** 2)) / max(np.sqrt(np.mean(b ** 2)), 1e-30)
            assert err <= 0.1, f"{what} {name}: relative RMS {err}"
        elif a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{what} {name}")
        else:
            assert a.tolist() == b.tolist(), f"{what} {name}"


def _names():
    names = []
    for b in realworld.BUILDERS:
        names += _BUILDER_NAMES[b.__name__]
    out = []
    for n in names:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[n])] if n in KNOWN_GAPS else []
        out.append(pytest.param(n, id=n, marks=marks))
    return out


# Names each builder makes (kept in step with realworld.py by test_names_match_builders).
_BUILDER_NAMES = {
    "tf1_serving_example": ["tf1_serving/serving_default", "tf1_serving/predict_x",
                            "tf1_serving/regress_x_to_y", "tf1_serving/classify_x_to_probs"],
    "tf1_ref_variables": ["tf1_ref_variables", "tf1_ref_counter"],
    "tf1_ref_raw": ["tf1_ref_raw"],
    "tf1_ref_cond": ["tf1_ref_cond"],
    "tf1_renamed_keys_v1": ["tf1_renamed_keys_v1"],
    "tfmot_pruned": ["tfmot_pruned", "tfmot_stripped", "tfmot_half_mask"],
    "tf2_counter": ["tf2_counter"],
    "tf2_no_variables": ["tf2_no_variables"],
    "tf1_two_outputs": ["tf1_two_outputs"],
    "tf1_v1_checkpoint": ["tf1_v1_checkpoint"],
    "keras_dynamic": ["keras_transformer", "keras_transformer_seq8", "keras_dense4d",
                      "keras_embedding"],
}


def test_names_match_builders(models):
    expected = {n for names in _BUILDER_NAMES.values() for n in names}
    assert set(models) == expected


@pytest.mark.parametrize("name", _names())
def test_pipeline(models, name):
    m = models[name]
    expect = EXPECT.get(name, "accept")
    r = _run("tf-freeze", [m.path, *m.freeze_args])
    if expect != "accept":
        line = _one_line_refusal(r, f"{name}: tf-freeze")
        assert expect[1] in line, f"{name}: refusal does not name {expect[1]!r}: {line}"
        return
    assert r.returncode == 0, f"{name}: tf-freeze exit {r.returncode}: {r.stderr.decode()}"
    stages = [("tf-freeze", r.stdout)]
    data = r.stdout
    for tool, args in STAGES:
        r = _run(tool, args, data)
        assert r.returncode == 0, f"{name}: {tool} exit {r.returncode}: {r.stderr.decode()}"
        data = r.stdout
        stages.append((tool, data))
    for batch, seq in m.shapes:
        feeds = {k: make(batch, seq) for k, make in m.inputs.items()}
        ref = m.reference(feeds)
        for tool, out in stages:
            got = _outputs_of(out, m, batch, seq)
            _compare(got, ref, f"{name} after {tool} at batch {batch} seq {seq}",
                     quantized=tool == "tf-quant")


def _ref_types(gd) -> list[str]:
    """Nodes whose op or attrs carry a reference (what TF refuses without a ref producer)."""
    bad = []
    for n in gd.node:
        if n.op.startswith("Ref"):
            bad.append(f"{n.name} ({n.op})")
        for k, a in n.attr.items():
            kind = a.WhichOneof("value")
            types = [a.type] if kind == "type" else list(a.list.type) if kind == "list" else []
            if any(t > 100 for t in types):
                bad.append(f"{n.name}.{k}")
    return bad


@pytest.mark.parametrize("name", ["tf1_ref_variables", "tf1_ref_raw", "tf1_ref_cond",
                                  "tf1_renamed_keys_v1"])
def test_no_reference_types(models, name):
    """Freezing a ref variable leaves no _REF type and no Ref* op anywhere in the graph."""
    m = models[name]
    r = _run("tf-freeze", [m.path, *m.freeze_args])
    assert r.returncode == 0, r.stderr.decode()
    gd = parse_graphdef_bytes(r.stdout)
    assert len(gd.node) > 0
    assert _ref_types(gd) == []


def test_tf1_ref_cond_uses_both_branches(models):
    """The sizes tf1_ref_cond lists take both branches of its tf.cond."""
    m = models["tf1_ref_cond"]
    sums = {np.sign(m.inputs["x"](b, s).sum()) for b, s in m.shapes}
    assert sums == {-1.0, 1.0}


def _weights(gd_bytes: bytes) -> dict[tuple, np.ndarray]:
    """The frozen graph's 2-D float constants, by shape."""
    import tensorflow as tf
    out = {}
    for n in parse_graphdef_bytes(gd_bytes).node:
        if n.op == "Const" and len(n.attr["value"].tensor.tensor_shape.dim) == 2:
            v = tf.make_ndarray(n.attr["value"].tensor)
            assert v.shape not in out, f"two kernels of shape {v.shape}"
            out[v.shape] = v
    return out


def test_tfmot_masking_equals_strip_pruning(models, tmp_path):
    """A tfmot model saved without strip_pruning freezes to weight * mask: the same kernels,
    bit for bit, as strip_pruning then freezing, with the sparsity the schedule asked for; the
    report names each mask."""
    m = models["tfmot_pruned"]
    report = tmp_path / "report.json"
    r = _run("tf-freeze", [m.path, "--report", report])
    assert r.returncode == 0, r.stderr.decode()
    s = _run("tf-freeze", [m.twin])
    assert s.returncode == 0, s.stderr.decode()
    got, want = _weights(r.stdout), _weights(s.stdout)
    assert set(got) == set(want) == {(6, 8), (8, 4)}
    for shape, w in want.items():
        assert np.array_equal(got[shape], w), f"kernel {shape} differs from strip_pruning's"
    sparsity = {k: float(np.mean(v == 0)) for k, v in got.items()}
    assert sparsity == {(6, 8): realworld.TFMOT_SPARSITY["d1"],
                        (8, 4): realworld.TFMOT_SPARSITY["d2"]}
    import json
    frozen = json.loads(report.read_text())["changes"]["freeze"]["variables"]
    masks = {v["name"]: v.get("masked_by") for v in frozen}
    assert masks == {"prune_low_magnitude_d1/kernel": "prune_low_magnitude_d1/mask",
                     "prune_low_magnitude_d1/bias": None,
                     "prune_low_magnitude_d2/kernel": "prune_low_magnitude_d2/mask",
                     "prune_low_magnitude_d2/bias": None}
    # Same answers from both frozen graphs, and from the pruned model in TF.
    feeds = {k: make(5, 0) for k, make in m.inputs.items()}
    a = _outputs_of(r.stdout, m, 5, 0)
    b = _outputs_of(s.stdout, models["tfmot_stripped"], 5, 0)
    ref = m.reference(feeds)
    assert np.array_equal(a["prune_low_magnitude_d2"], b["d2"])
    np.testing.assert_allclose(a["prune_low_magnitude_d2"], ref["prune_low_magnitude_d2"],
                               rtol=1e-5, atol=1e-6)
