#!/usr/bin/env python3
"""Full-int8 against float on ResNet50 (build/models, seeded random weights) in TF 2.21 on CPU.

    TF_TOOLS_BIN=target/release LD_LIBRARY_PATH=build/tflib .venv/bin/python scripts/bench_int8.py

Steps: tf-fold (batch norms into the convolutions) -> tf-run --calibrate on 32 seeded samples ->
tf-quant int8 --activations; then, with oneDNN on (which the int8 kernels need), batch-32
throughput of the folded float graph and of the int8 graph (median of runs, interleaved), the
logits cosine on 32 held-out samples, and the rewrite time of `tf-quant int8 --activations`
against weight-only `tf-quant int8` on the same graph (median of 3). Prints a markdown table.
The machine's load changes absolute figures: read the ratios.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("TF_TOOLS_BIN", str(REPO / "target" / "release")))
MODEL = Path(os.environ.get("BENCH_INT8_MODEL", str(REPO / "build" / "models" / "resnet50")))
OUT = REPO / "build" / "bench_int8"


def tool(name, *args):
    t = time.perf_counter()
    r = subprocess.run([str(BIN / name), *map(str, args)], capture_output=True)
    if r.returncode != 0:
        sys.exit(f"{name}: {r.stderr.decode(errors='replace').strip()}")
    return time.perf_counter() - t


def median(xs):
    return sorted(xs)[len(xs) // 2]


def main():
    import tensorflow as tf

    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261204)
    folded, ranges, q8, w8 = (OUT / n for n in ("folded.pb", "ranges.json", "int8_full.pb", "int8_w.pb"))
    tool("tf-fold", MODEL / "frozen.pb", "-o", folded)
    gd = tf.compat.v1.GraphDef.FromString(folded.read_bytes())
    feed = [n.name for n in gd.node if n.op == "Placeholder"][0]
    read = {i.split(":")[0].lstrip("^") for n in gd.node for i in n.input}
    out = next(n for n in gd.node if n.name not in read and n.op != "Const")
    # Keras applications end in a softmax: compare the logits before it.
    fetch = (out.input[0] if out.op == "Softmax" else out.name + ":0")
    shape = [d.size for d in next(n for n in gd.node if n.name == feed).attr["shape"].shape.dim][1:]
    calib = rng.uniform(0, 1, (32, *shape)).astype(np.float32)
    held = rng.uniform(0, 1, (32, *shape)).astype(np.float32)
    np.savez(OUT / "calib.npz", **{feed: calib})
    tool("tf-run", folded, "--calibrate", OUT / "calib.npz", "-o", ranges, "-q")
    t_full = median([tool("tf-quant", "int8", "--activations", ranges, folded, "-o", q8,
                          "--report", OUT / "report.json") for _ in range(3)])
    t_w = median([tool("tf-quant", "int8", folded, "-o", w8) for _ in range(3)])
    rep = json.loads((OUT / "report.json").read_text())["changes"]["quant"]["activations"]

    def session(path):
        g = tf.Graph()
        with g.as_default():
            tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(path.read_bytes()), name="")
        return tf.compat.v1.Session(graph=g)

    sf, sq = session(folded), session(q8)
    ref, got = sf.run(fetch, {feed + ":0": held}), sq.run(fetch, {feed + ":0": held})
    ref, got = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    top1 = float(np.mean(ref.argmax(1) == got.argmax(1)))
    tf_, tq = [], []
    for _ in range(int(os.environ.get("BENCH_INT8_ROUNDS", "5"))):
        for s, acc in ((sf, tf_), (sq, tq)):
            t = time.perf_counter()
            s.run(fetch, {feed + ":0": held})
            acc.append(time.perf_counter() - t)
    fps, qps = 32 / median(tf_), 32 / median(tq)
    print(f"| model | float img/s | int8 img/s | int8/float | cosine mean (min) | top-1 | "
          f"int8 kernels | stayed float | rewrite s (--activations / weight-only) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {MODEL.name} b32 | {fps:.1f} | {qps:.1f} | {qps / fps:.2f}x | {cos.mean():.4f} "
          f"({cos.min():.4f}) | {top1:.2f} | {len(rep['int8'])} (+{len(rep['int8_pools'])} pools) | "
          f"{len(rep['float'])} | {t_full:.2f} / {t_w:.2f} = {t_full / t_w:.2f}x |")
    for f in rep["float"][:10]:
        print(f"  float: {f['node']} ({f['op']}): {f['why']}", file=sys.stderr)


if __name__ == "__main__":
    main()
