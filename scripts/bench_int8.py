#!/usr/bin/env python3
"""Full-integer int8 against float and weight-only int8, in TensorFlow 2.21 (oneDNN on).

    .venv/bin/python scripts/bench_int8.py [--json] [--rounds N] [MODEL..]

`make bench-int8` runs it through `scripts/bench.py --int8-only`, which writes the section of
docs/benchmarks.md. Models (build/models, made by scripts/gen_models.py, seeded random weights):
mobilenetv2, resnet50, transformer. For each:

  float       frozen.pb -> tf-strip -> tf-fold
  weight-only tf-quant int8 float.pb
  full int8   tf-run float.pb --calibrate calib.npz (32 seeded samples) ->
              tf-quant int8 --activations ranges.json float.pb

then the file size of each, the rewrite time of weight-only `tf-quant int8` against `tf-quant
int8 --activations` on the same float graph (whole process, wall and CPU time (user + system),
median of REWRITES runs of each, the two modes alternating), and, in one TF session per graph:
batch-1 latency (median of every run) and batch-32 throughput (32 / median batch time). Each
round runs RUNS_B1 batch-1 inputs through the three graphs taking turns run by run, then one
batch of 32 through each, in an order rotated every round, so that the load of this shared
machine falls on all three alike. Also the logits' cosine and top-1 agreement with float on the
32 held-out inputs of the batch runs. The load average is taken before and after.

tf-run has no timing option: the timing is done here, with TensorFlow's Python session.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The int8 kernels exist only through oneDNN's graph rewrite; TF reads this at import.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("TF_TOOLS_BIN", str(REPO / "target" / "release")))
MODELS = REPO / "build" / "models"
OUT = REPO / "build" / "bench_int8"
SEED = 20261204
N_CALIB = 32
BATCH = 32
RUNS_B1 = 5  # batch-1 runs per round
REWRITES = 9  # tf-quant runs per mode
VOCAB = 1000  # the transformer's Embedding(1000, 64) (scripts/gen_models.py)
VARIANTS = ("float", "weight-only int8", "full int8")


def tool(name, *args):
    """Runs a tool; returns (wall seconds, CPU seconds: user + system) of the whole process."""
    t = time.perf_counter()
    p = subprocess.Popen([str(BIN / name), *map(str, args)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"bench_int8: {name} {' '.join(map(str, args))}: "
                 f"{err.decode(errors='replace').strip()}")
    return wall, ru.ru_utime + ru.ru_stime


def median(xs):
    return float(np.median(xs))


def why_short(why):
    """The report's reason without tensor names and values: 'depthwise input can be negative',
    'depthwise without Relu', ..."""
    if "negative values" in why:
        return ("depthwise" if "depthwise" in why else "MatMul") + " input can be negative"
    if "not followed by Relu" in why:
        return "depthwise without Relu"
    if "--min-matmul-weights" in why:
        return "MatMul under --min-matmul-weights"
    return re.sub(r"'[^']*'|\([^)]*\)", "", why).strip()[:60]


def inputs_of(gd, rng, n):
    """n seeded rows for the one placeholder: images in [0, 1), tokens in [0, VOCAB)."""
    ph = [x for x in gd.node if x.op == "Placeholder"]
    if len(ph) != 1:
        sys.exit(f"bench_int8: expected one placeholder, found {len(ph)}")
    p = ph[0]
    shape = [d.size for d in p.attr["shape"].shape.dim][1:]
    if p.attr["dtype"].type == 3:  # DT_INT32
        return p.name, rng.integers(0, VOCAB, (n, *shape)).astype(np.int32)
    return p.name, rng.uniform(0, 1, (n, *shape)).astype(np.float32)


def bench_model(name, rounds):
    import tensorflow as tf

    src = MODELS / name / "frozen.pb"
    if not src.exists():
        subprocess.run([sys.executable, str(REPO / "scripts" / "gen_models.py"), name], check=True)
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    names = ("stripped.pb", "float.pb", "int8_w.pb", "int8_full.pb")
    stripped, f32, w8, q8 = (d / n for n in names)
    ranges, report = d / "ranges.json", d / "report.json"
    tool("tf-strip", src, "-o", stripped, "-q")
    tool("tf-fold", stripped, "-o", f32)
    gd = tf.compat.v1.GraphDef.FromString(f32.read_bytes())
    rng = np.random.default_rng(SEED)
    feed, calib = inputs_of(gd, rng, N_CALIB)
    _, held = inputs_of(gd, rng, BATCH)
    np.savez(d / "calib.npz", **{feed: calib})
    tool("tf-run", f32, "--calibrate", d / "calib.npz", "-o", ranges, "-q")
    tool("tf-quant", "int8", "--activations", ranges, f32, "-o", q8, "--report", report)
    t_w, t_a = [], []
    for _ in range(REWRITES):
        t_w.append(tool("tf-quant", "int8", f32, "-o", w8, "-q"))
        t_a.append(tool("tf-quant", "int8", "--activations", ranges, f32, "-o", q8, "-q"))
    rep = json.loads(report.read_text())["changes"]["quant"]["activations"]

    read = {i.split(":")[0].lstrip("^") for n in gd.node for i in n.input}
    out = next(n for n in gd.node if n.name not in read and n.op not in ("Const", "NoOp"))
    fetch = out.name + ":0"

    sessions = {}
    for v, path in zip(VARIANTS, (f32, w8, q8)):
        g = tf.Graph()
        with g.as_default():
            tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(path.read_bytes()),
                                           name="")
        sessions[v] = tf.compat.v1.Session(graph=g)
    one = held[:1]
    logits = {}
    for v, s in sessions.items():  # warm-up: Grappler and oneDNN's rewrite run on the first call
        s.run(fetch, {feed + ":0": one})
        logits[v] = s.run(fetch, {feed + ":0": held}).reshape(BATCH, -1).astype(np.float64)
    b1 = {v: [] for v in VARIANTS}
    b32 = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
        for _ in range(RUNS_B1):
            for v in order:
                t = time.perf_counter()
                sessions[v].run(fetch, {feed + ":0": one})
                b1[v].append(time.perf_counter() - t)
        for v in order:
            t = time.perf_counter()
            sessions[v].run(fetch, {feed + ":0": held})
            b32[v].append(time.perf_counter() - t)
    for s in sessions.values():
        s.close()

    ref = logits["float"]
    res = {"model": name, "int8_kernels": len(rep["int8"]), "int8_pools": len(rep["int8_pools"]),
           "stayed_float": len(rep["float"]),
           "float_why": dict(Counter(why_short(f["why"]) for f in rep["float"])),
           "quantize_nodes": rep["quantize_nodes"],
           "rewrite_s": {"weight-only int8": median([w for w, _ in t_w]),
                         "full int8": median([w for w, _ in t_a])},
           "rewrite_cpu_s": {"weight-only int8": median([c for _, c in t_w]),
                             "full int8": median([c for _, c in t_a])},
           "variants": {}}
    for v, path in zip(VARIANTS, (f32, w8, q8)):
        got = logits[v]
        cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
                                      + 1e-30)
        res["variants"][v] = {
            "bytes": path.stat().st_size,
            "latency_b1_ms": 1e3 * median(b1[v]),
            "throughput_b32": BATCH / median(b32[v]),
            "cosine_min": float(cos.min()),
            "top1": float(np.mean(ref.argmax(1) == got.argmax(1))),
        }
    return res


def markdown(results):
    lines = ["| model | graph | size (MB) | batch-1 latency (ms) | batch-32 (samples/s) | "
             "× float (b1 / b32) | logits cosine min, top-1 vs float |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in results:
        f = r["variants"]["float"]
        for v in VARIANTS:
            x = r["variants"][v]
            lines.append(
                f"| {r['model']} | {v} | {x['bytes'] / 1e6:.2f} | {x['latency_b1_ms']:.2f} | "
                f"{x['throughput_b32']:.1f} | "
                f"{f['latency_b1_ms'] / x['latency_b1_ms']:.2f}× / "
                f"{x['throughput_b32'] / f['throughput_b32']:.2f}× | "
                + ("—" if v == "float" else f"{x['cosine_min']:.4f}, {100 * x['top1']:.0f} %")
                + " |")
    lines += ["", "| model | int8 kernels (+ pools) | convs/matmuls left float (why) | "
              "QuantizeV2 | rewrite wall s: weight-only / --activations | ratio (goal ≤ 2×) | "
              "CPU s: weight-only / --activations | ratio |",
              "|---|---:|---|---:|---:|---|---:|---|"]
    for r in results:
        w, a = r["rewrite_s"]["weight-only int8"], r["rewrite_s"]["full int8"]
        cw, ca = r["rewrite_cpu_s"]["weight-only int8"], r["rewrite_cpu_s"]["full int8"]
        why = ", ".join(f"{n} {k}" for k, n in r["float_why"].items()) or "—"
        lines.append(
            f"| {r['model']} | {r['int8_kernels']} (+{r['int8_pools']}) | {why} "
            f"| {r['quantize_nodes']} | {w:.3f} / {a:.3f} | "
            f"{a / w:.2f}× ({'met' if a <= 2 * w else 'MISSED'}) | {cw:.3f} / {ca:.3f} | "
            f"{ca / cw:.2f}× |")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["mobilenetv2", "resnet50", "transformer"])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print JSON (for scripts/bench.py)")
    args = ap.parse_args()
    import tensorflow as tf

    load0 = os.getloadavg()
    results = [bench_model(m, args.rounds) for m in args.models]
    load1 = os.getloadavg()
    doc = {"tf": tf.__version__, "rounds": args.rounds, "runs_b1": RUNS_B1, "batch": BATCH,
           "rewrites": REWRITES,
           "n_calib": N_CALIB, "load_before": load0, "load_after": load1, "results": results,
           "markdown": markdown(results)}
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(f"load average before {load0[0]:.1f}, after {load1[0]:.1f}")
        print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
