"""tf-quant against real TensorFlow.

What is shown here, with TF 2.21 as the judge:

- TF loads and runs every quantized graph on CPU, in every mode (int8 per channel and per
  tensor, the Dequantize encoding, uint8, float16, bfloat16, round:256): the fixture frozen
  graphs, tf-freeze's outputs of the fixture SavedModels and checkpoints, and the bigger models
  of build/models (MobileNetV2, ResNet50, a small transformer; made on demand by
  scripts/gen_models.py);
- the default int8 encoding (Const int8 -> Cast -> Mul) also compiles under
  ``tf.function(jit_compile=True)`` on CPU, and computes what the CPU graph computes; the
  Dequantize encoding does not compile (which is why it is not the default);
- sizes: on weight-dominated models int8 <= 0.27x and float16 <= 0.52x the float frozen graph;
- accuracy: the int8 per-channel model's output error is no worse than TFLite's dynamic-range
  quantization of the same SavedModel on the same inputs; the error of every mode is written to
  build/quant/accuracy.md (the table in docs/tools/tf-quant.md);
- uint8 is GTT's quantize_weights byte for byte, except where GTT's zero point disagrees with
  TF's own Dequantize (then GTT shifts every weight by one step; shown on ResNet50);
- bad input exits 2 with one line; a model without float weights is passed through with a
  warning and exit 0.

Reproduce the table: ``.venv/bin/python -m pytest tests/tf/test_quant.py -k models -s``.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import tensor_util

from conftest import (FIXTURES, REPO, all_cases, feeds_for, load_io, parse_graphdef_bytes,
                      run_graphdef, run_tool)

TOOL = "tf-quant"
needs = pytest.mark.needs_bin(TOOL)
CASES = all_cases()
MODELS_DIR = REPO / "build" / "models"
OUT_DIR = REPO / "build" / "quant"
BIG_MODELS = ["mobilenetv2", "resnet50", "transformer"]

# Every mode, as the table names it, and its arguments.
MODES = {
    "int8": ["int8"],
    "int8 --per-tensor": ["int8", "--per-tensor"],
    "int8 --encoding dequantize": ["int8", "--encoding", "dequantize"],
    "uint8": ["uint8"],
    "float16": ["float16"],
    "bfloat16": ["bfloat16"],
    "round:256": ["round:256"],
}
# The fixtures are tiny (the largest weight has 216 elements): quantize everything.
SMALL = ["--min-elements", "16"]
# Sanity bounds on the relative RMS error of the fixtures' outputs (the real proof that
# quantization is right is the exact checks below and the comparison with TFLite).
FIXTURE_RMS_BOUND = {"int8": 0.1, "int8 --per-tensor": 0.2, "int8 --encoding dequantize": 0.1,
                     "uint8": 0.2, "float16": 0.01, "bfloat16": 0.05, "round:256": 0.2}


# -----------------------------------------------------------------------------
# helpers

def quantize(src, args, tmp_path, input: bytes | None = None):
    """tf-quant ARGS SRC (or stdin) -> (GraphDef, report['changes']['quant'], output bytes,
    stderr)."""
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    cmd = [*args, "--report", report] + ([src] if src is not None else [])
    r = run_tool(TOOL, *cmd, input=input, timeout=600)
    rep = json.loads(report.read_text())
    assert rep["exit_code"] == 0
    return parse_graphdef_bytes(r.stdout), rep["changes"]["quant"], r.stdout, r.stderr.decode()


def rel_rms(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)) / max(np.sqrt(np.mean(b ** 2)), 1e-30))


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def check_structure(gd, rep, mode):
    """Every quantized weight's name now names the node that dequantizes it."""
    by = {n.name: n for n in gd.node}
    final = {"int8": "Mul", "int8 --per-tensor": "Mul", "uint8": "Dequantize",
             "float16": "Cast", "bfloat16": "Cast", "round:256": "Const"}
    for t in rep["tensors"]:
        node = by[t["name"]]
        if mode == "int8 --encoding dequantize":
            assert node.op in ("Dequantize", "Reshape"), (t["name"], node.op)
        else:
            assert node.op == final[mode], (t["name"], node.op)
        for helper in t["nodes"]:
            assert helper in by, helper


def _frozen_models():
    return [pytest.param(case, m, id=f"{case}/{m['file']}")
            for case, doc in CASES.items() for m in doc["models"]
            if m["format"] == "graphdef" and m.get("outputs")]


FROZEN = _frozen_models()


# -----------------------------------------------------------------------------
# every fixture frozen graph, every mode: TF loads and runs it

@needs
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case,model", FROZEN)
def test_fixture_runs_in_every_mode(case, model, mode, tmp_path):
    src = FIXTURES / case / model["file"]
    outputs = list(model["outputs"])
    gd, rep, raw, _ = quantize(src, MODES[mode] + SMALL, tmp_path)
    io = load_io(case)
    feeds = feeds_for(model, io)
    got = run_graphdef(gd, feeds, outputs)
    original = parse_graphdef_bytes(Path(src).read_bytes())
    ref = run_graphdef(original, feeds, outputs)
    if not rep["tensors"]:
        assert raw == Path(src).read_bytes(), "no weights: passed through byte for byte"
        return
    check_structure(gd, rep, mode)
    assert gd.versions == original.versions and gd.library == original.library
    for name, a, b in zip(outputs, got, ref):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if a.dtype.kind == "f":
            assert np.all(np.isfinite(a)), name
            err = rel_rms(a, b)
            assert err <= FIXTURE_RMS_BOUND[mode], f"{case} {name} {mode}: rel RMS {err}"
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def _freezable():
    return [pytest.param(case, m, id=f"{case}/{m['name']}")
            for case, doc in CASES.items() for m in doc["models"]
            if m["format"] == "savedmodel" or m.get("checkpoint")]


@functools.lru_cache(maxsize=None)
def tf_freeze_output(case: str, name: str):
    """tf-freeze's output of a fixture model, with the feeds and fetches to run it."""
    model = next(m for m in CASES[case]["models"] if m["name"] == name)
    d = FIXTURES / case
    if model["format"] == "savedmodel":
        args = [d / model["file"]]
        feeds = [f"{s['key']}:0" for s in model["inputs"].values()]
        fetches = [f"{s['key']}:0" for s in model["outputs"].values()]
    else:
        args = [d / model["checkpoint"], "--outputs",
                ",".join(n.split(":")[0] for n in model["outputs"])]
        feeds = list(model["inputs"])
        fetches = list(model["outputs"])
    io = load_io(case)
    values = {name: (False if name == "is_training:0" else io[spec["key"]])
              for name, spec in zip(feeds, model["inputs"].values())}
    return run_tool("tf-freeze", *args).stdout, values, fetches


@pytest.mark.needs_bin("tf-freeze", TOOL)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case,model", _freezable())
def test_tf_freeze_output_runs_in_every_mode(case, model, mode, tmp_path):
    """tf-freeze | tf-quant MODE: the README's pipeline, judged by TF."""
    frozen_bytes, feeds, fetches = tf_freeze_output(case, model["name"])
    gd, rep, raw, _ = quantize(None, MODES[mode] + SMALL, tmp_path, input=frozen_bytes)
    got = run_graphdef(gd, feeds, fetches)
    ref = run_graphdef(parse_graphdef_bytes(frozen_bytes), feeds, fetches)
    if not rep["tensors"]:
        assert raw == frozen_bytes
        return
    check_structure(gd, rep, mode)
    for name, a, b in zip(fetches, got, ref):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, name
        if a.dtype.kind == "f":
            assert rel_rms(a, b) <= FIXTURE_RMS_BOUND[mode], f"{name}: {rel_rms(a, b)}"


@pytest.mark.needs_bin("tf-freeze", "tf-strip", TOOL)
def test_pipeline_freeze_strip_quant(tmp_path):
    """tf-freeze saved_model/ | tf-strip | tf-quant int8, then TF runs it on io.npz."""
    frozen = run_tool("tf-freeze", FIXTURES / "keras_cnn_savedmodel" / "saved_model").stdout
    stripped = run_tool("tf-strip", input=frozen).stdout
    gd, rep, _, _ = quantize(None, ["int8", *SMALL], tmp_path, input=stripped)
    assert len(rep["tensors"]) == 3   # conv kernel, depthwise kernel, dense kernel
    axes = {tuple(t["shape"]): t["axis"] for t in rep["tensors"]}
    assert axes == {(3, 3, 3, 8): [3], (3, 3, 8, 1): [2, 3], (8, 10): [1]}
    io = load_io("keras_cnn_savedmodel")
    got = run_graphdef(gd, {"image:0": io["image"]}, ["probs:0"])[0]
    assert rel_rms(got, io["probs"]) < 0.05


# -----------------------------------------------------------------------------
# XLA: the default encoding compiles, Dequantize does not

def xla_run(gd, feeds: dict, fetch: str):
    """Import gd inside a jit_compile'd tf.function (placeholders replaced by the function's
    arguments), run it, return (output, HLO text)."""
    gd2 = graph_pb2.GraphDef()
    gd2.CopyFrom(gd)
    names = [k.split(":")[0] for k in feeds]
    keep = [n for n in gd2.node if n.name not in names]
    del gd2.node[:]
    gd2.node.extend(keep)
    keys = list(feeds)

    @tf.function(jit_compile=True)
    def f(*args):
        return tf.graph_util.import_graph_def(gd2, input_map=dict(zip(keys, args)),
                                              return_elements=[fetch], name="q")[0]

    args = [tf.constant(v) for v in feeds.values()]
    out = f(*args).numpy()
    hlo = f.experimental_get_compiler_ir(*args)(stage="hlo")
    return out, hlo


XLA_FIXTURES = ["keras_cnn_savedmodel", "keras_mha_savedmodel"]


@needs
@pytest.mark.parametrize("case", XLA_FIXTURES)
def test_int8_compiles_under_xla_fixtures(case, tmp_path):
    model = next(m for m in CASES[case]["models"] if m["name"] == "frozen")
    gd, rep, _, _ = quantize(FIXTURES / case / "frozen.pb", ["int8", *SMALL], tmp_path)
    assert rep["tensors"]
    feeds = feeds_for(model, load_io(case))
    fetch = list(model["outputs"])[0]
    out, hlo = xla_run(gd, feeds, fetch)
    cpu = run_graphdef(gd, feeds, [fetch])[0]
    np.testing.assert_allclose(out, cpu, rtol=1e-4, atol=1e-6)
    assert "s8[" in hlo, "the int8 constants reach XLA as s8"


@needs
@pytest.mark.parametrize("args,mode", [(["int8", "--encoding", "dequantize"], "SCALED"),
                                       (["uint8"], "MIN_FIRST")])
def test_dequantize_encodings_do_not_compile_under_xla(args, mode, tmp_path):
    """XLA's Dequantize takes MIN_COMBINED only, which is why the default
    encoding is Cast + Mul."""
    case = "keras_cnn_savedmodel"
    model = next(m for m in CASES[case]["models"] if m["name"] == "frozen")
    gd, _, _, _ = quantize(FIXTURES / case / "frozen.pb", [*args, *SMALL], tmp_path)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"MIN_COMBINED' is {mode}"):
        xla_run(gd, feeds_for(model, load_io(case)), "Identity:0")


# -----------------------------------------------------------------------------
# bigger models: every mode, sizes, accuracy against TFLite

@pytest.fixture(scope="session")
def big_models() -> Path:
    """build/models, generated on first use by scripts/gen_models.py."""
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_models  # noqa: E402
    return gen_models.ensure(BIG_MODELS)


def model_spec(root: Path, name: str):
    case = json.loads((root / name / "case.json").read_text())
    frozen = next(m for m in case["models"] if m["name"] == "frozen")
    (inp, ispec), = frozen["inputs"].items()
    (out, ospec), = frozen["outputs"].items()
    with np.load(root / name / "io.npz") as z:
        x = z[ispec["key"]]
        y = z[ospec["key"]]
    return inp, out, x, y


def tflite_drq(saved_model: Path, x: np.ndarray) -> tuple[np.ndarray, int]:
    """TFLite dynamic-range quantization (Optimize.DEFAULT, no dataset) of the SavedModel,
    run by the TFLite interpreter of the TF wheel on x."""
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    flat = conv.convert()
    it = tf.lite.Interpreter(model_content=flat, num_threads=1)
    (i,) = it.get_input_details()
    (o,) = it.get_output_details()
    it.resize_tensor_input(i["index"], x.shape)
    it.allocate_tensors()
    it.set_tensor(i["index"], x.astype(i["dtype"]))
    it.invoke()
    return it.get_tensor(o["index"]).copy(), len(flat)


def _write_tables(results: dict):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "accuracy.json").write_text(json.dumps(results, indent=1) + "\n")
    names = [m for m in BIG_MODELS if m in results]
    rows = ["TFLite dynamic range", *MODES]
    lines = ["| mode | " + " | ".join(f"{m} max abs | {m} rel RMS | {m} weight SNR (dB)"
                                      for m in names) + " |",
             "|---|" + "---:|---:|---:|" * len(names)]
    for row in rows:
        cells = []
        for m in names:
            e = results[m]["errors"].get(row)
            snr = e.get("weight_snr_db") if e else None
            cells += ([f"{e['max_abs']:.3g}", f"{e['rel_rms']:.3g}",
                       f"{snr:.1f}" if snr is not None else "–"] if e else ["", "", ""])
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "| model | float frozen (bytes) | weights share | " +
              " | ".join(f"{r}" for r in ["TFLite DRQ", *MODES]) + " |",
              "|---|---:|---:|" + "---:|" * (len(MODES) + 1)]
    for m in names:
        r = results[m]
        cells = [f"{r['tflite_bytes'] / r['float_bytes']:.3f}"]
        cells += [f"{r['sizes'][k] / r['float_bytes']:.3f}" for k in MODES]
        lines.append(f"| {m} | {r['float_bytes']} | {r['weight_share']:.3f} | "
                     + " | ".join(cells) + " |")
    (OUT_DIR / "accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))


RESULTS: dict = {}


@needs
@pytest.mark.parametrize("name", BIG_MODELS)
def test_models_every_mode_sizes_and_accuracy_vs_tflite(name, big_models, tmp_path):
    root = big_models
    inp, out, x, y_io = model_spec(root, name)
    frozen_path = root / name / "frozen.pb"
    original = parse_graphdef_bytes(frozen_path.read_bytes())
    ref = run_graphdef(original, {inp: x}, [out])[0]
    np.testing.assert_allclose(ref, y_io, rtol=1e-4, atol=1e-5)
    float_bytes = frozen_path.stat().st_size
    errors, sizes, share = {}, {}, None
    for mode, args in MODES.items():
        gd, rep, raw, _ = quantize(frozen_path, args, tmp_path)
        assert rep["tensors"], f"{name} {mode}: nothing quantized"
        check_structure(gd, rep, mode)
        got = run_graphdef(gd, {inp: x}, [out])[0]
        assert got.shape == ref.shape and np.all(np.isfinite(got))
        errors[mode] = {"max_abs": max_abs(got, ref), "rel_rms": rel_rms(got, ref),
                        "weight_snr_db": rep["totals"]["snr_db"]}
        sizes[mode] = len(raw)
        if mode == "int8":
            share = rep["totals"]["bytes_before"] / float_bytes
    y_tfl, tfl_bytes = tflite_drq(root / name / "saved_model", x)
    errors["TFLite dynamic range"] = {"max_abs": max_abs(y_tfl, ref),
                                      "rel_rms": rel_rms(y_tfl, ref)}
    RESULTS[name] = {"errors": errors, "sizes": sizes, "float_bytes": float_bytes,
                     "tflite_bytes": tfl_bytes, "weight_share": share}
    _write_tables(RESULTS)

    # Accuracy: int8 per channel no worse than TFLite's dynamic-range quantization.
    ours, tfl = errors["int8"], errors["TFLite dynamic range"]
    assert ours["max_abs"] <= tfl["max_abs"], f"{name}: max abs {ours} vs TFLite {tfl}"
    assert ours["rel_rms"] <= tfl["rel_rms"], f"{name}: rel RMS {ours} vs TFLite {tfl}"
    # The Dequantize encoding computes the very floats Cast + Mul does.
    assert errors["int8 --encoding dequantize"] == errors["int8"]
    # Sizes, on weight-dominated models (weights >= 98% of the file; the others are printed).
    int8_ratio = sizes["int8"] / float_bytes
    f16_ratio = sizes["float16"] / float_bytes
    print(f"\n{name}: weights {share:.3f} of {float_bytes} bytes; int8 {int8_ratio:.4f}x, "
          f"float16 {f16_ratio:.4f}x, TFLite DRQ {tfl_bytes / float_bytes:.4f}x")
    if share >= 0.98:
        assert int8_ratio <= 0.27, f"{name}: int8 {int8_ratio:.4f}x"
        assert f16_ratio <= 0.52, f"{name}: float16 {f16_ratio:.4f}x"


@pytest.mark.needs_bin("tf-strip", "tf-fold", TOOL)
@pytest.mark.parametrize("name", BIG_MODELS)
def test_models_pipeline_strip_fold_quant(name, big_models, tmp_path):
    """The README's pipeline, tf-strip | tf-fold | tf-quant: batch norms folded into the
    weights leave fewer float parameters, so MobileNetV2 too gets under 0.27x. Sizes are
    relative to the float frozen graph; TF runs the result."""
    inp, out, x, _ = model_spec(big_models, name)
    frozen = (big_models / name / "frozen.pb").read_bytes()
    ref = run_graphdef(parse_graphdef_bytes(frozen), {inp: x}, [out])[0]
    stripped = run_tool("tf-strip", "--outputs", out, "-q", input=frozen).stdout
    folded = run_tool("tf-fold", "-q", input=stripped, timeout=600).stdout
    ratios = {}
    for mode in ("int8", "float16"):
        gd, rep, raw, _ = quantize(None, [mode], tmp_path, input=folded)
        got = run_graphdef(gd, {inp: x}, [out])[0]
        assert rel_rms(got, ref) <= max(2 * RESULTS.get(name, {}).get("errors", {}).get(
            mode, {"rel_rms": 0.5})["rel_rms"], 1e-4), f"{name} {mode}"
        ratios[mode] = len(raw) / len(frozen)
        share = rep["totals"]["bytes_before"] / len(folded)
    print(f"\n{name}: tf-strip | tf-fold | tf-quant: int8 {ratios['int8']:.4f}x, "
          f"float16 {ratios['float16']:.4f}x of the float frozen graph "
          f"(weights {share:.3f} of the folded graph)")
    if share >= 0.98:
        assert ratios["int8"] <= 0.27 and ratios["float16"] <= 0.52, ratios


@needs
@pytest.mark.parametrize("name", ["mobilenetv2", "transformer", "resnet50"])
def test_models_int8_compiles_under_xla(name, big_models, tmp_path):
    inp, out, x, _ = model_spec(big_models, name)
    gd, _, _, _ = quantize(big_models / name / "frozen.pb", ["int8"], tmp_path)
    got, hlo = xla_run(gd, {inp: x}, out)
    cpu = run_graphdef(gd, {inp: x}, [out])[0]
    np.testing.assert_allclose(got, cpu, rtol=1e-3, atol=1e-5)
    assert "s8[" in hlo


# -----------------------------------------------------------------------------
# int8 is TFLite's weight format; uint8 is GTT's

def _weights(gd) -> dict:
    return {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor)
            for n in gd.node if n.op == "Const" and n.attr["dtype"].type == tf.float32}


@needs
def test_int8_codes_and_scales_are_tflites(tmp_path):
    """Per output channel: scale = max|w|/127 and codes round(w/scale) in [-127, 127], i.e.
    TFLite's symmetric narrow-range weights; and TF dequantizes them to codes * scale."""
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    gd, rep, _, _ = quantize(src, ["int8", *SMALL], tmp_path)
    w = _weights(parse_graphdef_bytes(src.read_bytes()))
    consts = {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor)
              for n in gd.node if n.op == "Const"}
    fetch = [t["name"] + ":0" for t in rep["tensors"]]
    deq = dict(zip(fetch, run_graphdef(gd, {}, fetch)))
    for t in rep["tensors"]:
        v, axes = w[t["name"]], t["axis"]
        reduce = tuple(i for i in range(v.ndim) if i not in axes)
        m = np.max(np.abs(v), axis=reduce, keepdims=True).astype(np.float32)
        scale = m / np.float32(127)
        codes = consts[t["name"] + "/quantized"]
        assert codes.dtype == np.int8 and codes.min() >= -127
        want = np.clip(np.sign(v) * np.floor(np.abs(v / scale) + 0.5), -127, 127)
        assert np.sum(codes != want) <= codes.size // 1000, t["name"]   # ties at 1 ulp
        got_scale = consts[t["name"] + "/scale"]
        np.testing.assert_array_equal(got_scale.reshape(-1), scale.reshape(-1))
        np.testing.assert_array_equal(deq[t["name"] + ":0"],
                                      codes.astype(np.float32) * got_scale)


def quint8_values(node) -> np.ndarray:
    t = node.attr["value"].tensor
    assert t.dtype == tf.quint8.as_datatype_enum
    return np.frombuffer(t.tensor_content, np.uint8).reshape([d.size for d in t.tensor_shape.dim])


def gtt_quantize_weights(v: np.ndarray) -> tuple[np.ndarray, float, float]:
    """GTT's quantize_weights on one tensor: range with 0, quint8 MIN_FIRST
    through FloatToQuantized (double arithmetic, ties away from zero)."""
    v = v.astype(np.float32)
    lo, hi = np.float32(min(v.min(), 0)), np.float32(max(v.max(), 0))
    if lo == hi:
        hi = lo + np.float32(1) if abs(lo) < 1e-6 else (2 * lo if lo > 0 else lo / 2)
    range_scale = 256.0 / (float(np.float32(hi - lo)) * (256.0 / 255.0))

    def rnd(a):
        return np.sign(a) * np.floor(np.abs(a) + 0.5)
    q = np.clip(rnd(v.astype(np.float64) * range_scale) - rnd(float(lo) * range_scale), 0, 255)
    return q.astype(np.uint8), float(lo), float(hi)


@needs
def test_uint8_is_gtt_quantize_weights(tmp_path):
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    gd, rep, _, _ = quantize(src, ["uint8", *SMALL], tmp_path)
    w = _weights(parse_graphdef_bytes(src.read_bytes()))
    by = {n.name: n for n in gd.node}
    for t in rep["tensors"]:
        q, lo, hi = gtt_quantize_weights(w[t["name"]])
        n = t["name"]
        assert by[n].op == "Dequantize" and by[n].attr["mode"].s == b"MIN_FIRST"
        assert list(by[n].input) == [f"{n}_quantized_const", f"{n}_quantized_min",
                                     f"{n}_quantized_max"]
        assert by[f"{n}_quantized_const"].attr["dtype"].type == tf.quint8.as_datatype_enum
        np.testing.assert_array_equal(quint8_values(by[f"{n}_quantized_const"]), q, err_msg=n)
        assert tensor_util.MakeNdarray(by[f"{n}_quantized_min"].attr["value"].tensor) == lo
        assert tensor_util.MakeNdarray(by[f"{n}_quantized_max"].attr["value"].tensor) == hi


@needs
def test_uint8_zero_point_fix_on_resnet50(big_models, tmp_path):
    """ResNet50 has a weight whose range is symmetric about 0: GTT's quantizer rounds the zero
    point -127.5 to -128, TF's Dequantize to -127, so GTT's bytes come back one step off
    everywhere. tf-quant writes GTT's bytes for every other tensor and the dequantizer's zero
    point for that one; with GTT's bytes the output error is 4 orders of magnitude worse."""
    inp, out, x, _ = model_spec(big_models, "resnet50")
    src = big_models / "resnet50" / "frozen.pb"
    gd, rep, _, _ = quantize(src, ["uint8"], tmp_path)
    w = _weights(parse_graphdef_bytes(src.read_bytes()))
    fixed = [t["name"] for t in rep["tensors"] if t.get("note")]
    assert fixed, "expected a zero-point tie in ResNet50"
    gtt = graph_pb2.GraphDef()
    gtt.CopyFrom(gd)
    by = {n.name: n for n in gtt.node}
    for t in rep["tensors"]:
        q, _, _ = gtt_quantize_weights(w[t["name"]])
        node = by[t["name"] + "_quantized_const"]
        ours = quint8_values(node)
        if t["name"] in fixed:
            # GTT's zero point is one lower: its codes are ours + 1 (but where clamped).
            assert np.mean(q.astype(int) - ours.astype(int) == 1) > 0.99, t["name"]
            node.attr["value"].tensor.tensor_content = q.tobytes()
        else:
            np.testing.assert_array_equal(ours, q, err_msg=t["name"])
    ref = run_graphdef(parse_graphdef_bytes(src.read_bytes()), {inp: x}, [out])[0]
    ours_err = max_abs(run_graphdef(gd, {inp: x}, [out])[0], ref)
    gtt_err = max_abs(run_graphdef(gtt, {inp: x}, [out])[0], ref)
    print(f"\nresnet50 uint8 max abs error: tf-quant {ours_err:.3g}, GTT's bytes {gtt_err:.3g}")
    assert ours_err * 100 < gtt_err


# -----------------------------------------------------------------------------
# flags, report, CLI contract

@needs
def test_report_per_tensor_and_totals(tmp_path):
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    _, rep, _, _ = quantize(src, ["int8", *SMALL], tmp_path)
    assert rep["mode"] == "int8" and rep["granularity"] == "per_channel"
    assert rep["encoding"] == "cast-mul" and rep["min_elements"] == 16
    for t in rep["tensors"]:
        assert set(t) >= {"name", "read_by", "shape", "axis", "scales", "elements",
                          "bytes_before", "bytes_after", "max_abs_error", "snr_db", "nodes"}
        assert t["bytes_before"] == 4 * t["elements"]
        assert t["bytes_after"] == t["elements"] + 4 * t["scales"]
        assert t["snr_db"] > 30
    tot = rep["totals"]
    assert tot["tensors"] == len(rep["tensors"]) == 3
    assert tot["bytes_before"] == sum(t["bytes_before"] for t in rep["tensors"])
    # biases and batch-norm parameters are skipped only when large enough to mention
    assert all("not a weight" in s["why"] or "fewer" in s["why"] for s in rep["skipped"])


@needs
def test_include_exclude_min_elements(tmp_path):
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    _, all_, _, _ = quantize(src, ["int8", *SMALL], tmp_path)
    names = sorted(t["name"] for t in all_["tensors"])
    _, inc, _, _ = quantize(src, ["int8", *SMALL, "--include", f"^{names[0]}$"], tmp_path)
    assert [t["name"] for t in inc["tensors"]] == [names[0]]
    _, exc, _, _ = quantize(src, ["int8", *SMALL, "--exclude", f"^{names[0]}$"], tmp_path)
    assert sorted(t["name"] for t in exc["tensors"]) == names[1:]
    _, big, _, _ = quantize(src, ["int8", "--min-elements", "100"], tmp_path)
    assert all(t["elements"] >= 100 for t in big["tensors"]) and len(big["tensors"]) == 1


def _assert_error(r, *words):
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, f"exit {r.returncode}: {err}"
    assert r.stdout == b"", "nothing on stdout on error"
    assert len(err.strip().splitlines()) == 1, f"one line on stderr: {err!r}"
    assert err.startswith("tf-quant: error: "), err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"


@needs
@pytest.mark.parametrize("args,words", [
    (["int4"], ["unknown mode 'int4'"]),
    (["round:0"], ["round:0"]),
    (["int8", "--include", "conv["], ["--include 'conv['", "regular expression"]),
    (["int8", "--exclude", "(a"], ["--exclude '(a'"]),
    (["float16", "--per-tensor"], ["--per-tensor", "int8 only"]),
    (["uint8", "--encoding", "dequantize"], ["--encoding", "int8 only"]),
    (["int8", "--encoding", "qdq"], ["--encoding 'qdq'"]),
])
def test_bad_input_exits_2_with_one_line(args, words):
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    _assert_error(run_tool(TOOL, *args, src, check=False), *words)


@needs
def test_no_float_weights_is_a_warning_and_a_pass_through():
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"   # every weight < 1024 elements
    r = run_tool(TOOL, "int8", src)
    assert r.returncode == 0
    assert r.stdout == src.read_bytes()
    err = r.stderr.decode()
    assert err.startswith("tf-quant: warning: no float weights to quantize"), err
    # A SavedModel with variables: freeze first.
    r = run_tool(TOOL, "int8", FIXTURES / "keras_cnn_savedmodel" / "saved_model")
    assert r.returncode == 0 and "tf-freeze" in r.stderr.decode()


@needs
def test_mode_defaults_to_int8_and_a_path_may_come_first(tmp_path):
    src = FIXTURES / "keras_cnn_savedmodel" / "frozen.pb"
    a = run_tool(TOOL, src, *SMALL).stdout
    b = run_tool(TOOL, "int8", src, *SMALL).stdout
    c = run_tool(TOOL, *SMALL, input=src.read_bytes()).stdout
    assert a == b == c and a != src.read_bytes()
    # idempotent: a quantized graph has no float weights left
    again = run_tool(TOOL, "int8", *SMALL, input=a)
    assert again.stdout == a and "no float weights" in again.stderr.decode()
