"""What a user sees when a program is wrong or the kernel can't do what it asks (real compiler, real kernel)."""

from __future__ import annotations

import builtins
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import child_env

import rbcc
from rbcc import BPF
from rbcc.errors import Diagnostic

# line 3 uses an identifier nobody declared
UNDECLARED = """\
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    return no_such_identifier_here;
}
"""

UNCHECKED_LOOKUP = r"""
BPF_HASH(h, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 k = 0;
    u64 *v = h.lookup(&k);
    return *v;
}
"""

KPROBE_AUTO = "int kprobe__do_nanosleep(struct pt_regs *ctx) { return 0; }\n"

ON_CONNECT = r"""
#include <net/sock.h>
BPF_HASH(ports, u32, u16);
int on_connect(struct pt_regs *ctx, struct sock *sk) {
    u16 dport = sk->__sk_common.skc_dport;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    ports.update(&pid, &dport);
    return 0;
}
"""


@pytest.mark.needs_root
def test_compile_error_points_at_the_users_line() -> None:
    with pytest.raises(rbcc.CompileError) as info:
        BPF(text=UNDECLARED)
    message = str(info.value)
    assert "<bpf text>:3:" in message
    assert "no_such_identifier_here" in message
    assert "error" in message


@pytest.mark.needs_root
def test_compile_error_diagnostics_are_records_at_the_users_line() -> None:
    with pytest.raises(rbcc.CompileError) as info:
        BPF(text=UNDECLARED)
    [diagnostic] = info.value.diagnostics
    # "    return no_such_identifier_here;": the identifier starts at column 12
    assert diagnostic[:4] == ("<bpf text>", 3, 12, "error")
    assert diagnostic.message == "use of undeclared identifier 'no_such_identifier_here'"
    assert isinstance(diagnostic, Diagnostic)


# line 3 needs more than the 512 bytes of BPF stack: clang's backend (not the parser) rejects it
BIG_STACK = """\
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    char buf[700] = {};
    bpf_get_current_comm(buf, sizeof(buf));
    events.perf_submit(args, buf, sizeof(buf));
    return 0;
}
"""


@pytest.mark.needs_root
def test_backend_compile_error_points_at_the_users_line() -> None:
    with pytest.raises(rbcc.CompileError) as info:
        BPF(text=BIG_STACK)
    message = str(info.value)
    assert "<bpf text>:3:" in message
    assert "stack limit" in message


@pytest.mark.needs_root
def test_backend_compile_error_diagnostics_are_records_at_the_users_line() -> None:
    with pytest.raises(rbcc.CompileError) as info:
        BPF(text=BIG_STACK)
    # clang's backend repeats the complaint for each place it meets it: one record is enough
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.severity) == ("<bpf text>", 3, "error")
    assert "stack limit" in diagnostic.message


@pytest.mark.needs_root
def test_backend_compile_error_holds_only_the_users_diagnostics() -> None:
    with pytest.raises(rbcc.CompileError) as info:
        BPF(text=BIG_STACK)
    message = str(info.value)
    assert "kdefs.h" not in message
    assert "warning" not in message


SIGNED_DIVISION = r"""
TRACEPOINT_PROBE(syscalls, sys_enter_read) {
    int a = args->count, b = args->fd;
    bpf_trace_printk("%d", a / b);
    return 0;
}
"""


@pytest.mark.needs_root
def test_a_crash_of_clangs_code_generator_says_what_to_change_and_leaves_no_files(tmp_path: Path) -> None:
    env_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path)  # where clang would write its crash reproducer
    try:
        with pytest.raises(rbcc.CompileError) as info:
            BPF(text=SIGNED_DIVISION)
    finally:
        if env_tmp is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = env_tmp
    # LLVM up to 16 says "Error at line 4" and crashes, 18 and later "<bpf text>:4:5: error" (llvm.rs)
    message = str(info.value)
    assert [d.line for d in info.value.diagnostics] == [4] and "unsigned div/mod" in message, message
    assert "Stack dump" not in message and "PLEASE submit" not in message and len(message.splitlines()) < 8, message
    assert list(tmp_path.iterdir()) == []


# line 9 uses the value a 32-bit atomic add returns: BPF's v3 instructions have it, v1 does not
ATOMIC_RESULT = r"""
struct v_t { u32 calls; u32 spare; };
BPF_HASH(h, u32, struct v_t);
BPF_ARRAY(seen, u32, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 k = bpf_get_current_pid_tgid() >> 32, zero = 0;
    struct v_t init = {}, *v = h.lookup_or_try_init(&k, &init);
    if (!v) return 0;
    u32 before = __sync_fetch_and_add(&v->calls, 1);
    seen.update(&zero, &before);
    return 0;
}
"""


@pytest.mark.needs_root
def test_an_atomic_result_says_which_flag_compiles_it_and_that_flag_does() -> None:
    try:
        BPF(text=ATOMIC_RESULT).cleanup()
    except rbcc.CompileError as e:
        message = str(e)
        assert [d.line for d in e.diagnostics] == [9], message
        assert 'pass cflags=["-mcpu=v3"] (this kernel runs them)' in message, message
    # else: this LLVM compiles for v3 unless told otherwise (20 and later)
    with BPF(text=ATOMIC_RESULT, cflags=["-mcpu=v3"]) as b:
        for _ in range(3):
            os.getppid()
        assert b["h"][b["h"].Key(os.getpid())].calls == 3
        assert b["seen"][0].value == 2


@pytest.mark.needs_root
def test_verifier_error_carries_the_log() -> None:
    with pytest.raises(rbcc.VerifierError) as info:
        BPF(text=UNCHECKED_LOOKUP)
    message = str(info.value)
    assert "invalid mem access" in message
    assert "map_value_or_null" in message
    assert "tracepoint__syscalls__sys_enter_getppid" in message
    # the log quotes the user's source line; kernels that also print where it is (6.x later than 6.1)
    # name the text's line 6 in main.c
    assert "; return *v;" in message
    if " @ " in message:
        assert "return *v; @ main.c:6" in message


@pytest.mark.needs_root
def test_verifier_error_has_the_log_and_the_instruction_it_stopped_at() -> None:
    with pytest.raises(rbcc.VerifierError) as info:
        BPF(text=UNCHECKED_LOOKUP)
    error = info.value
    assert str(error).endswith(error.log)
    assert "invalid mem access 'map_value_or_null'" in error.log
    # the instruction is the log's last: the load through the pointer that may be NULL
    assert isinstance(error.insn, int)
    insns = [line for line in error.log.splitlines() if line.split(": (", 1)[0].isdigit()]
    assert insns[-1].startswith(f"{error.insn}: (")
    assert "*(u64 *)" in insns[-1]


@pytest.mark.needs_root
def test_a_refused_helper_call_is_the_instruction_named() -> None:
    text = r"""
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        bpf_xdp_adjust_head((void *)args, 4);  // a helper tracepoints may not call
        return 0;
    }
    """
    with pytest.raises(rbcc.VerifierError) as info:
        BPF(text=text)
    # the refusal's wording differs between kernels ("unknown func", "cannot use helper"); the
    # instruction it names does not
    assert info.value.insn is not None
    assert f"{info.value.insn}: (85) call bpf_xdp_adjust_head" in info.value.log


@pytest.mark.needs_root
def test_verifier_log_names_the_users_file(tmp_path: Path) -> None:
    source = tmp_path / "unchecked.c"
    source.write_text(UNCHECKED_LOOKUP)
    with pytest.raises(rbcc.VerifierError) as info:
        BPF(src_file=str(source))
    message = str(info.value)
    if " @ " not in message:
        pytest.skip("this kernel's verifier log gives no source locations (they came after 6.1)")
    assert "return *v; @ unchecked.c:6" in message


@pytest.mark.without_kprobes
def test_auto_attached_kprobe_names_the_missing_feature() -> None:
    with pytest.raises(rbcc.KernelFeatureError) as info:
        BPF(text=KPROBE_AUTO)
    message = str(info.value)
    assert "kprobe" in message
    assert "do_nanosleep" in message
    assert "tracepoint" in message


@pytest.mark.without_kprobes
def test_kprobe_program_loads_but_attach_is_refused() -> None:
    # The struct-pointer argument and sk->... dereference must make it through the verifier, which runs
    # (the function is loaded as a kprobe) before the attach is refused.
    with BPF(text=ON_CONNECT) as b:
        assert "ports" in b
        with pytest.raises(rbcc.KernelFeatureError) as info:
            b.attach_kprobe(event="tcp_v4_connect", fn_name="on_connect")
        message = str(info.value)
        assert "kprobe" in message and "tcp_v4_connect" in message and "tracepoint" in message
        assert b.num_open_kprobes() == 0
        error = info.value
        assert error.feature == "kprobes"
        assert error.alternative and error.alternative in message and "tracepoint" in error.alternative
        assert error.target == "kprobe tcp_v4_connect"
        with pytest.raises(rbcc.KernelFeatureError):
            b.attach_kretprobe(event="tcp_v4_connect", fn_name="on_connect")


@pytest.mark.needs_root
def test_unknown_function_name_is_an_error() -> None:
    with BPF(text=ON_CONNECT) as b, pytest.raises(rbcc.BPFError, match="no_such_fn"):
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="no_such_fn")


# sched_switch passes (preempt, prev, next, prev_state): compactsnoop-style scripts written for
# another kernel read arguments that are not there
RAW_PAST_ARGS = r"""
RAW_TRACEPOINT_PROBE(sched_switch) {
    bpf_trace_printk("%lu\\n", ctx->args[7]);
    return 0;
}
"""


@pytest.mark.needs_root
def test_raw_tracepoint_reading_past_its_arguments_names_their_count() -> None:
    with pytest.raises(rbcc.AttachError, match=r"sched_switch passes 4 argument\(s\).*args\[3\]"):
        BPF(text=RAW_PAST_ARGS)


@pytest.mark.needs_root
def test_missing_raw_tracepoint_is_named() -> None:
    with BPF(
        text=RAW_PAST_ARGS.replace(
            "RAW_TRACEPOINT_PROBE(sched_switch)", "int on_raw(struct bpf_raw_tracepoint_args *ctx)"
        )
    ) as b:
        with pytest.raises(rbcc.AttachError, match="no raw tracepoint no_such_event") as info:
            b.attach_raw_tracepoint(tp="no_such_event", fn_name="on_raw")
        assert info.value.target == "raw_tracepoint no_such_event"
        assert b.num_open_tracepoints() == 0


@pytest.mark.needs_root
def test_missing_tracepoint_is_named_as_the_attach_target() -> None:
    with BPF(text="int on_tp(void *ctx) { return 0; }") as b:
        with pytest.raises(rbcc.AttachError) as info:
            b.attach_tracepoint(tp="sched:rbcc_no_such_event", fn_name="on_tp")
        assert type(info.value) is rbcc.AttachError
        assert info.value.target == "tracepoint sched:rbcc_no_such_event"
        assert str(info.value).startswith("tracepoint sched:rbcc_no_such_event does not exist on this kernel")


LICENSED = r"""
#define BPF_LICENSE LICENSE
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    bpf_trace_printk("getppid\\n");  // a GPL-only helper
    return 0;
}
"""


@pytest.mark.needs_root
def test_bpf_license_names_the_programs_license() -> None:
    # bcc's `#define BPF_LICENSE`: without it a program is GPL; a proprietary one cannot call GPL-only helpers
    with pytest.raises(rbcc.CompileError, match='bpf_trace_printk.. is a GPL-only helper.*"Proprietary"'):
        BPF(text=LICENSED.replace("LICENSE\n", "Proprietary\n", 1))
    with BPF(text=LICENSED.replace("LICENSE\n", "Dual BSD/GPL\n", 1)) as b:
        assert b.num_open_tracepoints() == 1


@pytest.mark.needs_root
def test_an_unresolved_kernel_symbol_is_named() -> None:
    text = r"""
    extern const void rbcc_no_such_symbol __ksym;
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        bpf_trace_printk("%lx\\n", (u64)&rbcc_no_such_symbol);
        return 0;
    }
    """
    with pytest.raises(rbcc.BPFError, match=r"extern 'rbcc_no_such_symbol' \(strong\): not resolved"):
        BPF(text=text)


@pytest.mark.parametrize(
    "cls",
    [
        rbcc.AttachError,
        rbcc.CompileError,
        rbcc.KernelFeatureError,
        rbcc.PermissionError,
        rbcc.ProbeSpecError,
        rbcc.VerifierError,
    ],
)
def test_every_error_is_a_bpf_error(cls: type[Exception]) -> None:
    assert issubclass(cls, rbcc.BPFError)
    assert issubclass(cls, Exception)
    assert cls is getattr(rbcc.errors, cls.__name__)
    with pytest.raises(rbcc.BPFError):
        raise cls("boom")


def test_errors_raised_with_only_a_message_have_empty_fields() -> None:
    assert rbcc.CompileError("boom").diagnostics == []
    verifier = rbcc.VerifierError("boom")
    assert (verifier.log, verifier.insn) == ("", None)
    assert rbcc.AttachError("boom").target == ""
    feature = rbcc.KernelFeatureError("boom")
    assert (feature.feature, feature.alternative, feature.target) == ("", "", "")
    assert rbcc.USDTException("boom").target == ""
    for error in (rbcc.CompileError("boom"), verifier, feature):
        assert str(error) == "boom"


def test_errors_keep_their_fields_through_pickle() -> None:
    error = rbcc.CompileError("x:1:2: error: y", [("x", 1, 2, "error", "y")])
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.diagnostics) == (str(error), [Diagnostic("x", 1, 2, "error", "y")])
    feature = pickle.loads(pickle.dumps(rbcc.KernelFeatureError("m", "kprobes", "a tracepoint", "kprobe f")))
    assert (feature.feature, feature.alternative, feature.target) == ("kprobes", "a tracepoint", "kprobe f")


def test_permission_and_probe_spec_errors_are_the_builtin_kinds_too() -> None:
    assert issubclass(rbcc.PermissionError, builtins.PermissionError)
    assert issubclass(rbcc.ProbeSpecError, ValueError)


def test_bpf_error_is_an_exception() -> None:
    assert issubclass(rbcc.BPFError, Exception)
    assert issubclass(rbcc.KernelFeatureError, rbcc.AttachError)


@pytest.mark.needs_root
def test_missing_privileges_name_the_capabilities() -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot drop capabilities for the test")
    script = (
        "import rbcc\n"
        "try:\n"
        f"    rbcc.BPF(text={UNDECLARED.replace('no_such_identifier_here', '0')!r})\n"
        "except rbcc.PermissionError as e:\n"
        "    print('PermissionError:', e)\n"
    )
    # root without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN: what a user without privileges meets
    out = subprocess.run(
        [setpriv, "--bounding-set", "-bpf,-perfmon,-sys_admin", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("PermissionError:")
    assert "CAP_BPF" in out.stdout
    assert "skipping optional step" not in out.stdout


# a fallback the script never attaches (like bcc tools' kprobe variants) must not stop the others
UNUSED_BAD_FALLBACK = r"""
BPF_HASH(h, u32, u64);
int fallback(struct pt_regs *ctx) {
    u32 k = 0;
    u64 *v = h.lookup(&k);
    return *v;
}
int count(void *ctx) {
    u32 k = bpf_get_current_pid_tgid() >> 32;
    h.increment(k);
    return 0;
}
"""


@pytest.mark.needs_root
def test_functions_are_verified_when_first_attached() -> None:
    with BPF(text=UNUSED_BAD_FALLBACK) as b:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="count")
        os.getppid()
        assert b["h"][os.getpid()].value >= 1
        with pytest.raises(rbcc.VerifierError, match="map_value_or_null"):
            b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="fallback")
        assert b.num_open_tracepoints() == 1


GETPPID = "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }"


@pytest.mark.needs_root
@pytest.mark.parametrize(
    "cflags, named",
    [
        (["-fplugin=/tmp/rbcc-no-such-plugin.so"], "-fplugin="),
        (["-Xclang", "-load", "-Xclang", "/tmp/x.so"], "-Xclang"),
        (["-MD", "-MF", "TMP/deps"], "-MD"),
        (["-save-temps=obj", "-o", "TMP/x.o"], "-save-temps"),
        (["--serialize-diagnostics", "TMP/diag"], "--serialize-diagnostics"),
        (["-Wp,-MD,TMP/deps"], "-Wp,"),
        (["-include", "/etc/shadow"], "/etc/shadow"),
        (["-I/tmp", "-include", "/etc/passwd"], "/etc/passwd"),
        (["-DX\0Y"], "NUL"),
    ],
)
def test_flags_that_run_code_or_touch_other_files_are_refused(cflags: list[str], named: str, tmp_path: Path) -> None:
    cflags = [f.replace("TMP", str(tmp_path)) for f in cflags]
    with pytest.raises(ValueError, match="is not accepted") as err:
        BPF(text=GETPPID, cflags=cflags)
    assert named in str(err.value)
    assert list(tmp_path.iterdir()) == []  # clang wrote nothing there


def test_a_nul_in_a_flag_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"cflag \"-DA=\\0\" is not accepted: it holds a NUL byte"):
        BPF(text=GETPPID, cflags=["-DA=\x00"])


@pytest.mark.parametrize("flag", [1, None, ["-DX"]])
def test_a_flag_that_is_no_string_is_a_type_error(flag: object) -> None:
    with pytest.raises(TypeError, match="cflags holds strings"):
        BPF(text=GETPPID, cflags=["-DA=1", flag])  # type: ignore[list-item]


@pytest.mark.parametrize("contexts", [[5], ["provider:probe"]])
def test_usdt_contexts_that_are_no_usdt_objects_are_a_type_error(contexts: list[object]) -> None:
    with pytest.raises(TypeError, match="usdt_contexts holds USDT objects"):
        BPF(text=GETPPID, usdt_contexts=contexts)


def test_one_string_where_a_list_of_flags_belongs_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cflags=\['-DX=1'\]"):
        BPF(text=GETPPID, cflags="-DX=1")  # type: ignore[arg-type]


@pytest.mark.needs_root
def test_flags_that_shape_the_program_pass(tmp_path: Path) -> None:
    (tmp_path / "mine.h").write_text("#define RBCC_TEST_RET 0\n")
    flags = [
        "-DRBCC_TEST_A=1",
        "-URBCC_TEST_B",
        "-Wall",
        "-Wno-unused-variable",
        "-O2",
        "-std=gnu11",
        f"-I{tmp_path}",
        "-include",
        "mine.h",
    ]
    with BPF(text="TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return RBCC_TEST_RET; }", cflags=flags) as b:
        assert b.num_open_tracepoints() == 1


@pytest.mark.needs_root
def test_an_include_of_a_device_is_a_compile_error_at_its_line() -> None:
    with pytest.raises(rbcc.CompileError, match=r'line 2: #include "/dev/zero": /dev/zero is not a regular file'):
        BPF(text='// reads forever\n#include "/dev/zero"\n' + GETPPID)


def test_program_bytes_that_are_not_utf8_are_a_compile_error_at_their_line(tmp_path: Path) -> None:
    text = b"// caf\xc3\xa9 is fine\n// but not \xff here\n" + GETPPID.encode()
    with pytest.raises(rbcc.CompileError, match=r"^<bpf text>:2:12: error: byte 0xff is not UTF-8") as info:
        BPF(text=text)
    assert [d[:4] for d in info.value.diagnostics] == [("<bpf text>", 2, 12, "error")]
    src = tmp_path / "prog.c"
    src.write_bytes(text)
    with pytest.raises(rbcc.CompileError, match=rf"^{src}:2:12: error: byte 0xff"):
        BPF(src_file=str(src))
