"""tf-quant int8 --activations (full-integer graphs) against real TensorFlow and TFLite.

Seeded Keras models go through tf-freeze, tf-fold, ``tf-run --calibrate`` (64 samples) and
``tf-quant int8 --activations``: a small CNN with max pools and a Relu6, an MLP, and an MLP whose
Dense inputs can be negative (tanh, LayerNormalization, GELU, as in a transformer), all trained
for a few epochs on synthetic classes (a class pattern plus noise) so that their logits separate
the classes, a MobileNet-like stack of 1x1 and depthwise convolutions trained the same way, and
a ResNet-like model (random weights) of two identity blocks and a projection block, whose
residual Adds are fused into the convolutions.
On 256 held-out samples (not the calibration samples), stock TF 2.21 (oneDNN on) runs every
int8 graph, and its logits are compared with the float graph's and with TFLite's full-int8
post-training quantization of the same model on the same calibration samples.

Why the classifiers are trained: with random weights, the logits of different inputs share a
large common component and differ by ~1 % of their size, so a quantization error far below one
output step of the logits still swaps near-tied classes (the random CNN "lost" 2 samples in 64
at margins of 0.001 against logits of 0.12, with every layer within 1 % RMS of float, and
neither percentile ranges, more calibration samples nor a float last layer changed that). Top-1
agreement is only a measure of quantization where the float model's top-1 means something.

The models run in a worker process (quant_activations_worker.py) because the int8 kernels need
oneDNN on, which TensorFlow reads at import, and the rest of this tier runs with it off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import BIN_DIR, HERE, run_tool

TOOLS = ("tf-freeze", "tf-fold", "tf-run", "tf-quant")
# The other --calibration rules, run on the same ranges files.
RULES = ("percentile:99.99", "entropy")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_TOOLS_BIN=str(BIN_DIR))
    r = subprocess.run([sys.executable, str(HERE / "quant_activations_worker.py"), str(out),
                        "--calibrations=" + ",".join(RULES)],
                       capture_output=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    res = json.loads(r.stdout)["results"]
    for m in res:
        print(m["model"], "int8", m["int8"], "tflite", m.get("tflite"))
    return {**{m["model"]: m for m in res}, "_dir": out}


MODELS = ["cnn", "mlp", "mlp_signed", "resnet_like", "mobilenet_like"]


@pytest.mark.needs_bin(*TOOLS)
@pytest.mark.parametrize("model", MODELS)
def test_int8_graph_runs_and_matches_float(results, model):
    m = results[model]
    assert m["int8_nodes"] >= 3, m
    assert "QuantizeV2" in m["ops"]
    q = m["int8"]
    assert q["cosine_min"] >= 0.99, q
    assert q["max_abs_err"] <= 0.1 * q["ref_max_abs"], q
    if model == "resnet_like":
        # Random weights: near-tied logits (see the module's docstring), a loose bar.
        assert q["top1"] >= 0.9, q
    else:
        # A classifier whose float logits carry the class (chance is 10 %), then the goal:
        # int8 picks the float model's class on at least 98 % of the held-out samples.
        assert m["float_accuracy"] >= 0.3, m
        assert q["top1"] >= 0.98, q
    # No worse than TFLite's full-int8 PTQ with the same calibration samples (a small slack
    # for a different rounding of the same 8 bits).
    t = m["tflite"]
    assert q["cosine_mean"] >= t["cosine_mean"] - 0.002, (q, t)
    assert q["top1"] >= t["top1"] - 0.01, (q, t)


@pytest.mark.needs_bin(*TOOLS)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("rule", RULES)
def test_other_calibration_rules_match_float(results, model, rule):
    m = results[model]
    q = m["by_calibration"][rule]
    assert q["cosine_min"] >= 0.99, (rule, q)
    if model != "resnet_like":
        assert q["top1"] >= 0.98, (rule, q)


@pytest.mark.needs_bin(*TOOLS)
def test_matmuls_with_negative_inputs_are_int8(results):
    m = results["mlp_signed"]
    # Every Dense is int8, none left float; the two whose input can be negative (after the
    # LayerNormalization and after the GELU) read quint8 MIN_FIRST, the first (inputs in
    # [0, 1)) reads quint8 SCALED.
    assert not [f for f in m["float_nodes"] if "MatMul" in f[0]], m["float_nodes"]
    ks = m["int8_kernels"]
    assert len(ks) == 3, ks
    assert all(k["input_type"] == "quint8" for k in ks), ks
    signed = [k for k in ks if k["input_mode"] == "min_first"]
    assert len(signed) == 2, ks
    assert all(k["input_range"][0] < 0 < k["input_range"][1] for k in signed), ks
    assert [k["input_mode"] for k in ks if k not in signed] == ["scaled"], ks
    assert all(k["kernel"].startswith("QuantizedMatMulWithBias") for k in ks), ks


@pytest.mark.needs_bin(*TOOLS)
def test_regions_chain_without_requantizing(results):
    cnn = results["cnn"]
    # Two QuantizeV2: at the input and after Flatten (a Reshape, float); every other conv, pool
    # and dense reads int8 straight from the kernel before it.
    assert cnn["quantize_nodes"] == 2, cnn
    assert cnn["int8_pools"] == 2, cnn
    assert "QuantizedMaxPool" in cnn["ops"]


def assert_sums(m, unsigned, signed):
    """Model m has these many fused residual Adds with a quint8 and a qint8 summand, and no
    float Add left."""
    ks = m["kernels"]
    assert ks.count("QuantizedConv2DWithBiasSumAndReluAndRequantize") == unsigned, ks
    assert ks.count("QuantizedConv2DWithBiasSignedSumAndReluAndRequantize") == signed, ks
    assert "AddV2" not in m["all_ops"], m


@pytest.mark.needs_bin(*TOOLS)
def test_residual_adds_are_fused_into_the_convolutions(results):
    m = results["resnet_like"]
    # Each block's last convolution adds the shortcut and applies the Relu in the int8 kernel:
    # the identity blocks' shortcut is the previous block's quint8 output, the projection
    # block's a strided 1x1 convolution's qint8 output. Nothing is left float, and the only
    # QuantizeV2 are at the input and after the global pool (before the Dense).
    assert_sums(m, unsigned=2, signed=1)
    assert m["float_nodes"] == [] and m["float_ops"] == [], m
    assert m["quantize_nodes"] == 2, m


@pytest.mark.needs_bin(*TOOLS)
def test_depthwise_convolutions_run_int8_between_the_1x1_convolutions(results):
    m = results["mobilenet_like"]
    # The four depthwise convolutions (one strided, one with multiplier 2) are int8 kernels, and
    # so is every other convolution and the dense layer: no float kernel is left.
    assert m["kernels"].count("QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize") == 4, m
    assert m["float_nodes"] == [] and m["float_ops"] == [], m
    # Two QuantizeV2: at the input and after Flatten; expand -> depthwise -> projection chain
    # without leaving int8, through the residual Adds too, and the ZeroPadding2D before the
    # strided depthwise convolution is its SAME padding (16x16 input: SAME pads 0 and 1).
    assert m["quantize_nodes"] == 2, m
    assert len([k for k in m["int8_kernels"] if k["folded_pad"]]) == 1, m["int8_kernels"]
    assert m["int8"]["cosine_min"] >= 0.99, m


@pytest.mark.needs_bin(*TOOLS)
def test_linear_bottleneck_adds_are_fused_with_an_offset(results):
    m = results["mobilenet_like"]
    # The Adds without Relu are fused too: the first adds the projection's qint8 output
    # (signed-sum kernel), the second the first's quint8 output, which holds the sum plus an
    # offset that its readers' biases take back. No float Add is left.
    assert_sums(m, unsigned=1, signed=1)
    offsets = [k for k in m["int8_kernels"] if k["input_mode"] == "offset"]
    # the second block's expansion reads the first sum; the 1x1 after the blocks the second
    assert len(offsets) == 2, m["int8_kernels"]


@pytest.mark.needs_bin("tf-quant")
def test_bad_ranges_file_is_one_line_exit_2(results, tmp_path):
    d = results["_dir"] / "cnn"
    ranges = json.loads((d / "ranges.json").read_text())
    missing = sorted(ranges["tensors"])[1]
    del ranges["tensors"][missing]
    (tmp_path / "missing.json").write_text(json.dumps(ranges))
    ranges["version"] = 99
    (tmp_path / "v99.json").write_text(json.dumps(ranges))
    (tmp_path / "bad.json").write_text("{not json")
    for name, needle in (("missing.json", missing), ("v99.json", "version 99"),
                         ("bad.json", "bad.json"), ("absent.json", "absent.json")):
        out = tmp_path / "out.pb"
        r = run_tool("tf-quant", "int8", "--activations", tmp_path / name, d / "frozen.pb",
                     "-o", out, check=False)
        err = r.stderr.decode()
        assert r.returncode == 2, err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
        assert not out.exists()


# --legacy-gtt: the Graph Transform Tool's quantize_nodes graph (quint8 MIN_FIRST eight-bit ops
# and Requantize), made by the worker next to the default form and run there with oneDNN on; a
# second worker process runs the same files with oneDNN off.


@pytest.fixture(scope="module")
def legacy_off(results):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_TOOLS_BIN=str(BIN_DIR))
    r = subprocess.run([sys.executable, str(HERE / "quant_activations_worker.py"), "--legacy",
                        str(results["_dir"])], capture_output=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    out = json.loads(r.stdout)
    assert out["onednn"] == "0"
    return out["legacy"]


# Which ops each model's legacy graph runs in eight bits (frozen and dynamic alike). tf-fold
# removed the Keras models' zero biases, so only the ResNet-like one (BN folded into a bias)
# has QuantizedBiasAdd.
LEGACY_OPS = {
    # 4 conv chains (+Relu, one Relu6), 2 max pools, the Flatten, 2 dense chains: one
    # QuantizeV2 at the input, everything else eight-bit through to the logits' Dequantize.
    "cnn": {"QuantizedConv2D": 4, "QuantizedRelu": 4, "QuantizedRelu6": 1,
            "QuantizedMaxPool": 2, "QuantizedReshape": 1, "QuantizedMatMul": 2, "QuantizeV2": 1},
    # 4 dense chains, one QuantizeV2.
    "mlp": {"QuantizedMatMul": 4, "QuantizedRelu": 3, "QuantizeV2": 1},
    # 9 chains (8 convolutions, the projection block's shortcut among them); the 3 residual
    # Adds (GTT's form has no fused sum) and the global pool stay float, so the graph re-enters
    # eight bits through a QuantizeV2 after each Add and at the input.
    "resnet_like": {"QuantizedConv2D": 8, "QuantizedMatMul": 1, "QuantizedBiasAdd": 8,
                    "QuantizedRelu": 4, "QuantizeV2": 4},
}


@pytest.mark.needs_bin(*TOOLS)
@pytest.mark.parametrize("rq", ["frozen", "dynamic"])
@pytest.mark.parametrize("model", ["cnn", "mlp", "resnet_like"])
def test_legacy_gtt_graph_runs_with_onednn_on_and_off(results, legacy_off, model, rq):
    leg = results[model]["legacy"][rq]
    on, off = leg["metrics"], legacy_off[model][rq]
    print(f"legacy-gtt {rq} {model}: oneDNN on {on} / off {off}; ops {leg['eight_bit_ops']}")
    # Nothing float but the residual Adds, which this form cannot fuse.
    assert all("no fused residual Add" in why for _, why in leg["float"]), leg["float"]
    assert len(leg["float"]) == (3 if model == "resnet_like" else 0), leg["float"]
    for m in (on, off):
        # GTT's form has one range per weight tensor (no per-channel scales) and quint8
        # activations: on the trained MLP the worst held-out sample's cosine is 0.990-0.991
        # and top-1 agreement 96-97 % (the default form: 0.999 and 99.6 %).
        assert m["cosine_min"] >= 0.985, m
        assert m["top1"] >= 0.95, m
        # Frozen ranges clip what exceeds calibration (the trained CNN's frozen error is 16 %
        # of its largest logit, 2.6 % with dynamic ranges).
        assert m["max_abs_err"] <= (0.2 if rq == "frozen" else 0.1) * m["ref_max_abs"], m
    ops = leg["eight_bit_ops"]
    for op, n in LEGACY_OPS[model].items():
        assert ops.get(op) == n, (op, ops)
    # Only GTT's ops: none of oneDNN's fused kernels, no SCALED qint8.
    assert not any("With" in op for op in ops), ops
    # Frozen: only the Requantize between a conv/matmul and its BiasAdd measures its range.
    stages = leg["chains"] + ops.get("QuantizedBiasAdd", 0)
    assert ops["Requantize"] == stages, ops
    assert ops.get("RequantizationRange", 0) == (stages if rq == "dynamic" else
                                                 ops.get("QuantizedBiasAdd", 0)), ops
