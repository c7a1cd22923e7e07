#!/usr/bin/env python3
"""Benchmarks of the tf-* tools, whole process: wall time (median of N runs after a warm-up) and
peak RSS (from wait4). Writes a Markdown table into docs/benchmarks.md.

Usage: scripts/bench.py --bin target/release [--out docs/benchmarks.md] [--runs 5]
       scripts/bench.py --bin target/release --scaling-only [--timeout 120] [--out FILE]
       scripts/bench.py --bin target/release --pipes-only [--runs 5]
       scripts/bench.py --bin target/release --int8-only [--rounds 10] [--out docs/benchmarks.md]

Needs only the Python standard library to measure; the 300 MB input graph is made once by
`scripts/gen_fixtures.py --bench-out build/bench` (which needs the .venv with TensorFlow).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "build" / "bench"


TIME = Path("/usr/bin/time")


def run(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd; returns (wall seconds, peak RSS bytes).

    Linux keeps a process's peak RSS across fork and exec, so a child of this (large) Python
    process would report at least the parent's size. The peak is therefore taken by
    /usr/bin/time, a small intermediate process, when it exists.
    """
    rss_file = BENCH / ".maxrss"
    wrapped = [str(TIME), "-f", "%M", "-o", str(rss_file), *map(str, cmd)] if TIME.exists() else cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(wrapped, stdout=stdout, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(map(str, cmd))} failed ({code}): {err.strip()}")
    if TIME.exists():
        return wall, int(rss_file.read_text().split()[-1]) * 1024
    return wall, ru.ru_maxrss * 1024


def same_file(a, b):
    """Byte equality without reading either file into this process."""
    import filecmp
    return filecmp.cmp(a, b, shallow=False)


def measure(cmd, runs):
    run(cmd)  # warm-up: page cache, binary
    samples = [run(cmd) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def ensure_big_graph():
    big = BENCH / "bigmodel.pb"
    if not big.exists():
        venv_py = ROOT / ".venv" / "bin" / "python"
        subprocess.run([str(venv_py), str(ROOT / "scripts" / "gen_fixtures.py"),
                        "--bench-out", str(BENCH)], check=True)
    if not big.exists():
        sys.exit(f"bench: {big} was not generated")
    return big


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target" / "release"))
    ap.add_argument("--out", default=None, help="default: docs/benchmarks.md (not written by "
                    "--scaling-only unless given)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scaling-only", action="store_true",
                    help="only the scaling table, printed (and written to --out if given)")
    ap.add_argument("--pipes-only", action="store_true",
                    help="only the pipe table, printed (and written to --out if given)")
    ap.add_argument("--transform-only", action="store_true",
                    help="only the tf-transform vs pipe table on ResNet50, printed")
    ap.add_argument("--int8-only", action="store_true",
                    help="only the full-integer int8 table (TensorFlow in .venv, tf-run built), "
                    "printed; with --out, it replaces its section of that file")
    ap.add_argument("--rounds", type=int, default=10, help="rounds of the int8 table")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="per-run limit of the scaling table, in seconds")
    args = ap.parse_args()
    bin_dir = Path(args.bin)
    if args.transform_only:
        print("\n".join(transform_section(bin_dir, args.runs)))
        return
    if args.int8_only:
        lines = int8_section(bin_dir, args.rounds)
        if args.out:
            replace_section(Path(args.out), INT8_HEADING, lines)
        print("\n".join(lines))
        return
    if args.scaling_only:
        lines = scaling_section(bin_dir, args.timeout)
        if args.out:
            Path(args.out).write_text("\n".join(lines))
        print("\n".join(lines))
        return
    big = ensure_big_graph()
    size = big.stat().st_size
    out = BENCH / "out.pb"
    if args.pipes_only:
        lines = pipes_section(bin_dir, big, args.runs)
        if args.out:
            Path(args.out).write_text("\n".join(lines))
        print("\n".join(lines))
        return

    rows = []
    cp_wall, cp_rss = measure(["cp", str(big), str(out)], args.runs)
    rows.append(("`cp` (reference)", cp_wall, cp_rss, None))
    conv = measure([str(bin_dir / "tf-convert"), str(big), "-o", str(out)], args.runs)
    rows.append(("`tf-convert` pass-through, `-o` file", *conv, "≤ 2× cp, RSS ≤ 1.3× file"))
    with open(os.devnull, "wb") as devnull:
        pipe = measure([str(bin_dir / "tf-convert"), str(big)], args.runs)
    rows.append(("`tf-convert` pass-through, stdout → /dev/null", *pipe, None))
    insp = measure([str(bin_dir / "tf-inspect"), str(big)], args.runs)
    rows.append(("`tf-inspect`", *insp, "< 0.5 s"))
    same = same_file(out, big)
    out.unlink()

    mb = size / 1e6
    lines = [
        "# Benchmarks",
        "",
        "Reproduce with `make bench` (needs `.venv` for generating the input once). Whole-process",
        f"wall time, median of {args.runs} runs after a warm-up run (page cache warm), and peak RSS",
        "(`wait4` maxrss) of the largest run.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}.",
        "",
        "## Pass-through of a weight-heavy GraphDef",
        "",
        f"Input: `build/bench/bigmodel.pb`, {mb:.0f} MB (a frozen MLP of large dense layers "
        "made by `scripts/gen_fixtures.py --bench-out`).",
        f"tf-convert output byte-identical to the input: {'yes' if same else 'NO'}.",
        "",
        "| command | wall (s) | × cp | peak RSS (MB) | RSS / file | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, wall, rss, target in rows:
        lines.append(f"| {name} | {wall:.3f} | {wall / cp_wall:.2f} | {rss / 1e6:.0f} | "
                     f"{rss / size:.2f} | {target or ''} |")
    lines.append("")
    lines += strip_section(bin_dir, big, out, args.runs, cp_wall, conv[0], size)  # tf-strip
    lines += fold_section(bin_dir, args.runs)  # tf-fold
    lines += quant_section(bin_dir, big, out, args.runs, conv[0], size)  # tf-quant
    lines += transform_section(bin_dir, args.runs)  # tf-transform
    lines += freeze_section(bin_dir, args.runs)  # tf-freeze
    lines += pipes_section(bin_dir, big, args.runs)  # stdin/stdout
    lines += xla_section(bin_dir, args.runs)  # tf-xla-check
    lines += scaling_section(bin_dir, args.timeout)
    Path(args.out or ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines))
    print("\n".join(lines))


def replace_section(path, heading, lines):
    """Puts lines (starting with heading) in place of the section of path that starts with the
    same heading and runs to the next `## ` heading; appended when the file has none."""
    old = path.read_text().split("\n") if path.exists() else []
    if heading in old:
        start = old.index(heading)
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
        new = old[:start] + lines + old[end:]
    else:
        new = old + ([""] if old and old[-1] else []) + lines
    path.write_text("\n".join(new))


# ---- full-integer int8 ----------------------------------------------------------------------
# Float, weight-only int8 and full int8 (`tf-quant int8 --activations`) of the generated
# MobileNetV2, ResNet50 and transformer in TensorFlow 2.21 with oneDNN on: latency, throughput,
# size, rewrite time. Measured by scripts/bench_int8.py in .venv's Python (oneDNN on); the
# calibration runs in tf-run, which `make bench-int8` builds first.

INT8_HEADING = "## Full-integer int8 in TensorFlow (tf-quant int8 --activations)"


def int8_section(bin_dir, rounds):
    import json
    venv_py = ROOT / ".venv" / "bin" / "python"
    if not (Path(bin_dir) / "tf-run").exists():
        sys.exit(f"bench: {bin_dir}/tf-run is not built (make bench-int8 builds it)")
    env = dict(os.environ, TF_TOOLS_BIN=str(bin_dir), TF_ENABLE_ONEDNN_OPTS="1",
               TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([str(venv_py), str(ROOT / "scripts" / "bench_int8.py"), "--json",
                        "--rounds", str(rounds)], env=env, stdout=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"bench: scripts/bench_int8.py failed ({r.returncode})")
    doc = json.loads(r.stdout)
    lo, hi = doc["load_before"], doc["load_after"]
    return [
        INT8_HEADING,
        "",
        "Models: `build/models/{mobilenetv2,resnet50,transformer}` (`scripts/gen_models.py`, "
        "seeded random weights). *float*: `frozen.pb | tf-strip | tf-fold`; *weight-only int8*: "
        "`tf-quant int8` of that; *full int8*: `tf-run float.pb --calibrate` on "
        f"{doc['n_calib']} seeded samples (images in [0, 1), tokens in [0, 1000)), then "
        "`tf-quant int8 --activations`. Each graph runs in its own session of TensorFlow "
        f"{doc['tf']} (Python, `TF_ENABLE_ONEDNN_OPTS=1`; tf-run has no timing option): batch-1 "
        f"latency is the median of {doc['runs_b1'] * doc['rounds']} runs, batch-{doc['batch']} "
        f"throughput is {doc['batch']} / the median of {doc['rounds']} batches; in each of the "
        f"{doc['rounds']} rounds the three graphs take turns run by run, in an order rotated "
        "every round. Cosine (minimum) and top-1 agreement: the "
        f"{doc['batch']} held-out inputs of the batch runs against the float graph. Size: the "
        "GraphDef file. Rewrite: whole-process `tf-quant` on the float graph, wall and CPU time "
        f"(user + system), median of {doc['rewrites']} runs of each mode, the two alternating. "
        "Reproduce with `make bench-int8`.",
        "",
        f"**Shared machine**: {os.cpu_count()} cores shared with other jobs; load average "
        f"(1 min) {lo[0]:.1f} before and {hi[0]:.1f} after the run (5 min: {lo[1]:.1f} / "
        f"{hi[1]:.1f}). The times are upper bounds.",
        "",
        "The weight-only graph computes in float: Grappler folds its dequantization (`Cast → "
        "Mul`) into float constants when the session starts, and the kernels are float's. In "
        "TensorFlow 2.21 that folding is not free for MobileNetV2: in the optimized graph, 15 "
        "of its fused convolutions and matmuls get `is_filter_const=false` (their filters are "
        "folded after oneDNN's remapper looked at them; the float graph has `true` there), so "
        "oneDNN reorders those filters on every run instead of caching them, and the "
        "weight-only model runs slower than float. The transformer's MatMuls (its attention "
        "projections are Einsums, which stay float) have 64×128 weights, under "
        "`--min-matmul-weights` (512×512 by default): an int8 kernel and its QuantizeV2 are "
        "slower than float MatMul at that size ([int8-kernels.md]"
        "(int8-kernels.md#when-an-int8-matmul-pays-off)), so `--activations` leaves them float "
        "and its graph computes as the float one does. On MobileNetV2 and ResNet50 every "
        "convolution, the residual Adds and MobileNetV2's four `ZeroPadding2D`s are in int8 "
        "kernels; the QuantizeV2 left are at the input and after the global pool, and in "
        "ResNet50 after the stem's max pool, which reads a float zero pad that is not SAME's. "
        "The "
        "cosine and top-1 columns are no accuracy figures: with random weights, MobileNetV2 "
        "turns 1 % input noise into a cosine of 0.91 by itself, ResNet50's logits share one "
        "large component; the accuracy of full int8 on trained classifiers is measured in "
        "[tf-quant.md](tools/tf-quant.md#measured-tf-221-onednn-on).",
        "",
        *doc["markdown"],
        "",
    ]
# ---- end full-integer int8 ------------------------------------------------------------------


# ---- pipes ----------------------------------------------------------------------------
# A chain of stages through stdin/stdout against `cat | cat | cat` on the same file, and each
# stage's peak RSS when it reads a pipe.

def python_written(big):
    """The bench graph parsed and re-serialized by TensorFlow's Python protobuf (map entries
    in its order, not the canonical one): what users' scripts write."""
    py = BENCH / "bigmodel_py.pb"
    if not py.exists():
        code = ("import sys; from tensorflow.core.framework import graph_pb2; "
                "g = graph_pb2.GraphDef(); g.ParseFromString(open(sys.argv[1], 'rb').read()); "
                "open(sys.argv[2], 'wb').write(g.SerializeToString())")
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code, str(big), str(py)],
                       check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return py


def pipes_section(bin_dir, big, runs):
    out = BENCH / "out.pb"
    b = {t: str(bin_dir / t) for t in ("tf-strip", "tf-fold", "tf-quant")}
    graphs = [("generated (canonical bytes)", big), ("re-serialized by Python TF", python_written(big))]
    lines = [
        "## Pipes",
        "",
        "A chain of stages through stdin and stdout, against `cat < g | cat | cat > out` on the",
        "same file (whole shell pipeline, median of runs; peak RSS is the largest process of",
        "the pipeline).",
        "",
        "| input | command | wall (s) | × cat pipe | peak RSS (MB) | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for label, g in graphs:
        cat = measure(["sh", "-c", f"cat < '{g}' | cat | cat > '{out}'"], runs)
        three = measure(["sh", "-c", f"'{b['tf-strip']}' --outputs output < '{g}' 2>/dev/null | "
                         f"'{b['tf-fold']}' | '{b['tf-quant']}' int8 > '{out}'"], runs)
        lines.append(f"| {label} | `cat \\| cat \\| cat` | {cat[0]:.3f} | 1.00 | "
                     f"{cat[1] / 1e6:.0f} | |")
        lines.append(f"| {label} | `tf-strip \\| tf-fold \\| tf-quant int8` | {three[0]:.3f} | "
                     f"{three[0] / cat[0]:.2f} | {three[1] / 1e6:.0f} | ≤ 2× cat |")
    size = big.stat().st_size
    lines += [
        "",
        f"Each stage alone reading a pipe (`cat g | tool > out`), on the generated "
        f"{size / 1e6:.0f} MB graph; RSS of the tool alone:",
        "",
        "| stage | wall (s) | peak RSS (MB) | RSS / input | target |",
        "|---|---:|---:|---:|---|",
    ]
    stripped = BENCH / "stripped.pb"
    run([b["tf-strip"], "--outputs", "output", str(big), "-o", str(stripped)])
    rss_file = BENCH / ".stage_rss"
    for name, args, g in [("tf-strip --outputs output", [b["tf-strip"], "--outputs", "output"], big),
                          ("tf-fold", [b["tf-fold"]], stripped),
                          ("tf-quant int8", [b["tf-quant"], "int8"], stripped)]:
        tool = " ".join(f"'{a}'" for a in args)
        cmd = ["sh", "-c", f"cat '{g}' | {TIME} -f %M -o '{rss_file}' {tool} > '{out}' 2>/dev/null"]
        wall, _ = measure(cmd, runs)
        rss = int(rss_file.read_text().split()[-1]) * 1024
        in_size = g.stat().st_size
        lines.append(f"| `{name}` | {wall:.3f} | {rss / 1e6:.0f} | {rss / in_size:.2f} | ≤ 1.3× |")
    out.unlink(missing_ok=True)
    lines.append("")
    return lines


# ---- tf-strip ------------------------------------------------------------------------
# Stripping a frozen graph must stay within 1.5x of tf-convert's pass-through: Const payloads are
# never decoded or copied, and the output streams them from the input mapping.

def strip_section(bin_dir, big, out, runs, cp_wall, conv_wall, size):
    """Rows for tf-strip on the big graph; returns Markdown lines (empty if not built)."""
    tool = Path(bin_dir) / "tf-strip"
    if not tool.exists():
        return []
    wall, rss = measure([str(tool), str(big), "--outputs", "output", "-o", str(out)], runs)
    same = same_file(out, big)
    out.unlink()
    ratio = wall / conv_wall
    return [
        "## tf-strip on the same graph",
        "",
        "`tf-strip bigmodel.pb --outputs output -o out.pb`: nothing to strip (a frozen MLP whose "
        "output Identity is protected), so this measures the cost of the analysis and the "
        "rewrite machinery on top of decode and streamed encode. Output byte-identical to the "
        f"input: {'yes' if same else 'NO'}.",
        "",
        "| command | wall (s) | × cp | × tf-convert | peak RSS (MB) | RSS / file | target |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| `tf-strip --outputs output`, `-o` file | {wall:.3f} | {wall / cp_wall:.2f} | "
        f"{ratio:.2f} | {rss / 1e6:.0f} | {rss / size:.2f} | ≤ 1.5× tf-convert "
        f"({'met' if ratio <= 1.5 else 'MISSED'}) |",
        "",
    ]
# ---- end tf-strip ------------------------------------------------------------------------------


# ---- tf-fold ------------------------------------------------------------------------
# tf-fold on a ResNet50-sized frozen graph (random weights, build/models/resnet50/frozen.pb made
# by scripts/gen_models.py) against TensorFlow's own offline optimizer: Grappler with the
# constant folding, arithmetic, dependency and function optimizers, run by TF's Python API in a
# fresh process (whole process: interpreter start, `import tensorflow`, read, optimize, write).
# Goal: tf-fold >= 20x faster. The TF side runs in .venv's Python; this script stays stdlib-only.

FOLD_MODEL = ROOT / "build" / "models" / "resnet50" / "frozen.pb"

GRAPPLER_SCRIPT = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, rewriter_config_pb2
from tensorflow.python.grappler import tf_optimizer
src, dst, ofi = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
gd = tf.compat.v1.GraphDef()
gd.ParseFromString(open(src, "rb").read())
consumed = {i.lstrip("^").split(":")[0] for n in gd.node for i in n.input}
outputs = [n.name for n in gd.node if n.name not in consumed and n.op != "NoOp"]
inputs = [n.name for n in gd.node if n.op == "Placeholder"]
g = tf.Graph()
with g.as_default():
    tf.graph_util.import_graph_def(gd, name="")
    mg = tf.compat.v1.train.export_meta_graph(graph=g, graph_def=gd)
fetch = meta_graph_pb2.CollectionDef()
fetch.node_list.value.extend(outputs)
mg.collection_def["train_op"].CopyFrom(fetch)
cfg = config_pb2.ConfigProto()
rw = cfg.graph_options.rewrite_options
rw.optimizers.extend(["function", "constfold", "arithmetic", "dependency"])
rw.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.TWO
rw.min_graph_nodes = -1
out = tf_optimizer.OptimizeGraph(cfg, mg)
if ofi:
    from tensorflow.python.tools import optimize_for_inference_lib
    out = optimize_for_inference_lib.optimize_for_inference(
        out, inputs, outputs, [tf.float32.as_datatype_enum] * len(inputs))
open(dst, "wb").write(out.SerializeToString())
print(len(gd.node), len(out.node))
"""


def fold_section(bin_dir, runs):
    """Rows for tf-fold vs Grappler on the ResNet50 frozen graph (empty if not built)."""
    tool = Path(bin_dir) / "tf-fold"
    venv_py = ROOT / ".venv" / "bin" / "python"
    if not tool.exists() or not venv_py.exists():
        return []
    if not FOLD_MODEL.exists():
        subprocess.run([str(venv_py), str(ROOT / "scripts" / "gen_models.py"), "resnet50"],
                       check=True)
    out = BENCH / "folded.pb"
    ref = BENCH / "grappler.pb"
    BENCH.mkdir(parents=True, exist_ok=True)
    size = FOLD_MODEL.stat().st_size
    report = BENCH / "fold.json"
    fold = measure([str(tool), str(FOLD_MODEL), "-o", str(out), "--report", str(report)], runs)
    import json
    rep = json.loads(report.read_text())["changes"]["fold"]
    rows = []
    counts = {}
    for label, ofi in (("Grappler (constfold, arithmetic, dependency, function)", "0"),
                       ("Grappler + `optimize_for_inference`", "1")):
        cmd = [str(venv_py), "-c", GRAPPLER_SCRIPT, str(FOLD_MODEL), str(ref), ofi]
        wall, rss = measure(cmd, max(1, min(runs, 3)))
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        counts[label] = int(r.stdout.split()[-1])
        rows.append((label, wall, rss))
    out.unlink(missing_ok=True)
    ref.unlink(missing_ok=True)
    grappler_wall = rows[0][1]
    speedup = grappler_wall / fold[0]
    lines = [
        "## tf-fold on a ResNet50 frozen graph",
        "",
        f"Input: `build/models/resnet50/frozen.pb`, {size / 1e6:.0f} MB, {rep['nodes_before']} "
        "nodes (tf_keras ResNet50, random weights, frozen by `convert_variables_to_constants_v2`;"
        " made by `scripts/gen_models.py`). TensorFlow runs in a fresh Python process each time "
        "(interpreter, `import tensorflow`, optimize, write): that is what using its optimizer "
        "offline costs.",
        "",
        "| command | wall (s) | peak RSS (MB) | nodes out | × tf-fold |",
        "|---|---:|---:|---:|---:|",
        f"| `tf-fold frozen.pb -o out.pb` | {fold[0]:.3f} | {fold[1] / 1e6:.0f} | "
        f"{rep['nodes_after']} | 1 |",
    ]
    for label, wall, rss in rows:
        lines.append(f"| {label} | {wall:.3f} | {rss / 1e6:.0f} | {counts[label]} | "
                     f"{wall / fold[0]:.1f} |")
    lines += [
        "",
        f"tf-fold is {speedup:.1f}× faster than Grappler alone (goal ≥ 20×: "
        f"{'met' if speedup >= 20 else 'MISSED'}), and leaves {rep['nodes_after']} nodes "
        f"(batch norms folded into the convolutions, which Grappler alone does not do).",
        "",
    ]
    return lines
# ---- end tf-fold -------------------------------------------------------------------------------


# ---- tf-transform --------------------------------------------------------------------
# GTT's five-transform string must cost at most 1.2x the equivalent pipe of our filters: the
# fold transforms run as one tf-fold call and nothing is encoded between the stages.

TRANSFORMS = ("strip_unused_nodes fold_constants(ignore_errors=true) fold_batch_norms "
              "fold_old_batch_norms quantize_weights")


def transform_section(bin_dir, runs):
    """tf-transform with the five-transform string vs tf-strip | tf-fold | tf-quant uint8."""
    tool = Path(bin_dir) / "tf-transform"
    if not tool.exists() or not FOLD_MODEL.exists():
        return []
    BENCH.mkdir(parents=True, exist_ok=True)
    one, piped = BENCH / "transform.pb", BENCH / "pipe.pb"
    b = Path(bin_dir)
    pipe_cmd = ["sh", "-c", f'"{b}/tf-strip" "{FOLD_MODEL}" | "{b}/tf-fold" | '
                f'"{b}/tf-quant" uint8 -o "{piped}"']
    t = measure([str(tool), str(FOLD_MODEL), "--transforms", TRANSFORMS, "-q", "-o", str(one)],
                runs)
    p = measure(pipe_cmd, runs)
    same = same_file(one, piped)
    one.unlink()
    piped.unlink()
    ratio = t[0] / p[0]
    return [
        "## tf-transform on a ResNet50 frozen graph",
        "",
        f"Input: `build/models/resnet50/frozen.pb`. `--transforms '{TRANSFORMS}'` against the "
        "pipe `tf-strip | tf-fold | tf-quant uint8` (peak RSS: the largest process of the pipe "
        "is not measured by the shell wrapper).",
        "",
        "| command | wall (s) | × pipe |",
        "|---|---:|---:|",
        f"| `tf-transform` (one process) | {t[0]:.3f} | {ratio:.2f} |",
        f"| `tf-strip \\| tf-fold \\| tf-quant uint8` | {p[0]:.3f} | 1 |",
        "",
        f"Same output bytes: {'yes' if same else 'NO'}. Goal ≤ 1.2× the pipe: "
        f"{'met' if ratio <= 1.2 else 'MISSED'}.",
        "",
    ]
# ---- end tf-transform ---------------------------------------------------------------------


# ---- tf-quant ------------------------------------------------------------------------
# Quantizing to int8 may cost at most 1 s per GB of float weights beyond tf-convert's pass-through:
# the float values are read straight from the input mapping (no decoded copy), the int8 payloads
# are written into one buffer the output streams from, and tensors are spread over the cores.

def quant_section(bin_dir, big, out, runs, conv_wall, size):
    """Rows for tf-quant int8 on the big graph; returns Markdown lines (empty if not built)."""
    import json
    tool = Path(bin_dir) / "tf-quant"
    if not tool.exists():
        return []
    report = out.with_suffix(".json")
    run([str(tool), "int8", str(big), "-o", str(out), "--report", str(report)])
    rep = json.loads(report.read_text())
    report.unlink()
    totals = rep["changes"]["quant"]["totals"]
    weights = totals["bytes_before"]
    wall, rss = measure([str(tool), "int8", str(big), "-o", str(out)], runs)
    out_size = out.stat().st_size
    out.unlink()
    extra = wall - conv_wall
    per_gb = extra / (weights / 1e9)
    return [
        "## tf-quant int8 on the same graph",
        "",
        f"`tf-quant int8 bigmodel.pb -o out.pb`: {totals['tensors']} weight tensors, "
        f"{weights / 1e6:.0f} MB of float32 quantized per output channel (SNR "
        f"{totals['snr_db']:.1f} dB); output {out_size / 1e6:.0f} MB "
        f"({out_size / size:.3f}× the input). The extra time over `tf-convert`'s pass-through "
        "is the quantization itself (max |w| per channel, then codes and error statistics), "
        "spread over the cores.",
        "",
        "| command | wall (s) | × tf-convert | extra over tf-convert (s) | s per GB of weights "
        "| peak RSS (MB) | RSS / file | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| `tf-quant int8`, `-o` file | {wall:.3f} | {wall / conv_wall:.2f} | {extra:.3f} | "
        f"{per_gb:.2f} | {rss / 1e6:.0f} | {rss / size:.2f} | ≤ 1 s per GB beyond pass-through "
        f"({'met' if per_gb <= 1.0 else 'MISSED'}) |",
        "",
    ]
# ---- end tf-quant ------------------------------------------------------------------------------


# ---- tf-xla-check ------------------------------------------------------------------------
# A 10,000-node graph is checked in under 100 ms (whole process). The graph is written here with
# a hand-rolled protobuf encoder (stdlib only): a placeholder feeding 10,000 elementwise ops in
# 100 chains, with a string detour (AsString -> StringToNumber) in every tenth chain so that the
# check has findings and several clusters to form.

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _node(name, op, inputs, type_attrs):
    body = _field(1, name.encode()) + _field(2, op.encode())
    for i in inputs:
        body += _field(3, i.encode())
    for key, dtype in sorted(type_attrs.items()):
        attr_value = _varint(6 << 3) + _varint(dtype)  # AttrValue.type
        body += _field(5, _field(1, key.encode()) + _field(2, attr_value))
    return _field(1, body)  # GraphDef.node


def xla_graph(path, nodes=10_000, chains=100):
    f32, string = 1, 7
    parts = [_node("x", "Placeholder", [], {"dtype": f32})]
    per_chain = nodes // chains
    ops = ["Relu", "Tanh", "Sigmoid", "Neg", "Abs"]
    count = 1
    for c in range(chains):
        prev = "x"
        for k in range(per_chain):
            name = f"c{c}/n{k}"
            if c % 10 == 0 and k == per_chain // 2:
                parts.append(_node(name, "AsString", [prev], {"T": f32}))
                op, attrs = "StringToNumber", {"out_type": f32}
                name, prev = f"c{c}/n{k}b", name
                parts.append(_node(name, op, [prev], attrs))
                count += 2
            else:
                parts.append(_node(name, ops[k % len(ops)], [prev], {"T": f32}))
                count += 1
            prev = name
    path.write_bytes(b"".join(parts))
    return count


def xla_section(bin_dir, runs):
    tool = Path(bin_dir) / "tf-xla-check"
    if not tool.exists():
        return []
    BENCH.mkdir(parents=True, exist_ok=True)
    graph = BENCH / "xla_10k.pb"
    count = xla_graph(graph)
    # stdout goes to /dev/null through measure(); never `-o /dev/null` (an atomic rename there
    # would replace the device node with a regular file).
    wall, rss = measure([str(tool), str(graph), "--exit-zero", "-q"], runs)
    return [
        "## tf-xla-check",
        "",
        f"Input: `build/bench/xla_10k.pb`, {count} nodes in 100 chains (10 with a string detour "
        "that does not compile), written by `scripts/bench.py` itself. Whole process: read, "
        "check every node, find clusters, write the graph through.",
        "",
        "| command | wall (ms) | peak RSS (MB) | target |",
        "|---|---:|---:|---|",
        f"| `tf-xla-check` | {wall * 1e3:.1f} | {rss / 1e6:.0f} | < 100 ms |",
        "",
    ]
# ---- end tf-xla-check --------------------------------------------------------------------------



# ---- tf-freeze ------------------------------------------------------------------------
# tf-freeze against TensorFlow's own freezer (convert_variables_to_constants_v2), whole process,
# Python import included, on a ResNet50-sized SavedModel made by scripts/gen_models.py.

TF_FREEZE = """
import sys
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
model = tf.saved_model.load(sys.argv[1])  # keeps the variables alive
fn = model.signatures["serving_default"]
g = convert_variables_to_constants_v2(fn).graph.as_graph_def()
open(sys.argv[2], "wb").write(g.SerializeToString())
"""


def freeze_section(bin_dir, runs):
    tool = Path(bin_dir) / "tf-freeze"
    model = ROOT / "build" / "models" / "resnet50" / "saved_model"
    venv_py = ROOT / ".venv" / "bin" / "python"
    if not tool.exists():
        return []
    if not model.exists():
        subprocess.run([str(venv_py), str(ROOT / "scripts" / "gen_models.py"), "resnet50"],
                       check=True)
    variables = sum(p.stat().st_size for p in (model / "variables").glob("variables.data-*"))
    out = BENCH / "freeze_out.pb"
    ours = measure([str(tool), str(model), "-o", str(out)], runs)
    script = BENCH / "tf_freeze.py"
    script.write_text(TF_FREEZE)
    env_runs = max(1, min(runs, 3))
    theirs = measure([str(venv_py), str(script), str(model), str(out)], env_runs)
    out.unlink(missing_ok=True)
    return [
        "## tf-freeze vs TensorFlow's freezer",
        "",
        f"Input: `build/models/resnet50/saved_model` (tf_keras ResNet50, random weights, "
        f"{variables / 1e6:.0f} MB of variables), made by `scripts/gen_models.py`. TensorFlow: "
        "`convert_variables_to_constants_v2` on the serving signature, in a fresh Python process "
        f"(import included; median of {env_runs}).",
        "",
        "| command | wall (s) | peak RSS (MB) | RSS / variables | target |",
        "|---|---:|---:|---:|---|",
        f"| `tf-freeze` | {ours[0]:.3f} | {ours[1] / 1e6:.0f} | {ours[1] / variables:.2f} | "
        "RSS ≤ 1.5× variables |",
        f"| TensorFlow (Python) | {theirs[0]:.3f} | {theirs[1] / 1e6:.0f} | "
        f"{theirs[1] / variables:.2f} | |",
        "",
        f"tf-freeze is **{theirs[0] / ours[0]:.0f}×** faster (goal ≥ 20×).",
        "",
    ]


# ---- scaling: every tool on large generated graphs -----------------------------------------------
# Whole-process wall time of each tool on graphs of 10k, 50k and 100k nodes (and functions nested
# 1k, 2.5k and 5k deep), written with the stdlib protobuf encoder above. A linear tool doubles from
# 50k to 100k; the last column is that ratio. tf-convert (decode + encode) is the reference.

SCALING = BENCH / "scaling"
SCALING_SIZES = (10_000, 50_000, 100_000)
FUNCTION_DEPTHS = (2_500, 5_000, 10_000)
F32 = 1


def _attr(key, attr_value):
    return _field(5, _field(1, key.encode()) + _field(2, attr_value))


def _type_attr(dtype):
    return _varint(6 << 3) + _varint(dtype)


def _node_attrs(name, op, inputs, attrs):
    """A NodeDef (field 1 of GraphDef) with already encoded AttrValues."""
    body = _field(1, name.encode()) + _field(2, op.encode())
    for i in inputs:
        body += _field(3, i.encode())
    for key in sorted(attrs):
        body += _attr(key, attrs[key])
    return body


def _scalar_f32(value):
    """AttrValue.tensor: a float32 scalar."""
    import struct
    tensor = _varint(1 << 3) + _varint(F32) + _field(2, b"") + _varint(5 << 3 | 5) + \
        struct.pack("<f", value)
    return _field(8, tensor)


def _shape_attr(dims):
    return _field(7, b"".join(_field(2, _varint(1 << 3) + _varint(d)) for d in dims))


def _graph(nodes, library=b""):
    versions = _field(4, _varint(1 << 3) + _varint(1994))  # producer
    return b"".join(_field(1, n) for n in nodes) + (_field(2, library) if library else b"") + \
        versions


def _placeholder():
    return _node_attrs("x", "Placeholder", [], {"dtype": _type_attr(F32),
                                                "shape": _shape_attr([1, 8])})


def gen_identity_chain(n):
    nodes = [_placeholder()]
    prev = "x"
    for k in range(n - 1):
        nodes.append(_node_attrs(f"id{k}", "Identity", [prev], {"T": _type_attr(F32)}))
        prev = f"id{k}"
    return _graph(nodes)


def gen_mul_relu_chain(n):
    """x -> (Mul by the variable v, Relu) repeated; v is a VariableV2 (frozen by tf-freeze)."""
    nodes = [_placeholder(),
             _node_attrs("v", "VariableV2", [], {"dtype": _type_attr(F32), "shape": _shape_attr([]),
                                                 "container": _field(2, b""),
                                                 "shared_name": _field(2, b"")}),
             _node_attrs("v/read", "Identity", ["v"], {"T": _type_attr(F32)})]
    prev = "x"
    for k in range((n - 3) // 2):
        nodes.append(_node_attrs(f"mul{k}", "Mul", [prev, "v/read"], {"T": _type_attr(F32)}))
        nodes.append(_node_attrs(f"relu{k}", "Relu", [f"mul{k}"], {"T": _type_attr(F32)}))
        prev = f"relu{k}"
    return _graph(nodes)


def gen_fanout(n):
    """One placeholder read by n-1 Relu nodes: every one is an output."""
    nodes = [_placeholder()]
    nodes += [_node_attrs(f"r{k}", "Relu", ["x"], {"T": _type_attr(F32)}) for k in range(n - 1)]
    return _graph(nodes)


def gen_control_chain(n):
    """Relu nodes of x, each ordered after the previous by a control edge."""
    nodes = [_placeholder(), _node_attrs("r0", "Relu", ["x"], {"T": _type_attr(F32)})]
    for k in range(1, n - 1):
        nodes.append(_node_attrs(f"r{k}", "Relu", ["x", f"^r{k - 1}"], {"T": _type_attr(F32)}))
    return _graph(nodes)


def gen_nested_functions(depth):
    """f0(x) = Identity(x); fk(x) = f{k-1}(x); the graph calls f{depth-1} by PartitionedCall."""
    def arg(name):
        return _field(1, name.encode()) + _varint(3 << 3) + _varint(F32)

    funcs = []
    for k in range(depth):
        sig = _field(1, f"f{k}".encode()) + _field(2, arg("x")) + _field(3, arg("y"))
        if k == 0:
            body = _node_attrs("id", "Identity", ["x"], {"T": _type_attr(F32)})
            ret = "id:output:0"
        else:
            body = _node_attrs("call", f"f{k - 1}", ["x"], {})
            ret = "call:y:0"
        fdef = _field(1, sig) + _field(3, body) + \
            _field(4, _field(1, b"y") + _field(2, ret.encode()))
        funcs.append(_field(1, fdef))
    types = _field(1, _varint(6 << 3 | 2) + _varint(1) + _varint(F32))  # list { type: [F32] }
    call = _node_attrs("out", "PartitionedCall", ["x"], {
        "Tin": types, "Tout": types,
        "f": _field(10, _field(1, f"f{depth - 1}".encode())),
    })
    return _graph([_placeholder(), call], b"".join(funcs))


SCALING_KINDS = [
    ("Identity chain", gen_identity_chain, SCALING_SIZES),
    ("Mul/Relu chain (one variable)", gen_mul_relu_chain, SCALING_SIZES),
    ("wide fan-out", gen_fanout, SCALING_SIZES),
    ("control-edge chain", gen_control_chain, SCALING_SIZES),
    ("nested function calls (depth)", gen_nested_functions, FUNCTION_DEPTHS),
]

SCALING_TOOLS = [
    ("tf-convert", []),
    ("tf-inspect", []),
    ("tf-strip", []),
    ("tf-fold", []),
    ("tf-quant", ["int8"]),
    ("tf-prune", ["--sparsity", "0.5"]),
    ("tf-xla-check", ["--exit-zero", "-q"]),
    ("tf-freeze", None),  # only where there is a variable: see scaling_cmd
]

FREEZE_CKPT_SCRIPT = r"""
import sys
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
v = tf.compat.v1.Variable(0.5, name="v")
with tf.compat.v1.Session() as s:
    s.run(v.initializer)
    tf.compat.v1.train.Saver({"v": v}).save(s, sys.argv[1], write_meta_graph=False)
"""


def scaling_checkpoint():
    """A TF1 checkpoint holding the float scalar `v`, made once with TensorFlow (None without)."""
    prefix = SCALING / "v.ckpt"
    if not (SCALING / "v.ckpt.index").exists():
        venv_py = ROOT / ".venv" / "bin" / "python"
        if not venv_py.exists():
            return None
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([str(venv_py), "-c", FREEZE_CKPT_SCRIPT, str(prefix)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return prefix


def scaling_cmd(bin_dir, tool, args, graph, kind, ckpt):
    if tool == "tf-freeze":
        if not kind.startswith(("Mul/Relu", "nested")) or ckpt is None:
            return None
        return [str(bin_dir / tool), str(ckpt), "--graph", str(graph)]
    if tool == "tf-quant":
        return [str(bin_dir / tool), *args, str(graph)]  # the mode comes first
    return [str(bin_dir / tool), str(graph), *args]


def timed(cmd, timeout):
    """(CPU seconds or None, note): one whole-process run, stdout discarded. CPU time (user +
    system, from wait4) rather than wall time: on a shared machine it depends far less on what
    else runs."""
    import threading
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    err = p.stderr.read()
    p.stderr.close()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    killed = not timer.is_alive()
    timer.cancel()
    if killed:
        return None, "timeout"
    if p.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        first = next((ln.strip() for ln in lines if ln.strip()), "")
        code = p.returncode
        what = f"exit {code}" if code > 0 else f"crash (signal {-code})"
        return None, what + (f": {first[:100]}" if first else "")
    return ru.ru_utime + ru.ru_stime, ""


def scaling_section(bin_dir, timeout, runs=3):
    """The scaling table (Markdown lines): every tool on every generated graph and size."""
    bin_dir = Path(bin_dir)
    SCALING.mkdir(parents=True, exist_ok=True)
    ckpt = scaling_checkpoint()
    notes = []
    lines = [
        "## Scaling with graph size",
        "",
        "Whole-process CPU time (user + system, s, best of "
        f"{runs}; CPU time because the machine is shared, and it depends far less on load than "
        "wall time) of each tool on graphs written by `scripts/bench.py` (no weights: this "
        "measures the per-node work). A linear tool takes about 2× as long on 100k nodes as on "
        "50k: the last column is that ratio (for the nested functions, 10k over 5k deep). "
        f"Each run is stopped after {timeout:.0f} s (\"timeout\"; larger sizes are then skipped). "
        "tf-convert (decode and encode) is the reference; tf-freeze runs on the Mul/Relu chain with "
        "a one-variable checkpoint (and on the nested calls, which it inlines, with the same checkpoint). Produce this table alone with "
        "`scripts/bench.py --scaling-only` (or `make bench-scaling`).",
        "",
    ]
    for kind, gen, sizes in SCALING_KINDS:
        graphs = []
        for n in sizes:
            path = SCALING / f"{gen.__name__[4:]}_{n}.pb"
            if not path.exists():
                path.write_bytes(gen(n))
            graphs.append(path)
        head = " | ".join(f"{n // 1000 if n % 1000 == 0 else n / 1000}k" for n in sizes)
        lines += [f"### {kind}", "",
                  f"| tool | {head} | × tf-convert ({sizes[-1] // 1000}k) | "
                  f"{sizes[-1] // 1000}k / {sizes[-2] / 1000:g}k |",
                  "|---|" + "---:|" * (len(sizes) + 2)]
        ref = None
        for tool, args in SCALING_TOOLS:
            if not (bin_dir / tool).exists():
                continue
            cells, walls, skip = [], [], False
            for graph in graphs:
                cmd = scaling_cmd(bin_dir, tool, args, graph, kind, ckpt)
                if cmd is None:
                    cells.append("n/a")
                    walls.append(None)
                    continue
                if skip:
                    cells.append("skipped")
                    walls.append(None)
                    continue
                best, note = None, ""
                for _ in range(runs):
                    wall, note = timed(cmd, timeout)
                    if wall is None:
                        break
                    best = wall if best is None else min(best, wall)
                if best is None:
                    skip = note == "timeout"
                    cells.append(note.split(":")[0])
                    if note != "timeout":
                        notes.append(f"{tool} on {graph.name}: {note}")
                    walls.append(None)
                else:
                    cells.append(f"{best:.3f}")
                    walls.append(best)
                print(f"scaling: {kind}, {tool}, {graph.name}: {cells[-1]}", file=sys.stderr)
            if tool == "tf-convert":
                ref = walls[-1]
            vs = f"{walls[-1] / ref:.1f}" if walls[-1] and ref else ""
            growth = f"{walls[-1] / walls[-2]:.1f}" if walls[-1] and walls[-2] else ""
            lines.append(f"| `{tool}` | " + " | ".join(cells) + f" | {vs} | {growth} |")
        lines.append("")
    if notes:
        lines += ["Failures:", ""] + [f"- {n}" for n in notes] + [""]
    return lines
# ---- end scaling ---------------------------------------------------------------------------------


if __name__ == "__main__":
    main()
