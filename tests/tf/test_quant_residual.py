"""Residual Adds fused into int8 convolutions (``tf-quant int8 --activations``) on blocks that
are not the textbook ResNet block, run by real TensorFlow (oneDNN on).

The fused-sum kernels write their result over the shortcut's buffer, so an Add may be fused
only when nothing reads the shortcut after the kernel. Seeded Keras models with random weights
(32x32 inputs, 8-32 channels): the shortcut also read by a later side convolution, max pool,
concatenation or model output; one shortcut in two Adds; a block of one convolution; the
summand being the second convolution's input; a projection block and a tanh shortcut (signed
summands); the graph input, a max pool's output as shortcut; a side branch merged back into the
block; a summand broadcast over the batch, calibrated on one sample; a summand computed from
constants only (by Cumsum, which tf-fold leaves to TensorFlow) in a graph of batch 1; two
identical Relus of one tensor (merged by TensorFlow at load, not by tf-fold: skipped there),
each a block's shortcut; two MobileNetV2 linear bottlenecks (no Relu: the sum offset-coded) in a
row, and with the first sum also read by a later 3x3 convolution.

Each goes through tf-freeze, tf-fold, ``tf-run --calibrate`` (48 samples: shapes recorded with
batch -1) and tf-quant. The worker (quant_residual_worker.py, its own process: oneDNN on, and a
crash of TensorFlow fails that case instead of pytest) runs the float and the int8 graph in one
session each, fetching the logits and every residual Add's inputs (the shortcut now being a
Dequantize) in the same ``Session.run``, at batch 16 twice, 7 twice and 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import BIN_DIR, HERE

TOOLS = ("tf-freeze", "tf-fold", "tf-run", "tf-quant")
SUM = "QuantizedConv2DWithBiasSumAndReluAndRequantize"
SIGNED = "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize"
LATER = "also reads it and may run later"
# case -> (fused quint8 summands, fused qint8 summands, float Adds, why they stay float)
EXPECT = {
    "textbook": (2, 0, 0, None),
    "side_conv": (0, 0, 1, LATER),
    "side_pool": (0, 0, 1, LATER),
    "shared_shortcut": (0, 0, 2, "is the summand of several residual Adds"),
    "dense_concat": (0, 0, 1, LATER),
    "single_conv": (0, 0, 1, LATER),
    "summand_is_input": (0, 0, 1, LATER),
    "projection": (1, 1, 0, None),
    "input_summand": (1, 0, 0, None),
    "tanh_summand": (0, 1, 0, None),
    "maxpool_shortcut": (1, 0, 0, None),
    "merged_side": (1, 0, 0, None),
    "batch_mean": (0, 0, 1, "size 1 in dimension 0 in every calibration run"),
    "const_summand": (0, 0, 1, "depends on no input of the graph"),
    "twin_summands": (0, 0, 2, "(or a duplicate of it, which TensorFlow merges with it) is the "
                               "summand of several residual Adds"),
    "linear_chain": (1, 1, 0, None),
    "linear_side": (0, 1, 1, LATER),
    "two_outputs": (0, 0, 1, LATER),
}
# Batch sizes each case runs at (a graph of fixed batch 1 runs at 1 only).
BATCHES = {c: {"1"} if c == "const_summand" else {"16", "7", "1"} for c in EXPECT}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Runs the worker on every case; when it dies (a crash of TensorFlow), the case it was on
    gets the error and a new worker goes on with the rest."""
    out = tmp_path_factory.mktemp("residual")
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_TOOLS_BIN=str(BIN_DIR))
    todo, res = list(EXPECT), {}
    while todo:
        r = subprocess.run([sys.executable, str(HERE / "quant_residual_worker.py"), str(out),
                            *todo], capture_output=True, env=env, timeout=600)
        for line in r.stdout.decode().splitlines():
            if line.startswith("{"):
                m = json.loads(line)
                res[m["case"]] = m
        todo = [c for c in todo if c not in res]
        if r.returncode == 0:
            assert not todo, (todo, r.stderr.decode(errors="replace")[-2000:])
            break
        # The worker prints the cases in order: the first one missing is the one it died on.
        err = [ln for ln in r.stderr.decode(errors="replace").splitlines()
               if not ln.startswith(("I0000", "E0000", "W0000", "WARNING: All log"))]
        res[todo.pop(0)] = {"error": f"worker exit status {r.returncode}: "
                                     + "\n".join(err[-30:])}
    for name, m in res.items():
        print(name, {k: m.get(k) for k in ("error", "outputs_cosine", "cosine_by_batch")})
    return res


@pytest.mark.needs_bin(*TOOLS)
@pytest.mark.parametrize("case", list(EXPECT))
def test_int8_graph_runs_and_matches_float(results, case):
    m = results[case]
    assert "error" not in m, m["error"]
    assert m["finite"], m
    # Logits and every fetched Add input, at every batch size, against the float graph.
    assert m["outputs_cosine"] >= 0.99, m["cosine"]
    assert min(m["cosine"].values()) >= 0.99, m["cosine"]
    assert set(m["cosine_by_batch"]) == BATCHES[case], m
    assert min(m["cosine_by_batch"].values()) >= 0.99, m["cosine_by_batch"]
    # Running the same batch twice in one session gives the same values.
    assert m["repeat_identical"], m


@pytest.mark.needs_bin(*TOOLS)
@pytest.mark.parametrize("case", list(EXPECT))
def test_residual_add_fused_only_when_safe(results, case):
    m = results[case]
    assert "error" not in m, m["error"]
    sums, signed, floats, why = EXPECT[case]
    assert m["kernels"].count(SUM) == sums, m["kernels"]
    assert m["kernels"].count(SIGNED) == signed, m["kernels"]
    assert len(m["summands"]) == sums + signed, m["summands"]
    assert m["adds_left"] == floats, m
    adds = [f for f in m["float"] if f[1] == "AddV2"]
    assert len(adds) == floats, m["float"]
    assert all(why in f[2] for f in adds), adds
    # Nothing else stayed float.
    assert len(m["float"]) == floats, m["float"]


@pytest.mark.needs_bin(*TOOLS)
@pytest.mark.parametrize("case", [c for c, e in EXPECT.items() if e[0] + e[1]])
def test_fused_summand_is_fetched_with_the_logits(results, case):
    m = results[case]
    assert "error" not in m, m["error"]
    # Each fused kernel's shortcut was fetched in the same Session.run as the logits (its
    # Dequantize runs before the kernel overwrites the 8-bit buffer) and matches float; its
    # shape was recorded with an open batch.
    for tensor, _ in m["summands"]:
        assert tensor in m["fetched"], (tensor, m["fetched"])
        assert m["cosine"][tensor] >= 0.99, (tensor, m["cosine"])
        assert m["summand_shapes"][tensor][0] == -1, m["summand_shapes"]
