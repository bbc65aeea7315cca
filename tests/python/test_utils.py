"""rbcc.utils and rbcc.syscall: the helper modules bcc tools import as bcc.utils and bcc.syscall."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from rbcc import utils
from rbcc.syscall import syscall_name, syscalls


def test_printb_writes_bytes_and_a_newline() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    utils.printb(b"comm\xff", file=out)
    utils.printb(b"-no-newline", file=out, nl=0)
    assert raw.getvalue() == b"comm\xff\n-no-newline"


def test_argstring_compares_as_bytes() -> None:
    arg = utils.ArgString("bash")
    assert bytes(arg) == b"bash"
    assert str(arg) == "bash"
    assert utils._assert_is_bytes("x") == b"x"
    assert utils._assert_is_bytes(b"y") == b"y"
    assert utils._assert_is_bytes(None) is None


def test_cpu_lists() -> None:
    online = utils.get_online_cpus()
    assert len(online) == os.cpu_count()
    assert set(online) <= set(utils.get_possible_cpus())


def test_detect_language_of_this_interpreter() -> None:
    assert utils.detect_language(["java", "python", "ruby"], os.getpid()) == "python"
    assert utils.detect_language(["java", "ruby"], os.getpid()) is None
    # every process maps libc: "c" first in the list must not win over the runtime that is there
    assert utils.detect_language(["c", "java", "python"], os.getpid()) == "python"


def test_detect_language_of_a_c_program() -> None:
    import subprocess

    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"up\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"up\n"  # cat runs: its libraries are mapped
        assert utils.detect_language(["c", "java", "python"], proc.pid) == "c"
        assert utils.detect_language(["java", "python"], proc.pid) is None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the numbers checked are x86_64's")
def test_syscall_names_on_x86_64() -> None:
    assert syscall_name(0) == b"read"
    assert syscall_name(59) == b"execve"
    assert syscall_name(110) == b"getppid"
    assert syscalls[1] == b"write"
    assert syscall_name(99999) == b"[unknown: 99999]"


def test_tcp_states_and_flags() -> None:
    from rbcc import tcp

    assert tcp.tcpstate[1] == "ESTABLISHED" and tcp.tcpstate[10] == "LISTEN" and tcp.tcpstate[12] == "NEW_SYN_RECV"
    assert tcp.flags2str(tcp.TCPHDR_SYN | tcp.TCPHDR_ACK) == "SYN|ACK"
    assert tcp.flags2str(0) == ""


def test_strcmp_rewrite_generates_a_string_compare() -> None:
    out = utils.StrcmpRewrite.rewrite_expr('STRCMP("bash", arg1) && x', False, True, [], "", 3)
    assert out["expr"] == 'streq_3("bash", arg1) && x'
    assert out["probeid"] == 4
    assert 'char needle[] = "bash";' in out["streq_functions"]
    assert "bpf_probe_read_user" in out["streq_functions"]


@pytest.mark.needs_root
def test_strcmp_helper_matches_a_user_string_in_the_kernel(tmp_path: Path) -> None:
    from rbcc import BPF

    wanted = str(tmp_path / "wanted")
    out = utils.StrcmpRewrite.rewrite_expr(f'STRCMP("{wanted}", args->filename)', False, True, [], "", 0)
    text = out["streq_functions"] + (
        "BPF_ARRAY(hits, u64, 2);\n"
        "TRACEPOINT_PROBE(syscalls, sys_enter_openat) {\n"
        f"    if ((bpf_get_current_pid_tgid() >> 32) != {os.getpid()}) return 0;\n"
        f"    int i = {out['expr'].replace('args->filename', '(uintptr_t)args->filename')} ? 0 : 1;\n"
        "    hits.atomic_increment(i);\n"
        "    return 0;\n"
        "}\n"
    )
    for name in ("wanted", "other"):
        (tmp_path / name).touch()
    with BPF(text=text) as b:
        for name in ("wanted", "other", "wanted"):
            os.close(os.open(tmp_path / name, os.O_RDONLY))
        assert [b["hits"][i].value for i in range(2)] == [2, 1]
