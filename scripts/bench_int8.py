#!/usr/bin/env python3
"""Full-int8 against float on ResNet50 (build/models, seeded random weights) in TF 2.21 on CPU.

    TF_TOOLS_BIN=target/release LD_LIBRARY_PATH=build/tflib .venv/bin/python scripts/bench_int8.py

Steps: tf-fold (batch norms into the convolutions) -> tf-run --calibrate on 32 seeded samples ->
tf-quant int8 --activations, and the same with --legacy-gtt (the Graph Transform Tool's
quantize_nodes graph, frozen ranges); then, with oneDNN on (which the int8 kernels need),
batch-32 throughput of the folded float graph, the int8 graph and the legacy graph (median of
runs, the three interleaved), the logits cosine on 32 held-out samples, and the rewrite time of
`tf-quant int8 --activations` against weight-only `tf-quant int8` on the same graph (median of
3). Prints markdown tables. The machine's load changes absolute figures: read the ratios.
BENCH_INT8_LEGACY=0 leaves the legacy graph out (it is several times slower than float).
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
    # Keras applications end in a softmax (behind the output's Identity): compare the logits
    # before it, not the saturated probabilities.
    by_name = {n.name: n for n in gd.node}
    while out.op == "Identity" and out.input[0].split(":")[0] in by_name:
        out = by_name[out.input[0].split(":")[0]]
    fetch = out.input[0] if out.op == "Softmax" else out.name + ":0"
    fetch = fetch if ":" in fetch else fetch + ":0"
    shape = [d.size for d in next(n for n in gd.node if n.name == feed).attr["shape"].shape.dim][1:]
    calib = rng.uniform(0, 1, (32, *shape)).astype(np.float32)
    held = rng.uniform(0, 1, (32, *shape)).astype(np.float32)
    np.savez(OUT / "calib.npz", **{feed: calib})
    tool("tf-run", folded, "--calibrate", OUT / "calib.npz", "-o", ranges, "-q")
    t_full = median([tool("tf-quant", "int8", "--activations", ranges, folded, "-o", q8,
                          "--report", OUT / "report.json") for _ in range(3)])
    t_w = median([tool("tf-quant", "int8", folded, "-o", w8) for _ in range(3)])
    rep = json.loads((OUT / "report.json").read_text())["changes"]["quant"]["activations"]
    legacy = os.environ.get("BENCH_INT8_LEGACY", "1") != "0"
    if legacy:
        tool("tf-quant", "int8", "--activations", ranges, "--legacy-gtt", folded,
             "-o", OUT / "legacy_gtt.pb", "--report", OUT / "legacy_report.json")
        lrep = json.loads((OUT / "legacy_report.json").read_text())["changes"]["quant"]["activations"]

    def session(path):
        g = tf.Graph()
        with g.as_default():
            tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(path.read_bytes()), name="")
        return tf.compat.v1.Session(graph=g)

    def cosine(ref, got):
        ref, got = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
        cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
        return cos, float(np.mean(ref.argmax(1) == got.argmax(1))), float(np.abs(ref - got).max())

    sf, sq = session(folded), session(q8)
    ref = sf.run(fetch, {feed + ":0": held})
    cos, top1, _ = cosine(ref, sq.run(fetch, {feed + ":0": held}))
    runs = [(sf, []), (sq, [])]
    if legacy:
        sl = session(OUT / "legacy_gtt.pb")
        lcos, ltop1, lerr = cosine(ref, sl.run(fetch, {feed + ":0": held}))
        runs.append((sl, []))
    for _ in range(int(os.environ.get("BENCH_INT8_ROUNDS", "5"))):
        for s, acc in runs:
            t = time.perf_counter()
            s.run(fetch, {feed + ":0": held})
            acc.append(time.perf_counter() - t)
    fps, qps = 32 / median(runs[0][1]), 32 / median(runs[1][1])
    print(f"| model | float img/s | int8 img/s | int8/float | cosine mean (min) | top-1 | "
          f"int8 kernels | stayed float | rewrite s (--activations / weight-only) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {MODEL.name} b32 | {fps:.1f} | {qps:.1f} | {qps / fps:.2f}x | {cos.mean():.4f} "
          f"({cos.min():.4f}) | {top1:.2f} | {len(rep['int8'])} (+{len(rep['int8_pools'])} pools) | "
          f"{len(rep['float'])} | {t_full:.2f} / {t_w:.2f} = {t_full / t_w:.2f}x |")
    if legacy:
        lps = 32 / median(runs[2][1])
        print()
        print("| model | float img/s | --activations img/s | --legacy-gtt img/s | legacy/float | "
              "legacy/--activations | legacy cosine mean (min) | top-1 | max abs err | "
              "eight-bit chains | stayed float |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {MODEL.name} b32 | {fps:.2f} | {qps:.2f} | {lps:.2f} | {lps / fps:.2f}x | "
              f"{lps / qps:.2f}x | {lcos.mean():.4f} ({lcos.min():.4f}) | {ltop1:.2f} | {lerr:.3g} | "
              f"{len(lrep['int8'])} (+{len(lrep['int8_pools'])} pools) | {len(lrep['float'])} |")
        print("legacy eight-bit ops:", json.dumps(lrep["eight_bit_ops"]))
        print("seconds per batch (float, --activations, --legacy-gtt):",
              [[round(t, 2) for t in acc] for _, acc in runs])
    for f in rep["float"][:10]:
        print(f"  float: {f['node']} ({f['op']}): {f['why']}", file=sys.stderr)


if __name__ == "__main__":
    main()
