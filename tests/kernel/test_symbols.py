"""Symbols as bcc's API gives them (rbcc._kernel.symbols): ``SymbolCache``, ``BPF.sym``, ``BPF.ksym``,
``BPF.ksymname``, on binaries and processes the tests make, one for each place a symbol can come from
beyond a binary's own symbol table: a debug file found by ``.gnu_debuglink`` or by build id, libc's
from libc6-dbg, MiniDebugInfo, a JIT's perf map, kallsyms' modules, DWARF's inlined functions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bpfutil import build_c_program, child_env
from _symbins import build_id_of, full, spinning, with_build_id_file, with_debuglink, with_minidebuginfo

from rbcc import BPF, SymbolCache
from rbcc._kernel import symbols

# -- the text bcc makes of a symbol (no process needed) ----------------------------------------------


def test_text_is_bccs() -> None:
    found = (b"start_thread", 0x202, b"/usr/lib/libpthread.so")
    assert symbols.text(found, False, False) == b"start_thread"
    assert symbols.text(found, True, True) == b"start_thread+0x202 [libpthread.so]"
    # no symbol: the module still shown when known, the offset never
    assert symbols.text((None, 8, b"/usr/lib/libc.so.6"), True, True) == b"[unknown] [libc.so.6]"
    assert symbols.text((None, 0x1234, None), True, True) == b"[unknown]"


def test_kernel_cache_is_one_for_every_negative_pid() -> None:
    assert SymbolCache(-7).pid == -1
    assert BPF._sym_cache(-3) is BPF._sym_cache(-1) is BPF.sym_cache(-1)
    assert BPF._sym_cache(1) is not BPF._sym_cache(-1)


def test_frames_the_kernel_recorded_as_addresses_have_no_symbol() -> None:
    from rbcc.table import BuildIdFrame

    assert BPF.sym(BuildIdFrame(BuildIdFrame.IP, (0,) * 20, 0x401000), -1, show_module=True) == b"[unknown]"
    assert BPF.sym(BuildIdFrame(BuildIdFrame.EMPTY, (0,) * 20, 0), -1) == b"[unknown]"


# -- a process's symbols, from where bcc finds them --------------------------------------------------

needs_root = pytest.mark.needs_root


@needs_root
def test_separate_debug_file_named_by_debuglink(tmp_path: Path) -> None:
    # before rbcc followed debug links: [unknown] (blazesym without its dwarf feature reads no debug file)
    with spinning(with_debuglink(tmp_path)) as p:
        assert BPF.sym(p.leaf + 4, p.pid, show_offset=True, show_module=True) == b"rbcc_hidden_leaf+0x4 [spin]"
        assert BPF.sym(p.main, p.pid) == b"main"


@needs_root
@pytest.mark.parametrize("reaped", [False, True], ids=["zombie", "reaped"])
def test_a_process_that_exited_keeps_the_names_looked_up_before(tmp_path: Path, reaped: bool) -> None:
    # tools print stacks at the end, when the processes they saw may be gone: bcc still names them
    child = subprocess.Popen([str(full(tmp_path))], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    leaf, main = (int(a, 16) for a in child.stdout.readline().split())
    assert BPF.sym(leaf, child.pid) == b"rbcc_hidden_leaf"
    child.kill()
    if reaped:
        child.wait()
    else:
        # killed, not yet waited for: its /proc entry stays, without its mappings
        deadline = time.monotonic() + 10
        while open(f"/proc/{child.pid}/stat").read().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    try:
        assert BPF.sym(leaf + 4, child.pid, show_offset=True) == b"rbcc_hidden_leaf+0x4"
        assert BPF.sym(main, child.pid, show_module=True) == b"main [spin]"
    finally:
        child.wait()


def _sym_in_child(pid: int, addr: int, env: dict[str, str]) -> str:
    """BPF.sym in a fresh Python, whose symbolizers read $RBCC_DEBUG_DIRS (once, when first used)."""
    code = f"from rbcc import BPF; print(BPF.sym({addr}, {pid}).decode())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


@needs_root
def test_separate_debug_file_found_by_build_id_in_a_debug_directory(tmp_path: Path) -> None:
    # the binary names no debug file: bcc finds it as DIR/.build-id/xx/yyyy.debug, by its build id alone
    debug_dir = tmp_path / "debug"
    binary = with_build_id_file(tmp_path, debug_dir)
    assert b".gnu_debuglink" not in binary.read_bytes()
    with spinning(binary) as p:
        env = {**child_env(), "RBCC_DEBUG_DIRS": str(debug_dir)}
        assert _sym_in_child(p.pid, p.leaf + 4, env) == "rbcc_hidden_leaf"
        # the directory is what names it
        env.pop("RBCC_DEBUG_DIRS")
        assert _sym_in_child(p.pid, p.leaf + 4, env) == "[unknown]"


@needs_root
def test_minidebuginfo(tmp_path: Path) -> None:
    # before: [unknown] (and in bcc 0.26 too); blazesym decompresses .gnu_debugdata with its xz feature
    binary = with_minidebuginfo(tmp_path)
    assert b".gnu_debugdata" in binary.read_bytes()
    with spinning(binary) as p:
        assert BPF.sym(p.leaf + 4, p.pid) == b"rbcc_hidden_leaf"
        assert BPF.inlined_syms(p.leaf + 4, p.pid) == []  # a symbol table: no DWARF


def _libc() -> tuple[str, int]:
    """(path, load address) of the libc this process maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            # the loader's mappings are private (a shared one is a reader's, such as rbcc's own)
            private = fields[1].endswith("p")
            if len(fields) == 6 and re.search(r"/libc\.so", fields[5]) and int(fields[2], 16) == 0 and private:
                return fields[5], int(fields[0].split("-")[0], 16)
    pytest.skip("this process maps no libc.so")


@needs_root
def test_libc_local_function_from_libc6_dbg() -> None:
    # profile showed [unknown] for libc's frame under main, where bcc shows __libc_start_call_main
    path, base = _libc()
    build_id = build_id_of(path)
    debug = Path(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
    if not debug.exists():
        pytest.skip(f"libc's debug file {debug} is missing: install libc6-dbg (make test-deps)")
    symtab = subprocess.run(["readelf", "-sW", str(debug)], capture_output=True, text=True, check=True).stdout
    rows = (line.split() for line in symtab.splitlines())
    value = next(int(row[1], 16) for row in rows if row[-1:] == ["__libc_start_call_main"])
    pid = os.getpid()
    assert BPF.sym(base + value + 1, pid, show_offset=True) == b"__libc_start_call_main+0x1"
    # bcc's reverse lookup finds it in the debug file too
    assert SymbolCache(pid).resolve_name(path.encode(), b"__libc_start_call_main") == base + value


@needs_root
def test_inlined_functions_innermost_first(tmp_path: Path) -> None:
    with spinning(full(tmp_path)) as p:
        seen = {tuple(BPF.inlined_syms(a, p.pid)) for a in range(p.leaf, p.leaf + 64)}
        assert (b"rbcc_inner_step", b"rbcc_outer_step") in seen, seen
        # the symbol itself is bcc's: the function that holds the inlined code
        assert BPF.sym(p.leaf + 4, p.pid) == b"rbcc_hidden_leaf"
    assert BPF.inlined_syms(p.leaf, -1) == []


JIT_C = r"""
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    char line[8];
    printf("%p\n", (void *)main);
    fflush(stdout);
    fgets(line, sizeof(line), stdin);  /* the test has looked main up: the map rbcc cached has no JIT code */
    /* inc %rax; jmp back to it: a spinning "JIT-compiled" function */
    static const unsigned char code[] = {0x48, 0xff, 0xc0, 0xeb, 0xfb};
    unsigned char *jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(jit, code, sizeof(code));
    printf("%p\n", (void *)jit);
    fflush(stdout);
    ((void (*)(void))jit)();
    return 0;
}
"""


@needs_root
def test_perf_map_names_jit_code_mapped_after_the_first_lookup(tmp_path: Path) -> None:
    binary = build_c_program(tmp_path, "jit", JIT_C, "-O1")
    child = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    perf_map = Path(f"/tmp/perf-{child.pid}.map")
    try:
        assert child.stdin is not None and child.stdout is not None
        main = int(child.stdout.readline(), 16)
        assert BPF.sym(main, child.pid) == b"main"
        child.stdin.write("go\n")
        child.stdin.flush()
        jit = int(child.stdout.readline(), 16)
        perf_map.write_text(f"{jit:x} 5 rbcc_jit_spin\n")  # as a JIT writes it: start, size, name (hex)
        time.sleep(0.1)  # rbcc rereads a cached map for an address outside it, not more often than this
        # before: the name, but [unknown] for its module; bcc names the perf map
        expected = b"rbcc_jit_spin+0x3 [perf-%d.map]" % child.pid
        assert BPF.sym(jit + 3, child.pid, show_module=True, show_offset=True) == expected
    finally:
        child.kill()
        child.wait()
        perf_map.unlink(missing_ok=True)


@needs_root
def test_demangling_as_bcc(tmp_path: Path) -> None:
    gxx = subprocess.run(["which", "g++"], capture_output=True, text=True).stdout.strip()
    if not gxx:
        pytest.skip("g++ is not installed: no C++ program to demangle")
    source = tmp_path / "cxx.cc"
    source.write_text(
        "#include <cstdio>\n"
        "namespace rbcc { __attribute__((noinline)) void spin(int n) { for (volatile int i = 0;; i += n) {} } }\n"
        'int main() { std::printf("%p\\n", (void *)&rbcc::spin); std::fflush(stdout); rbcc::spin(1); }\n'
    )
    subprocess.run([gxx, "-O1", "-o", str(tmp_path / "cxx"), str(source)], check=True)
    child = subprocess.Popen([str(tmp_path / "cxx")], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        spin = int(child.stdout.readline(), 16)
        assert BPF.sym(spin + 2, child.pid) == b"rbcc::spin(int)"
        # before, demangle=False was ignored
        assert BPF.sym(spin + 2, child.pid, demangle=False) == b"_ZN4rbcc4spinEi"
        cache = SymbolCache(child.pid)
        module = str(tmp_path / "cxx").encode()
        assert cache.resolve(spin + 2, False) == (b"_ZN4rbcc4spinEi", 2, module)
        assert cache.resolve(spin + 2, True) == (b"rbcc::spin(int)", 2, module)
        assert cache.resolve_name(module, b"_ZN4rbcc4spinEi") == spin
        assert cache.resolve_name(module, b"no_such_rbcc_symbol") == -1
        assert cache.resolve_name(None, b"_ZN4rbcc4spinEi") == -1
    finally:
        child.kill()
        child.wait()


@needs_root
def test_symbol_cache_of_addresses_without_a_symbol() -> None:
    path, base = _libc()
    cache = SymbolCache(os.getpid())
    # libc's ELF header: no symbol, but bcc still says which module and where in it
    assert cache.resolve(base + 8, True) == (None, 8, path.encode())
    assert cache.resolve(0x10, True) == (None, 0x10, None)
    assert SymbolCache(0).resolve(base + 8, True) == (None, base + 8, None)  # pid 0 has no user space


# -- the kernel's symbols --------------------------------------------------------------------------


def _kallsyms(pattern: bytes) -> list[tuple[int, bytes, bytes | None]]:
    """(address, name, module) of the kallsyms lines whose name matches."""
    found = []
    with open("/proc/kallsyms", "rb") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and re.search(pattern, parts[2]):
                found.append((int(parts[0], 16), parts[2], parts[3].strip(b"[]") if len(parts) > 3 else None))
    return found


@needs_root
def test_ksym_names_a_bpf_programs_module_as_bcc() -> None:
    with BPF(text="TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }"):
        progs = [s for s in _kallsyms(rb"^bpf_prog_\w+_tracepoint__syscalls__sys_enter_getppid$") if s[2] == b"bpf"]
        if not progs:
            pytest.skip("BPF programs are not in kallsyms here (net.core.bpf_jit_kallsyms)")
        addr, name, _ = progs[-1]
        # before: [kernel] for every kernel symbol
        assert BPF.ksym(addr, show_module=True) == name + b" [bpf]"
        assert BPF.ksym(addr + 2, show_module=True, show_offset=True) == name + b"+0x2 [bpf]"
        assert SymbolCache(-1).resolve(addr, False) == (name, 0, b"bpf")
    (syscall,) = [(a, n) for a, n, m in _kallsyms(rb"^do_syscall_64$")]
    assert BPF.ksym(syscall[0], show_module=True) == b"do_syscall_64 [kernel]"
    assert BPF.ksymname(b"do_syscall_64") == SymbolCache(-7).resolve_name(None, "do_syscall_64") == syscall[0]
    assert BPF.ksymname("no_such_rbcc_symbol") == -1


@needs_root
def test_ksym_names_a_kernel_modules_module() -> None:
    if not os.path.exists("/proc/modules"):
        pytest.skip("this kernel has no loadable modules (no /proc/modules)")
    builtin = (None, b"bpf", b"__builtin__ftrace", b"__builtin__kprobes")
    in_modules = [s for s in _kallsyms(rb".") if s[2] not in builtin]
    if not in_modules:
        pytest.skip("no module is loaded")
    addr, name, module = in_modules[0]
    assert module is not None
    assert BPF.ksym(addr, show_module=True) == name + b" [" + module + b"]"


# -- bcc's names under `rbcc run` --------------------------------------------------------------------


def test_bcc_scripts_get_rbccs_symbol_cache(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("from bcc import SymbolCache\nprint(SymbolCache.__module__, SymbolCache(-1).pid)\n")
    done = subprocess.run(
        [sys.executable, "-m", "rbcc", "run", str(script)], capture_output=True, text=True, env=child_env(), check=True
    )
    assert done.stdout.split() == ["rbcc._kernel.symbols", "-1"]
