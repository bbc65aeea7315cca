#!/bin/sh
# The toolchain matrix (make test-toolchains): runs a command once per LLVM version, with RBCC_CLANG and
# LIBCLANG_PATH pointing at /usr/lib/llvm-N and a cache of its own, and prints one line per version:
# "passed", "FAILED", or "refused: <rbcc's one-line error>" for a version rbcc refuses to use (outside its
# supported range: then the command is not run, and the refusal is what the README lists).
#   tests/toolchains/test-toolchains.sh "13 14 15 16 19 22" python3 -m pytest -q tests/python/test_bpf_dialect.py
# Exits 1 if any version failed; a refused or missing version does not fail it.
set -u
versions=$1
shift
python=${RBCC_MATRIX_PYTHON:-python3}
results=""
status=0
for v in $versions; do
	root=/usr/lib/llvm-$v
	if [ ! -x "$root/bin/clang" ]; then
		results="$results
LLVM $v: not installed (apt-get install clang-$v libclang1-$v)"
		status=1
		continue
	fi
	cache=$(mktemp -d /tmp/rbcc-matrix-cache.XXXXXX)
	export RBCC_CLANG="$root/bin/clang" LIBCLANG_PATH="$root/lib" RBCC_CACHE_DIR="$cache"
	refusal=$("$python" -c 'import rbcc._core as c; print(c.toolchain()[4] or "")')
	if [ -n "$refusal" ]; then
		results="$results
LLVM $v: refused: $refusal"
	else
		echo "== LLVM $v: $*"
		start=$(date +%s)
		if "$@"; then
			results="$results
LLVM $v: passed ($(( $(date +%s) - start )) s)"
		else
			results="$results
LLVM $v: FAILED ($(( $(date +%s) - start )) s)"
			status=1
		fi
	fi
	rm -rf "$cache"
	unset RBCC_CLANG LIBCLANG_PATH RBCC_CACHE_DIR
done
echo "== the toolchain matrix:$results"
exit $status
