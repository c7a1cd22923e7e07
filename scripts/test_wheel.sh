#!/usr/bin/env bash
# make test-wheel: the pip wheel and `cargo install`, as a user without Rust or TensorFlow gets them.
#   1. build the wheel with maturin (from build/wheel-venv, pinned in scripts/requirements-wheel.txt)
#   2. install it into a fresh venv and, with a PATH that has no cargo/rustc and a venv with no
#      TensorFlow, run --version and --help of every tool and the README pipeline
#   3. the Python helper module (tf_tools.run) on TensorFlow's own GraphDef (tests/wheel)
#   4. cargo install --path . into a temporary root (reusing target/ so it costs a link)
# Usage: scripts/test_wheel.sh WHEEL_VENV TF_VENV
set -euo pipefail
WV="$1"            # venv with maturin + auditwheel
TFV="$2"           # the TensorFlow venv (.venv), for the GraphDef round trip of the helper
ROOT="$(pwd)"
WORK="$ROOT/build/wheel-test"
rm -rf "$WORK" build/wheels
mkdir -p "$WORK"

echo "== maturin build (release profile, stripped)"
"$WV/bin/maturin" build --release --locked --out build/wheels > "$WORK/maturin.log" 2>&1 \
    || { cat "$WORK/maturin.log"; exit 1; }
WHEEL=$(ls build/wheels/tf_tools-*.whl)
"$WV/bin/auditwheel" show "$WHEEL" | grep 'is consistent with' >/dev/null || { echo "auditwheel: $WHEEL is not manylinux-consistent"; exit 1; }
echo "   $(basename "$WHEEL"): $(stat -c %s "$WHEEL") bytes"

echo "== fresh venv, pip install the wheel (no index, no Rust, no TensorFlow)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --no-index --no-deps "$WHEEL"
if "$WORK/venv/bin/python" -c 'import tensorflow' 2>/dev/null; then echo "TensorFlow leaked into the wheel venv"; exit 1; fi

# Only the venv and the base system on PATH: no cargo, no rustc.
CLEAN_PATH="$WORK/venv/bin:/usr/bin:/bin"
if env PATH="$CLEAN_PATH" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
    echo "cargo/rustc reachable from the clean PATH; cannot prove the wheel needs no Rust"; exit 1
fi
TOOLS=$(cd "$WORK/venv/bin" && ls tf-* | sort)
EXPECTED=$(python3 -c 'import tomllib; print("\n".join(sorted(b["name"] for b in tomllib.load(open("Cargo.toml", "rb"))["bin"])))')
[ "$TOOLS" = "$EXPECTED" ] || { echo "wheel tools: $TOOLS"; echo "Cargo.toml bins: $EXPECTED"; exit 1; }
HELPER=$(cd "$ROOT/python" && python3 -c 'import tf_tools; print("\n".join(sorted(tf_tools.TOOLS)))')
[ "$HELPER" = "$EXPECTED" ] || { echo "tf_tools.TOOLS: $HELPER"; echo "Cargo.toml bins: $EXPECTED"; exit 1; }
for t in $TOOLS; do
    v=$(env PATH="$CLEAN_PATH" "$t" --version)
    case "$v" in "$t "[0-9]*) ;; *) echo "$t --version said: $v"; exit 1 ;; esac
    env PATH="$CLEAN_PATH" "$t" --help | grep -q 'Usage:' || { echo "$t --help has no Usage line"; exit 1; }
done
echo "   $(echo $TOOLS | wc -w) tools answer --version and --help"

echo "== the README pipeline from the wheel"
MODEL="$ROOT/tests/fixtures/keras_cnn_savedmodel/saved_model"
( cd "$WORK" && env PATH="$CLEAN_PATH" sh -c \
    "tf-freeze '$MODEL' | tf-strip | tf-fold | tf-quant int8 > out.pb" )
env PATH="$CLEAN_PATH" tf-inspect "$WORK/out.pb" --json > "$WORK/out.json"
python3 - "$WORK/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "GraphDef" and r["nodes"] > 0, r
print(f"   out.pb: {r['nodes']} nodes, {r['bytes']} bytes")
PY

echo "== tf_tools.run on TensorFlow's GraphDef"
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# TensorFlow's interpreter imports the helper from the wheel's venv; the helper finds the binaries
# next to its own installation, not on PATH.
env -u TF_TOOLS_BIN PATH=/usr/bin:/bin PYTHONPATH="$SITE" TF_TOOLS_WHEEL_SITE="$SITE" \
    TF_TOOLS_MODEL="$MODEL" TF_CPP_MIN_LOG_LEVEL=2 \
    "$TFV/bin/python" -m pytest -q -p no:cacheprovider tests/wheel

echo "== cargo install --path . (into a temporary root, reusing target/)"
start=$(date +%s)
cargo install --locked --path . --root "$WORK/cargo-root" --target-dir "$ROOT/target" \
    > "$WORK/cargo-install.log" 2>&1 || { cat "$WORK/cargo-install.log"; exit 1; }
INSTALLED=$(cd "$WORK/cargo-root/bin" && ls tf-* | sort)
[ "$INSTALLED" = "$EXPECTED" ] || { echo "cargo install put: $INSTALLED"; exit 1; }
for t in $INSTALLED; do "$WORK/cargo-root/bin/$t" --version >/dev/null; done
echo "   $(echo $INSTALLED | wc -w) tools installed in $(( $(date +%s) - start )) s"
