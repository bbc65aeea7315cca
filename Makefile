# The two commands of the README:
#   make demo   set up everything on a fresh machine, build and install rbcc, run an example
#   make test   set up the same way, then every check: Rust tests, lints, the pytest suite (as root)

PYTHON ?= python3
APT_PACKAGES := clang llvm libclang-dev libelf-dev zlib1g-dev pkg-config gcc make binutils
PY_LIBDIR := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
# cargo test links libpython (the extension itself does not): let the test binaries find it.
export LD_LIBRARY_PATH := $(PY_LIBDIR):$(LD_LIBRARY_PATH)

.PHONY: bench demo test setup system-deps python-deps install rust-test lint pytest test-kernels

demo: install
	$(PYTHON) examples/bitehist.py 2
	$(PYTHON) examples/hello_world.py 2

test: install rust-test lint pytest

setup: system-deps python-deps

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7" "ruff>=0.5" "hypothesis>=6"

install: setup
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation -e .

rust-test:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test

lint:
	ruff check python tests examples
	ruff format --check python tests examples

pytest:
	$(PYTHON) -m pytest -q -rs tests

# Not part of the test run: speed and memory, measured (tests/bench/), compared with bcc if importable.
bench: install
	$(PYTHON) tests/bench/bench_engine.py
