#!/usr/bin/env python3
"""Benchmarks of the tf-* tools, whole process: wall time (median of N runs after a warm-up) and
peak RSS (from wait4). Writes a Markdown table into docs/benchmarks.md.

Usage: scripts/bench.py --bin target/release [--out docs/benchmarks.md] [--runs 5]

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
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    bin_dir = Path(args.bin)
    big = ensure_big_graph()
    size = big.stat().st_size
    out = BENCH / "out.pb"

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
        "## Pass-through of a weight-heavy GraphDef (issue 2)",
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
    lines += freeze_section(bin_dir, args.runs)  # tf-freeze
    lines += xla_section(bin_dir, args.runs)  # tf-xla-check
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


# ---- tf-strip (issue 4) ------------------------------------------------------------------------
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
        "## tf-strip on the same graph (issue 4)",
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


# ---- tf-fold (issue 5) -------------------------------------------------------------------------
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
        "## tf-fold on a ResNet50 frozen graph (issue 5)",
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


# ---- tf-quant (issue 6) ------------------------------------------------------------------------
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
        "## tf-quant int8 on the same graph (issue 6)",
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


# ---- tf-xla-check (issue 8) --------------------------------------------------------------------
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
        "## tf-xla-check (issue 8)",
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



# ---- tf-freeze (issue 3) -----------------------------------------------------------------------
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
        "## tf-freeze vs TensorFlow's freezer (issue 3)",
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


if __name__ == "__main__":
    main()
