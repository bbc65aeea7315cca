"""stackcount: its C, and live stacks of a test program's function (multi-line and folded) and of the
test's own syscalls (kernel stacks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bpfutil import child_env, run_interrupted
from _probe_targets import build, probed

from rbcc.tools import stackcount


def _text(*argv: str) -> str:
    return stackcount.bpf_text(stackcount.build_parser().parse_args(list(argv)), ["f"])


def test_stacks_asked_for_are_in_the_key() -> None:
    both = _text("c:f")
    assert "stack_traces.get_stackid(ctx, 0)" in both and "stack_traces.get_stackid(ctx, BPF_F_USER_STACK)" in both
    assert "key.tgid = 0xffffffff;" in both
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
        tool = subprocess.Popen(
            [sys.executable, "-m", "rbcc", "stackcount", "-f", "-U", "-D", "3", "-p", str(p.pid),
             f"{program}:rbcc_leaf"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )  # fmt: skip
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
