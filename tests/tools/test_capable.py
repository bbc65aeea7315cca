"""capable: the C for each probe source and option, the choice of source, the one-line failure where
none exists, the kprobe C through the verifier, the fentry C compiled, and live runs on whichever
source the tool picks here (fentry or a kprobe on cap_capable, or the capability:cap_capable tracepoint)
that see the CAP_CHOWN checks of a child's chown()s. This kernel may have only the tracepoint and a
stock one (`make test-kernels`) only fentry and kprobes: the live tests run on both."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _bpfutil import run_interrupted

from rbcc import BPF, KernelFeatureError, _core
from rbcc.tools import capable


def _args(*argv: str):  # noqa: ANN202 (argparse.Namespace)
    return capable.build_parser().parse_args(list(argv))


def test_each_source_probes_cap_capable() -> None:
    assert "TRACEPOINT_PROBE(capability, cap_capable)" in capable.bpf_text(_args(), "tracepoint")
    assert "int trace_cap_capable(struct pt_regs *ctx)" in capable.bpf_text(_args(), "kprobe")
    assert "KFUNC_PROBE(cap_capable," in capable.bpf_text(_args(), "fentry")
    # the kprobe is attached by name: no auto-attached kprobe__ function
    assert "kprobe__" not in capable.bpf_text(_args(), "kprobe")


def test_options_in_the_c() -> None:
    plain = capable.bpf_text(_args(), "tracepoint", 99)
    assert "if (0 || tgid == 99)" in plain and "if (!0 && audit == 0)" in plain
    assert "#define UNIQUE 0\n" in plain and "#define KERNEL_STACKS 0\n" in plain
    text = capable.bpf_text(_args("-v", "-p", "181", "-K", "-U", "--unique"), "kprobe", 99)
    assert "if (tgid != 181 || tgid == 99)" in text and "if (!1 && audit == 0)" in text
    for define in ("UNIQUE 1", "KERNEL_STACKS 1", "USER_STACKS 1", "BY_CGROUP 0"):
        assert f"#define {define}\n" in text
    assert "#define BY_CGROUP 1\n" in capable.bpf_text(_args("--cgroupmap", "/sys/fs/bpf/x"))


def test_names_of_capabilities() -> None:
    assert capable.cap_name(0) == "CAP_CHOWN" and capable.cap_name(21) == "CAP_SYS_ADMIN"
    assert capable.cap_name(40) == "CAP_CHECKPOINT_RESTORE" and capable.cap_name(99) == "?"


def test_source_order_and_the_one_line_without_any(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(BPF, "support_kfunc", staticmethod(lambda: False))
    monkeypatch.setattr(_core, "has_kprobes", lambda: True)
    assert capable.probe_source() == "kprobe"
    monkeypatch.setattr(_core, "has_kprobes", lambda: False)
    monkeypatch.setattr(BPF, "tracepoint_exists", staticmethod(lambda category, event: False))
    with pytest.raises(KernelFeatureError):
        capable.probe_source()
    assert capable.main([]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"capable: {capable.MISSING}\n"
    assert "kprobe" in err and "fentry" in err and "capability:cap_capable" in err


@pytest.mark.needs_root
def test_kprobe_c_passes_the_verifier() -> None:
    for argv in ([], ["-v", "-K", "-U", "--unique", "-p", "1"]):
        with BPF(text=capable.bpf_text(_args(*argv), "kprobe", os.getpid())) as b:
            fn = b.load_func("trace_cap_capable", BPF.KPROBE)
            assert fn.fd >= 0


def test_fentry_c_compiles() -> None:
    compiled = _core.compile(capable.bpf_text(_args("-K", "--unique"), "fentry"), [], "<capable>")
    assert compiled.object[:4] == b"\x7fELF" and b"fentry/cap_capable" in compiled.object


@pytest.mark.without_kprobes
def test_kprobe_source_without_kprobes_names_the_feature() -> None:
    with BPF(text=capable.bpf_text(_args(), "kprobe")) as b:
        with pytest.raises(KernelFeatureError, match="kprobe"):
            b.attach_kprobe(event="cap_capable", fn_name="trace_cap_capable")


def _chowner(path: str, times: int) -> subprocess.Popen[bytes]:
    # waits for a line, then gives the file away (a CAP_CHOWN check each time) and exits
    code = f"import os, sys; sys.stdin.readline()\nfor _ in range({times}): os.chown({path!r}, 4321, 4321)"
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)


def _chown_rows(out: str, pid: int) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) >= 7 and f[2] == str(pid)]


def _live_source() -> str | None:
    """The source the tool will pick on this kernel (None: no source, or not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return capable.probe_source()
    except KernelFeatureError:
        return None


LIVE_SOURCE = _live_source()
needs_a_source = pytest.mark.skipif(
    LIVE_SOURCE is None,
    reason="needs root and fentry or a kprobe on cap_capable, or the capability:cap_capable tracepoint (Linux 6.13+)",
)


def _options_columns() -> tuple[str, str]:
    """(AUDIT, INSETID) of a chown()'s check: the function's probes see its options (audited, not
    setid), the tracepoint does not."""
    return ("N/A", "N/A") if LIVE_SOURCE == "tracepoint" else ("1", "0")


def _check_chown_rows(launch: list[str], options: tuple[str, str]) -> None:
    """Run capable -x -p CHILD through ``launch`` (``["tool", "capable"]`` or a script) while the child
    chown()s a file twice; its rows must be those four checks, with AUDIT and INSETID ``options``."""
    with tempfile.NamedTemporaryFile() as f:
        child = _chowner(f.name, 2)
        try:
            out, _ = run_interrupted(
                [*launch, "-x", "-p", str(child.pid)],
                lambda h: h.split() == ["TIME", "UID", "PID", "TID", "COMM", "CAP", "NAME", "AUDIT", "INSETID"],
                lambda: child.communicate(b"go\n"),
                lambda out: len([r for r in _chown_rows(out, child.pid) if r[6] == "CAP_CHOWN"]) >= 4,
            )
        finally:
            if child.poll() is None:
                child.kill()
    rows = _chown_rows(out, child.pid)
    assert rows and all(r[2] == str(child.pid) for r in rows)  # -p: this child only
    chown = [r for r in rows if r[6] == "CAP_CHOWN"]
    comm = os.path.basename(sys.executable)[:15]
    # TIME UID PID TID COMM CAP NAME AUDIT INSETID. Each chown() checks twice: giving the owner away,
    # and the group
    row = ["0", str(child.pid), str(child.pid), comm, "0", "CAP_CHOWN", *options]
    assert [r[1:] for r in chown] == [row] * 4, out
    assert all(len(line.split()) in (9, 1) or line.startswith("    ") for line in out.splitlines())


@pytest.mark.needs_root
@needs_a_source
def test_sees_a_childs_chown_checks_with_extra_columns() -> None:
    _check_chown_rows(["tool", "capable"], _options_columns())


# capable as on a kernel without fentry, where a kprobe is its next choice
WITHOUT_FENTRY = """import sys
from rbcc import BPF
from rbcc.tools import capable
BPF.support_kfunc = staticmethod(lambda: False)
sys.exit(capable.main(sys.argv[1:]))
"""


@pytest.mark.needs_kprobes
def test_the_kprobe_source_sees_the_options_too(tmp_path: Path) -> None:
    script = tmp_path / "capable_kprobe.py"
    script.write_text(WITHOUT_FENTRY)
    _check_chown_rows(["run", str(script)], ("1", "0"))


@pytest.mark.needs_root
@needs_a_source
def test_unique_kernel_stacks_show_a_repeated_check_once() -> None:
    with tempfile.NamedTemporaryFile() as f:
        child = _chowner(f.name, 3)
        try:
            out, _ = run_interrupted(
                ["tool", "capable", "-K", "--unique", "-p", str(child.pid)],
                lambda h: h.split() == ["TIME", "UID", "PID", "COMM", "CAP", "NAME", "AUDIT"],
                lambda: child.communicate(b"go\n"),
                lambda out: out.count("chown_common") >= 2,
            )
        finally:
            if child.poll() is None:
                child.kill()
    lines = out.splitlines()
    stacks = []
    for i in (i for i, line in enumerate(lines) if "CAP_CHOWN" in line):
        stack = []
        for line in lines[i + 1 :]:
            if not line.startswith("        "):
                break
            stack.append(line.strip())
        stacks.append(stack)
    # three chowns make six checks from two places (owner, group): each place is shown once
    assert len(stacks) == 2 and stacks[0] != stacks[1], out
    for stack in stacks:
        # the tracepoint and the kprobe stop in cap_capable itself; fentry's stack starts in the BPF
        # program and its trampoline, called from cap_capable
        at = next((i for i, f in enumerate(stack) if f.startswith("cap_capable+")), None)
        assert at is not None and (at == 0 or LIVE_SOURCE == "fentry"), stack
        assert any(f.startswith("chown_common+") for f in stack[at:]), stack
