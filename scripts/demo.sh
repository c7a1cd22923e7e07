#!/usr/bin/env bash
# make demo: run the pipeline on the bundled sample model (a Keras CNN SavedModel made by TF 2.21,
# tests/fixtures/keras_cnn_savedmodel) and print a before/after summary. Needs no TensorFlow.
set -euo pipefail
BIN="${1:-target/release}"
MODEL=tests/fixtures/keras_cnn_savedmodel/saved_model
OUT=build/demo
mkdir -p "$OUT"

stages=(tf-freeze)
pipeline="$BIN/tf-freeze $MODEL"
for tool in tf-strip tf-fold tf-quant; do
    if [ -x "$BIN/$tool" ]; then
        stages+=("$tool")
        case $tool in
            tf-quant) pipeline="$pipeline | $BIN/$tool int8 --min-elements 16" ;;
            *) pipeline="$pipeline | $BIN/$tool" ;;
        esac
    fi
done

echo "== the sample model: $MODEL"
"$BIN/tf-inspect" "$MODEL" --top 8
echo
echo "== pipeline: $(IFS="|"; echo "${stages[*]}" | sed "s/|/ | /g")"
echo "   $pipeline > $OUT/model.pb"
eval "$pipeline > $OUT/model.pb"
"$BIN/tf-convert" "$OUT/model.pb" --text -o "$OUT/model.pbtxt"
echo
"$BIN/tf-inspect" "$MODEL" --json > "$OUT/before.json"
"$BIN/tf-inspect" "$OUT/model.pb" --json > "$OUT/after.json"
python3 - "$OUT/before.json" "$OUT/after.json" <<'PY'
import json, sys
b, a = (json.load(open(p)) for p in sys.argv[1:3])
def row(name, x, y):
    print(f"  {name:<20} {str(x):<36} {str(y)}")
row("", "before", "after")
row("format", b["format"], a["format"])
row("bytes", b["bytes"], a["bytes"])
row("nodes", b["nodes"], a["nodes"])
row("functions", len(b["functions"]), len(a["functions"]))
row("nodes in functions", sum(b["function_ops"].values()), sum(a["function_ops"].values()))
row("variables", len(b["variables"]), len(a["variables"]))
row("float parameters", b["float_parameters"], a["float_parameters"])
row("inputs", ",".join(t["name"] for t in b["inputs"]), ",".join(t["name"] for t in a["inputs"]))
row("outputs", ",".join(t["name"] for t in b["outputs"]), ",".join(t["name"] for t in a["outputs"]))
PY
echo
echo "wrote $OUT/model.pb and $OUT/model.pbtxt"
