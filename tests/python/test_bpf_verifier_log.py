"""The verifier's log on stderr, as bcc prints it: for a program it rejects (loaded by BPF() or at its
first attach), and with DEBUG_BPF for every program it loads; ``quiet=True`` prints nothing, while the
``VerifierError`` carries the log either way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import child_env

import rbcc
from rbcc import BPF, DEBUG_BPF, DEBUG_BPF_REGISTER_STATE

pytestmark = pytest.mark.needs_root

UNCHECKED_LOOKUP = r"""
BPF_HASH(h, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 k = 0;
    u64 *v = h.lookup(&k);
    return *v;
}
"""

LAZY_FALLBACK = r"""
BPF_HASH(h, u32, u64);
int good(void *ctx) { return 0; }
int bad(void *ctx) {
    u32 k = 0;
    u64 *v = h.lookup(&k);
    return *v;
}
"""

GOOD = "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }"


def test_a_rejected_program_prints_its_log_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(rbcc.VerifierError) as info:
        BPF(text=UNCHECKED_LOOKUP)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.startswith("bpf: Failed to load program: "), err
    assert info.value.log in err  # the whole log, as the error carries it
    assert "invalid mem access 'map_value_or_null'" in err
    assert "HINT: a pointer that may be NULL" in err


def test_the_log_goes_through_sys_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # Python's stderr, not file descriptor 2 under it: a notebook shows what it gets there
    with pytest.raises(rbcc.VerifierError):
        BPF(text=UNCHECKED_LOOKUP)
    assert "map_value_or_null" in capsys.readouterr().err


def test_a_function_rejected_at_its_first_attach_prints_its_log(capfd: pytest.CaptureFixture[str]) -> None:
    with BPF(text=LAZY_FALLBACK) as b:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="good")
        assert capfd.readouterr().err == ""
        with pytest.raises(rbcc.VerifierError) as info:
            b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="bad")
        err = capfd.readouterr().err
        assert "bpf: Failed to load program" in err and info.value.log in err


def test_quiet_prints_nothing_and_the_error_keeps_the_log(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(rbcc.VerifierError) as info:
        BPF(text=UNCHECKED_LOOKUP, quiet=True)
    assert capfd.readouterr().err == ""
    assert "map_value_or_null" in info.value.log and str(info.value).endswith(info.value.log)
    with BPF(text=LAZY_FALLBACK, quiet=True) as b, pytest.raises(rbcc.VerifierError):
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="bad")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("debug", [DEBUG_BPF, DEBUG_BPF_REGISTER_STATE])
def test_debug_bpf_prints_the_log_of_every_program_loaded(capfd: pytest.CaptureFixture[str], debug: int) -> None:
    # bcc asks for the verifier's log (level 1, or 2 with the register state) and prints it on success too
    with BPF(text=GOOD, debug=debug) as b:
        err = capfd.readouterr().err
        assert "bpf: verifier log of tracepoint__syscalls__sys_enter_getppid:" in err
        assert "processed " in err and " insns" in err
        b.attach_raw_tracepoint(tp="sched_switch", fn_name="tracepoint__syscalls__sys_enter_getppid")
    # the function loaded again as a raw tracepoint program logs again
    assert "verifier log of tracepoint__syscalls__sys_enter_getppid" in capfd.readouterr().err


def test_no_debug_and_success_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with BPF(text=GOOD):
        pass
    assert capfd.readouterr().err == ""


def test_rbcc_run_prints_the_log_once(tmp_path: Path) -> None:
    # a bcc script whose program the verifier rejects: bcc's log on stderr, then the error's one line
    script = tmp_path / "rejected.py"
    script.write_text(f"from bcc import BPF\nBPF(text={UNCHECKED_LOOKUP!r})\n")
    out = subprocess.run(
        [sys.executable, "-m", "rbcc", "run", str(script)], capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert out.returncode == 1
    assert out.stderr.count("invalid mem access 'map_value_or_null'") == 1, out.stderr
    assert out.stderr.startswith("bpf: Failed to load program: ")
    last = out.stderr.rstrip().splitlines()[-1]
    assert "VerifierError: the BPF verifier rejected the program" in last
    assert last.endswith("(the verifier's log is above)") and "Traceback" not in out.stderr


def test_the_error_says_whether_its_log_was_printed() -> None:
    for quiet in (False, True):
        with pytest.raises(rbcc.VerifierError) as info:
            BPF(text=UNCHECKED_LOOKUP, quiet=quiet)
        assert info.value.log_printed is not quiet
