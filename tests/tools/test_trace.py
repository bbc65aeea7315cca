"""trace: the C its probe specs become, the kernel-probe C loading through the verifier, and live runs that
see the test's own open(), a test program's function arguments and return values, and a USDT argument."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bpfutil import cgroup2_root, run_interrupted
from _probe_targets import build, probed
from _toolcheck import refusal_line, run_rbcc, spawn_rbcc, text_of

from rbcc import BPF
from rbcc.errors import ProbeSpecError
from rbcc.tools import trace


def _text(*argv: str) -> str:
    return text_of(trace, *argv)


def test_fields_are_typed_by_the_format() -> None:
    text = _text('c:f "%d %u %ld %lu %lld %llu %x %lx %llx %c %p %K %U %s %hd", ' + ", ".join(["arg1"] * 15))
    fields = re.findall(r"^    (.+) v\d+(\[\d+\])?;$", text, re.M)
    assert [f[0] for f in fields] == [
        "int",
        "unsigned int",
        "long",
        "unsigned long",
        "long long",
        "unsigned long long",
        "unsigned int",
        "unsigned long",
        "unsigned long long",
        "char",
        "u64",
        "u64",
        "u64",
        "char",
        "short",
    ]
    assert "char v13[80];" in text and "char v0[32];" in _text("-Z", "32", 'c:f "%s", arg1')


def test_strings_come_from_the_right_address_space() -> None:
    # syscall tracepoint pointers are user memory
    assert "bpf_probe_read_user_str(&__data.v0, sizeof(__data.v0), (void *)(args->filename))" in _text(
        't:syscalls:sys_enter_openat "%s", args->filename'
    )
    # a kernel function's arguments are kernel memory, unless marked @user or declared __user
    assert "bpf_probe_read_kernel_str(&__data.v0, sizeof(__data.v0), (void *)(PT_REGS_PARM2(ctx)))" in _text(
        'do_sys_open "%s", arg2'
    )
    assert "bpf_probe_read_user_str(&__data.v0, sizeof(__data.v0), (void *)(PT_REGS_PARM2(ctx)))" in _text(
        'do_sys_open "%s", arg2@user'
    )
    assert "bpf_probe_read_user_str(&__data.v0, sizeof(__data.v0), (void *)(filename))" in _text(
        'p::do_sys_openat2(int dfd, const char __user *filename) "%s", filename'
    )
    # uprobes and USDT probes read their process's memory
    assert "bpf_probe_read_user_str(&__data.v0, sizeof(__data.v0), (void *)(PT_REGS_PARM1(ctx)))" in _text(
        'c:puts "%s", arg1'
    )
    usdt = _text('u:/bin/true:probe (arg1 > 2) "%d %s", arg1, arg2')
    assert "bpf_usdt_readarg(2, ctx, &__arg2);" in usdt and "if (!(__arg1 > 2))" in usdt
    assert "(void *)(__arg2)" in usdt and "bpf_probe_read_user_str" in usdt


def test_aliases_and_filters() -> None:
    text = _text('r::f (retval > 0) "%d %d %d", retval, $pid, $cpu')
    assert "if (!(PT_REGS_RC(ctx) > 0))" in text and "(PT_REGS_RC(ctx))" in text
    assert "bpf_get_current_pid_tgid() & 0xffffffff" in text and "bpf_get_smp_processor_id()" in text
    assert f"if (__tgid == {os.getpid()}) return 0;" in _text("f")
    assert "if (__tgid ==" not in _text("-S", "f")
    assert "if (__tgid != 42) return 0;" in _text("-p", "42", "f")
    assert "if (__pid != 43) return 0;" in _text("-L", "43", "f")
    assert "if (__uid != 1000) return 0;" in _text("--uid", "1000", "f")
    assert "__cgroup.check_current_task(0)" in _text("-c", "/sys/fs/cgroup", "f")
    assert "#include <linux/fs_struct.h>" in _text("-I", "linux/fs_struct.h", "f")
    stacks = _text("-K", "-U", "t:sched:sched_switch")
    assert "get_stackid(args, 0)" in stacks and "get_stackid(args, BPF_F_USER_STACK)" in stacks
    assert "int probe_sched_switch_1(struct tracepoint__sched__sched_switch *args)" in stacks
    signature = _text('p::SyS_nanosleep(struct timespec *ts) "sleep for %lld ns", ts->tv_nsec')
    assert "(struct pt_regs *ctx, struct timespec *ts)" in signature
    assert "streq_0(" in _text('c:open (STRCMP("/etc/passwd", arg1)) "%s", arg1')
    two = _text("t:sched:sched_switch", "t:sched:sched_switch")
    assert "probe_sched_switch_1(" in two and "probe_sched_switch_2(" in two


def test_bad_specs_end_in_one_message_pointing_at_the_problem() -> None:
    with pytest.raises(ProbeSpecError):
        _text('f "%d"')
    out = run_rbcc("trace", "--ebpf", 'c:f "%d %d", arg1')
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        "trace: format specifier '%d' has no argument",
        '    c:f "%d %d", arg1',
        "            ^",
    ]


def test_injected_statements_end_in_one_message_and_no_program() -> None:
    # a predicate whose comments hide its parentheses from a plain reading once closed the generated 'if'
    spec = 't:syscalls:sys_enter_getppid (1 /* ( ( */ )) bpf_trace_printk("x"); if ((1 /* ) ) */) "%d", 1'
    out = run_rbcc("trace", "--ebpf", spec)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "trace: comments are not allowed in probe specs (they can hide where an expression ends)",
        f"    {spec}",
        "    " + " " * spec.index("/*") + "^",
    ]
    # and a newline in an argument once started an #include line
    out = run_rbcc("trace", "--ebpf", 't:syscalls:sys_enter_getppid "%d", 1\n#include </etc/shadow>\n')
    assert out.returncode == 1 and out.stdout == "" and "no preprocessor directives" in out.stderr
    # with -B, STRCMP's string is pasted as C: an initializer, nothing more
    needle = _text("-B", "c:f (STRCMP(\"{0x61, 'b', 99}\", arg1))")
    assert "char needle[] = {0x61, 'b', 99};" in needle
    with pytest.raises(ProbeSpecError, match="with -B, STRCMP's string"):
        _text("-B", 'c:f (STRCMP("{1}; bpf_trace_printk(0, 1); char x[] = {2", arg1))')


@pytest.mark.needs_root
def test_clang_errors_point_at_the_spec() -> None:
    spec = 't:syscalls:sys_enter_getppid ($pid != 0) "%d %s", args->nope, $task->comm'
    out = run_rbcc("trace", spec)
    assert out.returncode == 1 and out.stderr.splitlines() == [
        "trace: clang: no member named 'nope' in 'struct tracepoint__syscalls__sys_enter_getppid'",
        f"    {spec}",
        "    " + " " * spec.index("nope") + "^",
    ]


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("trace", "--ebpf", 't:syscalls:sys_enter_openat "%s", args->filename')
    assert out.returncode == 0, out.stderr
    assert "int probe_sys_enter_openat_1(struct tracepoint__syscalls__sys_enter_openat *args)" in out.stdout


KPROBE_SPECS = [
    'r::do_sys_openat2 (retval > 0) "fd %d", retval',
    'p::do_sys_openat2(int dfd, const char __user *filename) "%s %d", filename, dfd',
    'do_sys_open "%s %K", arg2@user, arg1',
]


@pytest.mark.needs_root
@pytest.mark.parametrize("spec", KPROBE_SPECS)
def test_kernel_probe_c_compiles_and_passes_the_verifier(spec: str) -> None:
    text = _text("-K", "-U", spec)
    (fn,) = re.findall(r"^int (probe_\w+)\(", text, re.M)
    b = BPF(text=text)
    try:
        assert b.load_func(fn, BPF.KPROBE).fd >= 0
    finally:
        b.cleanup()


@pytest.mark.without_kprobes
def test_kernel_probes_stop_with_one_line() -> None:
    line = refusal_line("trace", 'r::do_sys_openat2 "%d", retval')
    assert line.startswith("trace: cannot attach kretprobe to do_sys_openat2: this kernel has no kprobes")


def _rows(out: str, pid: int) -> list[list[str]]:
    return [f for f in (line.split(None, 4) for line in out.splitlines()) if len(f) >= 4 and f[0] == str(pid)]


@pytest.mark.needs_root
def test_sees_the_tests_own_open_with_the_filename(tmp_path: Path) -> None:
    target = tmp_path / f"rbcc-trace-{os.getpid()}"

    def workload() -> None:
        target.write_text("x")
        target.read_text()

    seen = lambda out: out.count(str(target)) >= 2  # noqa: E731
    out, err = run_interrupted(
        ["trace", "-T", 't:syscalls:sys_enter_openat (args->flags >= 0) "open %s", args->filename'],
        lambda h: h.split() == ["TIME", "PID", "TID", "COMM", "FUNC", "-"],
        workload,
        seen,
    )
    lines = [line for line in out.splitlines() if str(target) in line]
    assert len(lines) == 2, out  # written, then read
    for line in lines:
        stamp, pid, tid, comm, func, msg = line.split(None, 5)
        assert re.fullmatch(r"\d\d:\d\d:\d\d", stamp)
        assert (pid, tid, func, msg) == (str(os.getpid()), str(os.getpid()), "sys_enter_openat", f"open {target}")


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("trace"))


@pytest.mark.needs_root
def test_uprobe_and_uretprobe_read_arguments_and_return_values(program: Path) -> None:
    with probed(program, calls=3) as p:
        entry = f'p:{program}:rbcc_leaf "a=%d name=%s", arg1, arg2'
        ret = f'r:{program}:rbcc_leaf (retval > 15) "ret=%d", retval'
        out, err = run_interrupted(
            ["trace", "-p", str(p.pid), entry, ret],
            lambda h: h.split()[:4] == ["PID", "TID", "COMM", "FUNC"],
            p.go,
            lambda out: len(_rows(out, p.pid)) >= 6,
        )
        rows = _rows(out, p.pid)
    assert all(r[1] == str(p.pid) and r[2] == "probed" and r[3] == "rbcc_leaf" for r in rows)
    messages = sorted(r[4] for r in rows)
    assert messages == sorted(
        [f"a={10 * i} name=name-{i}" for i in (1, 2, 3)] + [f"ret={10 * i + 6}" for i in (1, 2, 3)]
    ), out


@pytest.mark.needs_root
def test_usdt_probe_arguments_and_max_events(program: Path) -> None:
    with probed(program, calls=5) as p:
        tool = spawn_rbcc(
            "trace",
            "-M",
            "3",
            "-p",
            str(p.pid),
            "-C",
            f'u:{program}:rbcc:added (arg1 != 20) "%d %s", arg1, arg2',
        )
        assert tool.stdout is not None
        header = tool.stdout.readline()
        assert header.split() == ["CPU", "PID", "TID", "COMM", "FUNC", "-"], header
        p.go()
        # -M 3: it ends by itself after three events
        out, err = tool.communicate(timeout=20)
    assert tool.returncode == 0 and "Traceback" not in err, err
    rows = [line.split(None, 5) for line in out.splitlines()]
    assert len(rows) == 3, out
    assert [r[5] for r in rows] == ["10 name-1", "30 name-3", "40 name-4"]
    assert all(r[1] == str(p.pid) and r[4] == "rbcc:added" and r[0].isdigit() for r in rows)


def _getppid_in(cgroup: Path | None, calls: int) -> int:
    """A child that calls getppid ``calls`` times (from inside ``cgroup`` if given); its PID."""
    code = f"import os\nfor _ in range({calls}): os.getppid()"
    join = None
    if cgroup is not None:
        procs = str(cgroup / "cgroup.procs")

        def join() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

    child = subprocess.Popen([sys.executable, "-c", code], preexec_fn=join)  # noqa: PLW1509
    assert child.wait(timeout=30) == 0
    return child.pid


@pytest.mark.needs_root
def test_aggregate_counts_each_message_and_max_events_ends_it() -> None:
    spec = 't:syscalls:sys_enter_getppid "ppid of %d", args->__syscall_nr'
    tool = spawn_rbcc("trace", "-A", "-M", "4", "-p", str(os.getpid()), spec)
    assert tool.stdout is not None
    assert tool.stdout.readline().split() == ["PID", "TID", "COMM", "FUNC", "-"]
    for _ in range(4):
        os.getppid()
    out, err = tool.communicate(timeout=20)
    assert tool.returncode == 0 and "Traceback" not in err, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 2, out
    pid, tid, _comm, func, msg = lines[0].split(None, 4)
    assert (pid, tid, func) == (str(os.getpid()), str(os.getpid()), "sys_enter_getppid")
    assert msg.startswith("ppid of ") and lines[1] == "-->COUNT 4", out


@pytest.mark.needs_root
def test_unix_timestamps_and_cpu_columns() -> None:
    started = time.time()
    out, err = run_interrupted(
        ["trace", "-t", "-u", "-C", "-p", str(os.getpid()), "t:syscalls:sys_enter_getppid"],
        lambda h: h.split() == ["TIME", "CPU", "PID", "TID", "COMM", "FUNC"],
        lambda: [os.getppid() for _ in range(3)],
        lambda out: len(out.splitlines()) >= 3,
    )
    rows = [line.split() for line in out.splitlines()[1:]]
    assert len(rows) == 3, out
    for stamp, cpu, pid, tid, _comm, func in rows:
        assert started - 1 < float(stamp) < time.time() + 1, out
        assert cpu.isdigit() and int(cpu) < os.cpu_count()  # type: ignore[operator]
        assert (pid, tid, func) == (str(os.getpid()), str(os.getpid()), "sys_enter_getppid")


@pytest.mark.needs_root
def test_cgroup_path_keeps_only_that_cgroups_processes() -> None:
    root = cgroup2_root()
    cgroup = root / f"rbcc-trace-{os.getpid()}"
    cgroup.mkdir()
    inside: list[int] = []
    try:
        out, err = run_interrupted(
            ["trace", "-c", str(cgroup), 't:syscalls:sys_enter_getppid "%d", args->__syscall_nr'],
            lambda h: h.split() == ["PID", "TID", "COMM", "FUNC", "-"],
            lambda: [os.getppid(), inside.append(_getppid_in(cgroup, 3)), _getppid_in(None, 2)],
            lambda out: len(out.splitlines()) >= 3,
        )
    finally:
        cgroup.rmdir()
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[3]) for r in rows] == [(str(inside[0]), "sys_enter_getppid")] * 3, out
