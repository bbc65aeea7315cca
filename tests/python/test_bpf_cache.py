"""The compile cache and the debug output of the rewritten C (real compiler, real kernel)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _bpfutil import target_cflags

import rbcc
from rbcc import BPF

pytestmark = pytest.mark.needs_root

COUNTER = r"""
BPF_HASH(calls, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u64 zero = 0;
    u64 *v = calls.lookup_or_try_init(&pid, &zero);
    if (v)
        *v += 1;
    return 0;
}
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty compile cache for this test only."""
    path = tmp_path / "cache"
    monkeypatch.setenv("RBCC_CACHE_DIR", str(path))
    return path


def _count_calls(b: BPF, n: int) -> int:
    for _ in range(n):
        os.getppid()
    return b["calls"][os.getpid()].value


def test_second_compile_of_the_same_text_is_a_cache_hit(cache_dir: Path) -> None:
    with BPF(text=COUNTER, cflags=target_cflags()) as first:
        assert first.cache_hit is False
        assert _count_calls(first, 2) == 2
    with BPF(text=COUNTER, cflags=target_cflags()) as second:
        assert second.cache_hit is True
        assert second.rewritten == first.rewritten
        # the cached object is a working program with maps of its own
        assert _count_calls(second, 3) == 3
    # the cache is private: a poisoned object there would run in the kernel
    for path in (cache_dir, cache_dir / "obj"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        assert path.stat().st_uid == os.geteuid()


def test_other_text_or_flags_miss_the_cache(cache_dir: Path) -> None:
    BPF(text=COUNTER, cflags=target_cflags()).cleanup()
    with BPF(text=COUNTER + "\n// changed\n", cflags=target_cflags()) as b:
        assert b.cache_hit is False
    with BPF(text=COUNTER, cflags=target_cflags(UNUSED=1)) as b:
        assert b.cache_hit is False
    with BPF(text=COUNTER, cflags=target_cflags()) as b:
        assert b.cache_hit is True


def test_debug_preprocessor_prints_the_rewritten_c(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with BPF(text=COUNTER, cflags=target_cflags(), debug=rbcc.DEBUG_PREPROCESSOR) as b:
        out = capsys.readouterr().out
        assert out == b.rewritten + "\n"
    assert "bpf_map_lookup_elem" in out or "__rbcc_m_" in out
    assert "TRACEPOINT_PROBE(syscalls, sys_enter_getppid)" in out  # the macro supplies its section
    assert 'SEC(".maps")' in out
    assert "calls.lookup_or_try_init" not in out  # the bcc method call is gone


def test_no_debug_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    BPF(text=COUNTER, cflags=target_cflags()).cleanup()
    assert capsys.readouterr().out == ""


def _pchs(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("kernel/*/pch/*.pch"))


def _built_pchs(cache_dir: Path) -> list[Path]:
    """The PCHs, once the builds the first compile started in the background have ended."""
    deadline = time.monotonic() + 60
    while list(cache_dir.glob("kernel/*/pch/*.building")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _pchs(cache_dir)


def test_a_first_compile_does_not_wait_for_the_precompiled_prelude(cache_dir: Path) -> None:
    with BPF(text=COUNTER, cflags=target_cflags()) as b:
        assert b.cache_hit is False
        # the program was compiled on the plain headers; the PCHs are still being built, for later
        assert _pchs(cache_dir) == []
        assert len(list(cache_dir.glob("kernel/*/pch/*.building"))) == 2
        assert _count_calls(b, 2) == 2
    assert len(_built_pchs(cache_dir)) == 2


def test_prelude_is_precompiled_once_and_shared_across_defines(cache_dir: Path) -> None:
    BPF(text=COUNTER, cflags=target_cflags()).cleanup()
    pchs = _built_pchs(cache_dir)
    assert len(pchs) == 2  # one for the libclang parse, one for the clang compile
    # another program, with other values of defines the prelude never reads: same PCHs, unrebuilt
    stamps = [p.stat().st_mtime_ns for p in pchs]
    with BPF(text=COUNTER + "\n// other\n", cflags=target_cflags(UNUSED=2)) as b:
        assert b.cache_hit is False
        assert _count_calls(b, 2) == 2
    assert _pchs(cache_dir) == pchs
    assert [p.stat().st_mtime_ns for p in pchs] == stamps


def test_a_refused_pch_is_dropped_and_the_program_still_compiles(cache_dir: Path) -> None:
    BPF(text=COUNTER, cflags=target_cflags()).cleanup()
    pchs = _built_pchs(cache_dir)
    assert len(pchs) == 2
    for p in pchs:
        p.write_bytes(b"not a precompiled header")
    with BPF(text=COUNTER + "\n// after corruption\n", cflags=target_cflags()) as b:
        assert b.cache_hit is False
        assert _count_calls(b, 3) == 3
    # the bad ones were discarded; the next compile builds good ones again
    BPF(text=COUNTER + "\n// rebuilt\n", cflags=target_cflags()).cleanup()
    assert _built_pchs(cache_dir) == pchs
    assert all(p.read_bytes()[:4] == b"CPCH" for p in _pchs(cache_dir))


STEP = r"""
#include "step.h"
BPF_HASH(calls, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    calls.increment(pid, STEP);
    return 0;
}
"""


def test_editing_an_included_header_recompiles_the_program(cache_dir: Path, tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "step.h").write_text('#include "nested/value.h"\n')
    (inc / "nested").mkdir()
    (inc / "nested" / "value.h").write_text("#define STEP 2\n")
    flags = [*target_cflags(), f"-I{inc}"]
    with BPF(text=STEP, cflags=flags) as b:
        assert b.cache_hit is False
        assert _count_calls(b, 3) == 6
    with BPF(text=STEP, cflags=flags) as b:
        assert b.cache_hit is True
    (inc / "nested" / "value.h").write_text("#define STEP 5\n")
    with BPF(text=STEP, cflags=flags) as b:
        assert b.cache_hit is False  # the object built with STEP 2 is not served
        assert _count_calls(b, 3) == 15


def test_another_kernel_misses_the_cache(cache_dir: Path) -> None:
    BPF(text=COUNTER, cflags=target_cflags()).cleanup()
    # what this boot's kernel hashes to is remembered; say it was another kernel's BTF
    (memo,) = cache_dir.glob("boot-*")
    assert (cache_dir / "kernel" / memo.read_text()).is_dir()
    memo.write_text("0123456789abcdef")
    with BPF(text=COUNTER, cflags=target_cflags()) as b:
        assert b.cache_hit is False
        assert _count_calls(b, 2) == 2
    assert (cache_dir / "kernel" / "0123456789abcdef" / "vmlinux.h").is_file()


HIT_PROBE = """
import sys
from rbcc import BPF
b = BPF(text=sys.argv[1], cflags=sys.argv[2:])
print(b.cache_hit)
"""


def test_another_clang_misses_the_cache(cache_dir: Path, tmp_path: Path) -> None:
    """The toolchain is found once per process: each run is a process of its own, as a tool's is."""
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("no clang on PATH to wrap")

    def hit(**env: str) -> bool:
        out = subprocess.run(
            [sys.executable, "-c", HIT_PROBE, COUNTER, *target_cflags()],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() == "True"

    assert hit() is False
    assert hit() is True
    # another clang binary (here a wrapper of the same one: a file of its own)
    wrapper = tmp_path / "clang"
    wrapper.write_text(f'#!/bin/sh\nexec {clang} "$@"\n')
    wrapper.chmod(0o755)
    assert hit(RBCC_CLANG=str(wrapper)) is False
    assert hit(RBCC_CLANG=str(wrapper)) is True
    assert hit() is True


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_compile_killed_midway_leaves_no_process_behind(cache_dir: Path) -> None:
    # a first compile (no vmlinux.h, no PCH yet) is long enough to be caught in the middle
    proc = subprocess.Popen([sys.executable, "-c", HIT_PROBE, COUNTER, *target_cflags()])
    deadline = time.monotonic() + 30
    compiling: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        # the clang that waits for the program, and the forked parse child (which runs no clang)
        clang = {k for k in kids if "unit.c" in _cmdline(k)}
        parse = {k for k in kids if "clang" not in _cmdline(k)}
        if clang and parse:
            compiling = clang | parse
            break
        time.sleep(0.005)
    assert compiling, "the compile ended before it was seen running both processes"
    proc.kill()
    proc.wait()

    # what may go on is a build of the precompiled prelude (started in the background for later
    # compiles: it ends on its own); nothing that waited on the dead process may
    def left(pid: int) -> bool:
        return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) and "c-header" not in _cmdline(pid)

    deadline = time.monotonic() + 15  # SIGKILL is prompt, but a loaded machine may be slow to reap
    while any(left(p) for p in compiling):
        assert time.monotonic() < deadline, [(p, _cmdline(p)) for p in compiling if left(p)]
        time.sleep(0.05)
    # its scratch directory is left; the next compile removes it
    assert [d for d in (cache_dir / "work").iterdir() if f"-{proc.pid}-" in d.name]
    BPF(text=COUNTER + "\n// after the kill\n", cflags=target_cflags()).cleanup()
    assert list((cache_dir / "work").iterdir()) == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _entry(cache_dir: Path) -> Path:
    (entry,) = cache_dir.glob("obj/*/*.entry")
    return entry


def _damage_flip(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[len(data) // 3] ^= 0x40  # inside the object's instructions or data
    entry.write_bytes(bytes(data))


def _damage_truncate(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])


def _damage_directory(entry: Path) -> None:
    entry.unlink()
    entry.mkdir()
    (entry / "junk").write_text("x")


@pytest.mark.parametrize("damage", [_damage_flip, _damage_truncate, _damage_directory])
def test_a_damaged_cache_entry_is_discarded_and_rebuilt(
    cache_dir: Path, damage: Callable[[Path], None], capfd: pytest.CaptureFixture[str]
) -> None:
    BPF(text=COUNTER, cflags=target_cflags()).cleanup()
    entry = _entry(cache_dir)
    damage(entry)
    capfd.readouterr()
    with BPF(text=COUNTER, cflags=target_cflags()) as b:
        assert b.cache_hit is False
        assert _count_calls(b, 10) == 10
    warning = [line for line in capfd.readouterr().err.splitlines() if "damaged cache entry" in line]
    assert len(warning) == 1, warning
    # rebuilt whole: the next run hits it, and nothing was left beside it
    with BPF(text=COUNTER, cflags=target_cflags()) as b:
        assert b.cache_hit is True
        assert _count_calls(b, 3) == 3
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]


def test_the_rewriter_is_linear_in_the_number_of_types() -> None:
    # 3,000 nested structs: clang needs ~0.2 s; the rewriter once took 30 s (a walk of each struct's
    # members for every node, and a search of vmlinux.h for each of the program's types). The bound is
    # loose on purpose: it catches a quadratic walk, not a slow machine. make bench times it.
    parts = ["struct s0 { int a; };"]
    parts += [f"struct s{i} {{ struct s{i - 1} inner; int v{i}; }};" for i in range(1, 3000)]
    parts.append("TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { struct s2999 *p = 0; return p ? 1 : 0; }")
    parts.append(f"// {time.time_ns()}")
    start = time.monotonic()
    with BPF(text="\n".join(parts)) as b:
        assert b.cache_hit is False
    assert time.monotonic() - start < 10
