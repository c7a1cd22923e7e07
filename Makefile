# tf-tools: the commands a fresh machine needs.
#   make demo    build the tools and run them on the bundled sample model (no TensorFlow needed)
#   make test    install everything (Rust crates, TensorFlow 2.21 in .venv) and run every tier
#   make bench   benchmarks, written to docs/benchmarks.md
#   make fuzz    every cargo-fuzz target for FUZZ_SECONDS each (nightly; see docs/fuzzing.md)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
TFLIB := $(CURDIR)/build/tflib
TFENV := PKG_CONFIG_PATH=$(TFLIB) LD_LIBRARY_PATH=$(TFLIB)
BIN := $(CURDIR)/target/release
CARGO ?= cargo

.PHONY: all build demo test test-rust wheel wheel-venv test-wheel test-tf test-tfrun tf-eval test-tfeval venv tflib fixtures ops-registry xla-table \
        proto-check bench bench-int8 bench-scaling bench-pipes fuzz fmt lint completions clean

all: build

build:
	$(CARGO) build --release --locked

# The Python side: TensorFlow 2.21 (CPU) pinned, for fixtures and the equivalence tier.
$(VENV)/.stamp: scripts/requirements.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r scripts/requirements.txt
	touch $@

venv: $(VENV)/.stamp

# libtensorflow from the wheel, laid out for tensorflow-sys (pkg-config + symlinks).
$(TFLIB)/tensorflow.pc: $(VENV)/.stamp scripts/setup_tflib.sh
	scripts/setup_tflib.sh $(VENV) $(TFLIB) >/dev/null

tflib: $(TFLIB)/tensorflow.pc

demo: build
	@scripts/demo.sh $(BIN)

test: venv tflib
	$(MAKE) --no-print-directory test-rust test-tfrun test-tf test-tfeval test-wheel

# Fast tier. Two tests compare generated tables with TensorFlow in .venv (the proto schema, the
# XLA op table); a plain `cargo test` lists them as ignored, this target runs them.
test-rust: build venv
	$(CARGO) test --release --locked -- --include-ignored

# Real TensorFlow through tensorflow-sys: tf-run and tf-diff, and tf-fold's --tf-eval evaluator.
test-tfrun: tflib
	$(TFENV) $(CARGO) build --release --locked -p tf-run
	$(TFENV) $(CARGO) test --release --locked -p tf-run

# tf-fold with --tf-eval (root feature tf-eval, links TensorFlow), in its own target directory so
# that target/release/tf-fold stays TensorFlow-free; then its TF-judged test.
TFEVAL_BIN := $(CURDIR)/target/tf-eval/release/tf-fold
tf-eval: tflib
	$(TFENV) $(CARGO) build --release --locked --features tf-eval --bin tf-fold --target-dir target/tf-eval

test-tfeval: tf-eval
	$(TFENV) TF_FOLD_TF_EVAL_BIN=$(TFEVAL_BIN) TF_TOOLS_BIN=$(BIN) TF_CPP_MIN_LOG_LEVEL=2 \
	    $(VPY) -m pytest -q tests/tf/test_fold.py -k tf_eval_folds

# Real TensorFlow in Python judges the tools' outputs.
test-tf: build tflib
	$(TFENV) TF_TOOLS_BIN=$(BIN) TF_CPP_MIN_LOG_LEVEL=2 $(VPY) -m pytest -q tests/tf \
	    --deselect tests/tf/test_fold.py::test_tf_eval_folds_ops_without_native_kernel

# The pip wheel (pyproject.toml, maturin "bin" bindings): every tool binary plus the tf_tools
# helper module, no TensorFlow dependency. `make wheel` builds the distributed form (profile
# dist: thin LTO, stripped) into build/wheels; see docs/install.md.
WHEEL_VENV := build/wheel-venv
$(WHEEL_VENV)/.stamp: scripts/requirements-wheel.txt
	test -x $(WHEEL_VENV)/bin/python || $(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet -r scripts/requirements-wheel.txt
	touch $@

wheel-venv: $(WHEEL_VENV)/.stamp

wheel: wheel-venv
	rm -rf build/wheels
	$(WHEEL_VENV)/bin/maturin build --locked --profile dist --out build/wheels
	$(WHEEL_VENV)/bin/auditwheel show build/wheels/*.whl

# The wheel installed into a fresh venv with no Rust and no TensorFlow (README pipeline, --help,
# the Python helper on TF's GraphDef), and `cargo install --path .`.
test-wheel: build wheel-venv venv
	scripts/test_wheel.sh $(WHEEL_VENV) $(VENV)

fixtures: venv
	$(VPY) scripts/gen_fixtures.py --out tests/fixtures

ops-registry: venv
	$(VPY) scripts/gen_op_registry.py

xla-table: venv
	$(VPY) scripts/gen_xla_table.py

proto-check: venv
	$(CARGO) run -q -p tf-proto --example dump_descriptors -- build/descriptors.bin
	$(VPY) scripts/check_proto_schema.py build/descriptors.bin

bench: build venv
	$(TFENV) $(VPY) scripts/bench.py --bin $(BIN) --out docs/benchmarks.md
	$(MAKE) --no-print-directory bench-int8

# Full-integer int8 (tf-quant int8 --activations) against float and weight-only int8 in
# TensorFlow with oneDNN on: MobileNetV2, ResNet50, transformer (scripts/bench_int8.py); replaces
# its section of docs/benchmarks.md. tf-run (calibration) is built as test-tfrun builds it.
bench-int8: build venv tflib
	$(TFENV) $(CARGO) build --release --locked -p tf-run
	$(TFENV) $(VPY) scripts/bench.py --bin $(BIN) --int8-only --out docs/benchmarks.md

# The scaling table alone (every tool on generated 10k-100k node graphs), printed.
bench-scaling: build
	$(VPY) scripts/bench.py --bin $(BIN) --scaling-only

bench-pipes: build venv
	$(VPY) scripts/bench.py --bin $(BIN) --pipes-only

# Fuzzing (docs/fuzzing.md): each target of fuzz/ for FUZZ_SECONDS, one after the other; seed
# corpora are written from tests/fixtures into fuzz/corpus/<target> on the first run. Crashes
# land in fuzz/artifacts/<target>/; the run fails if any target found one. Needs nightly Rust.
# The seeded stable run of the same targets is part of `cargo test` (tests/fuzz_smoke.rs).
# FUZZ_SANITIZER=none builds without AddressSanitizer, for more executions per second (see
# docs/fuzzing.md); overflow checks and debug assertions stay on, so panics and aborts are found.
# FUZZ_BUILD_FLAGS adds cargo-fuzz build flags, e.g. --no-trace-compares (about 2.5 times the
# executions per second, without libFuzzer's comparison operands).
FUZZ_SECONDS ?= 60
FUZZ_SANITIZER ?= address
FUZZ_BUILD_FLAGS ?=
FUZZ_TARGETS ?= graphdef pbtxt savedmodel checkpoint strip fold quant prune xla freeze inspect
FUZZ_FLAGS ?= -timeout=10 -rss_limit_mb=4096 -max_len=262144 -print_final_stats=1

fuzz:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && $(CARGO) +nightly fuzz build -O -a -s $(FUZZ_SANITIZER) $(FUZZ_BUILD_FLAGS)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  (cd fuzz && TF_FUZZ_SEEDS=$(CURDIR)/fuzz/corpus/$$t $(CARGO) +nightly fuzz run -O -a -s $(FUZZ_SANITIZER) $(FUZZ_BUILD_FLAGS) $$t \
	    -- -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS)) || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (see fuzz/artifacts/)"; exit 1; fi

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

completions: build
	mkdir -p build/completions build/man
	for t in tf-convert tf-inspect tf-freeze tf-strip tf-quant tf-xla-check tf-prune tf-fold tf-transform tf-ckpt; do \
	  $(BIN)/$$t --completions bash > build/completions/$$t.bash; \
	  $(BIN)/$$t --man > build/man/$$t.1; \
	done

clean:
	$(CARGO) clean
	rm -rf fuzz/target
	rm -rf build
