"""stackcount: its C, and live stacks of a test program's function (multi-line, folded, with offsets
and raw addresses, per process) and of the test's own and its children's syscalls (kernel stacks,
kernel and user stacks delimited, one CPU's only, per process)."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bpfutil import pinned_to_one_cpu, run_interrupted, two_cpus
from _probe_targets import build, probed
from _toolcheck import spawn_rbcc

from rbcc.tools import stackcount


def _text(*argv: str) -> str:
    return stackcount.bpf_text(stackcount.build_parser().parse_args(list(argv)), ["f"])


def test_stacks_asked_for_are_in_the_key() -> None:
    both = _text("c:f")
    assert "stack_traces.get_stackid(ctx, 0)" in both and "stack_traces.get_stackid(ctx, BPF_F_USER_STACK)" in both
    # user addresses are symbolized in their process: user stacks and user probes are counted per process
    assert "key.tgid = bpf_get_current_pid_tgid() >> 32;" in both and "key.tgid = 0xffffffff;" not in both
    assert "key.tgid = 0xffffffff;" in _text("-K", "t:sched:sched_switch")
    assert "key.tgid = bpf_get_current_pid_tgid() >> 32;" in _text("-U", "t:sched:sched_switch")
    assert "bpf_get_current_comm(&key.name" in _text("-P", "-K", "t:sched:sched_switch")
    user = _text("-U", "c:f")
    assert "key.kernel_stack_id = -1;" in user and "BPF_F_USER_STACK" in user
    kernel = _text("-K", "-p", "42", "c:f")
    assert "key.user_stack_id = -1;" in kernel and "key.tgid = bpf_get_current_pid_tgid() >> 32;" in kernel
    assert "!= 42) return 0;" in kernel


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("stackcount"))


@pytest.mark.needs_root
def test_user_stacks_of_a_programs_function(program: Path) -> None:
    with probed(program, calls=3) as p:
        out, err = run_interrupted(
            ["stackcount", "-U", "-p", str(p.pid), f"p:{program}:rbcc_leaf"],
            lambda h: h.startswith("Tracing 1 functions for"),
            p.go,
        )
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index("rbcc_leaf")
    # the stack, innermost first, then its count
    assert lines[at : at + 3] == ["rbcc_leaf", "rbcc_outer", "main"], out
    assert "3" in lines[at + 3 :] and lines[-1] == "Detaching..."


def _perf_events(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]"
        except OSError:
            continue
    return n


@pytest.mark.needs_root
def test_folded_stacks(program: Path) -> None:
    with probed(program, calls=2) as p:
        tool = spawn_rbcc(
            "stackcount",
            "-f",
            "-U",
            "-D",
            "3",
            "-p",
            str(p.pid),
            f"{program}:rbcc_leaf",
        )
        # -f prints no header: the uprobe's perf event says the probe is in
        deadline = time.monotonic() + 20
        while not _perf_events(tool.pid) and time.monotonic() < deadline and tool.poll() is None:
            time.sleep(0.1)
        p.go()
        out, err = tool.communicate(timeout=30)
    assert tool.returncode == 0 and "Traceback" not in err, err
    (line,) = out.splitlines()
    stack, count = line.rsplit(" ", 1)
    frames = stack.split(";")
    assert frames[0] == "probed" and frames[-3:] == ["main", "rbcc_outer", "rbcc_leaf"] and count == "2", out


@pytest.mark.needs_root
def test_kernel_stacks_of_the_tests_own_syscalls() -> None:
    def workload() -> None:
        for _ in range(3):
            os.getppid()

    out, err = run_interrupted(
        ["stackcount", "-K", "-p", str(os.getpid()), "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith("Tracing 1 functions for"),
        workload,
    )
    lines = [line.strip() for line in out.splitlines()]
    assert any("do_syscall_64" in line for line in lines), out
    assert "3" in lines


def _stacks(out: str) -> list[list[str]]:
    """The multi-line output's stacks, each its lines (stripped) down to its count."""
    body = out.split("\n", 1)[1].rsplit("Detaching...", 1)[0]
    blocks = [[line.strip() for line in block.splitlines() if line.strip()] for block in body.split("\n\n")]
    return [block for block in blocks if block]


def _disassembly(binary: Path, function: str) -> list[tuple[int, str]]:
    """(address, instruction) of each instruction of ``function`` in ``binary``, by objdump."""
    if shutil.which("objdump") is None or shutil.which("nm") is None:
        pytest.skip("binutils (objdump, nm) is missing: the expected addresses come from the binary's symbols")
    text = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", f"--disassemble={function}", str(binary)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [(int(a, 16), insn) for a, insn in re.findall(r"^\s+([0-9a-f]+):\s+(.*)$", text, re.M)]


def _return_address(binary: Path, caller: str, callee: str) -> int:
    """Where ``callee`` returns to in ``caller`` (the instruction after the call), as a file address."""
    code = _disassembly(binary, caller)
    at = next(i for i, (_, insn) in enumerate(code) if re.fullmatch(rf"call\s+[0-9a-f]+ <{callee}>", insn))
    return code[at + 1][0]


def _load_bias(binary: Path, pid: int) -> int:
    """What to add to ``binary``'s file addresses for where process ``pid`` has it (0 unless PIE)."""
    if int.from_bytes(binary.read_bytes()[16:18], "little") != 3:  # ET_DYN: position independent
        return 0
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[-1] == os.path.realpath(binary) and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    raise AssertionError(f"{binary} is not mapped in process {pid}")


@pytest.mark.needs_root
def test_offsets_and_raw_addresses_of_user_frames(program: Path) -> None:
    into_outer = _return_address(program, "rbcc_outer", "rbcc_leaf")
    into_main = _return_address(program, "main", "rbcc_outer")
    listed = (line.split() for line in subprocess.check_output(["nm", str(program)], text=True).splitlines())
    symbols = {fields[2]: int(fields[0], 16) for fields in listed if len(fields) == 3}
    with probed(program, calls=3) as p:
        out, err = run_interrupted(
            ["stackcount", "-s", "-v", "-U", "-p", str(p.pid), f"p:{program}:rbcc_leaf"],
            lambda h: h.startswith("Tracing 1 functions for"),
            p.go,
        )
        # the program, done with its calls, waits: where it has the binary is still to be read
        bias = _load_bias(program, p.pid)
    (stack,) = _stacks(out)
    # -v: each frame's address where the process has it; -s: symbol+offset, the uprobe at rbcc_leaf's
    # first instruction, its callers at the instructions after their calls
    assert [frame.split() for frame in stack[:3]] == [
        [f"{bias + symbols['rbcc_leaf']:x}", "rbcc_leaf+0x0"],
        [f"{bias + into_outer:x}", f"rbcc_outer+{into_outer - symbols['rbcc_outer']:#x}"],
        [f"{bias + into_main:x}", f"main+{into_main - symbols['main']:#x}"],
    ], out
    assert stack[-1] == "3", out


def _frame(line: str) -> tuple[int, str, int]:
    """A -s -v frame's (address, symbol, offset)."""
    found = re.fullmatch(r"([0-9a-f]+) +(.+)\+0x([0-9a-f]+)", line)
    assert found, line
    return int(found[1], 16), found[2], int(found[3], 16)


def _kernel_symbols(names: set[str]) -> dict[str, set[int]]:
    """The addresses of these kernel symbols (a static function's name may be several), from kallsyms."""
    found: dict[str, set[int]] = {}
    with open("/proc/kallsyms") as kallsyms:
        for line in kallsyms:
            addr, _kind, name = line.split()[:3]
            if name in names:
                found.setdefault(name, set()).add(int(addr, 16))
    return found


@pytest.mark.needs_root
def test_kernel_and_user_stacks_delimited_on_one_cpu() -> None:
    counted, other = two_cpus()

    def workload() -> None:
        with pinned_to_one_cpu(counted):
            for _ in range(3):
                os.getppid()
        with pinned_to_one_cpu(other):
            for _ in range(2):
                os.getppid()

    out, err = run_interrupted(
        ["stackcount", "-d", "-s", "-v", "-c", str(counted), "-p", str(os.getpid()), "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith("Tracing 1 functions for"),
        workload,
    )
    stacks = _stacks(out)
    # the getppid calls made on the other CPU are left out (their stacks may split on user frames)
    assert sum(int(stack[-1]) for stack in stacks) == 3, out
    getppid = ctypes.cast(ctypes.CDLL(None).getppid, ctypes.c_void_p).value
    for stack in stacks:
        # kernel frames, the delimiter, user frames (the first in libc's getppid, after its syscall)
        kernel, user = stack[: stack.index("--")], stack[stack.index("--") + 1 : -1]
        frames = [_frame(line) for line in kernel]
        where = _kernel_symbols({name for _, name, _ in frames})
        assert all(addr - offset in where[name] for addr, name, offset in frames), stack
        assert "do_syscall_64" in [name for _, name, _ in frames], stack
        addr, name, offset = _frame(user[0])
        assert name == "getppid" and addr - offset == getppid, stack


@pytest.mark.needs_root
def test_user_stacks_without_a_pid_are_kept_per_process(program: Path) -> None:
    with probed(program, calls=2) as p2, probed(program, calls=3) as p3:

        def workload() -> None:
            p2.go()
            p3.go()

        out, err = run_interrupted(
            ["stackcount", "-U", f"p:{program}:rbcc_leaf"],
            lambda h: h.startswith("Tracing 1 functions for"),
            workload,
        )
    # each process's stack symbolized in it, then its name and pid, then its count
    found = {int(s[-2].split("[")[1].rstrip("]")): (s[:3], s[-2].split()[0], int(s[-1])) for s in _stacks(out)}
    frames = ["rbcc_leaf", "rbcc_outer", "main"]
    assert found == {p2.pid: (frames, "probed", 2), p3.pid: (frames, "probed", 3)}, out


def _getppid_child(calls: int) -> int:
    """A child that calls getppid ``calls`` times and ends; its PID."""
    child = subprocess.Popen([sys.executable, "-c", f"import os\nfor _ in range({calls}): os.getppid()"])
    assert child.wait(timeout=30) == 0
    return child.pid


@pytest.mark.needs_root
def test_per_process_kernel_stacks() -> None:
    children: list[int] = []
    out, err = run_interrupted(
        ["stackcount", "-P", "-K", "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith("Tracing 1 functions for"),
        lambda: children.extend([_getppid_child(2), _getppid_child(3)]),
    )
    comm = Path(sys.executable).name[:15]
    # -P: the one kernel stack counted apart for each process (others on the machine may call getppid too)
    found = {s[-2]: int(s[-1]) for s in _stacks(out) if "do_syscall_64" in s}
    assert {f"{comm} [{children[0]}]": 2, f"{comm} [{children[1]}]": 3}.items() <= found.items(), out
