"""Helpers bcc tools import from ``bcc.utils``: byte-string printing, argument strings, CPU lists."""

from __future__ import annotations

import os
import re
import sys
import traceback
import warnings
from typing import IO, Any

__all__ = [
    "FILESYSTEMENCODING",
    "ArgString",
    "StrcmpRewrite",
    "as_str",
    "detect_language",
    "disable_stdout",
    "get_online_cpus",
    "get_possible_cpus",
    "printb",
    "warn_with_traceback",
]

FILESYSTEMENCODING = sys.getfilesystemencoding()


def as_str(value: str | bytes) -> str:
    """bcc took bytes where rbcc takes str: accept both."""
    return value.decode() if isinstance(value, (bytes, bytearray)) else value


def _cpu_list(path: str) -> list[int]:
    """CPU numbers from a kernel CPU-list file ("0-3,6,8-9")."""
    with open(path) as f:
        spec = f.read().strip()
    cpus: list[int] = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def get_online_cpus() -> list[int]:
    return _cpu_list("/sys/devices/system/cpu/online")


def get_possible_cpus() -> list[int]:
    return _cpu_list("/sys/devices/system/cpu/possible")


def printb(s: bytes, file: IO[Any] = sys.stdout, nl: int = 1) -> None:
    """Write bytes (kernel strings, never decoded) to ``file`` and flush, with a newline unless ``nl=0``."""
    out = getattr(file, "buffer", file)
    out.write(s)
    if nl:
        out.write(b"\n")
    file.flush()


class ArgString:
    """A command-line argument that compares as bytes with data from the kernel (``bytes(arg)``)."""

    def __init__(self, arg: str) -> None:
        self.s = arg

    def __bytes__(self) -> bytes:
        return self.s.encode(FILESYSTEMENCODING)

    def __str__(self) -> str:
        return self.s


def warn_with_traceback(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: IO[str] | None = None,
    line: str | None = None,
) -> None:
    """A ``warnings.showwarning`` that prints the stack that led to the warning before it (bcc's, for
    ``warnings.showwarning = warn_with_traceback``)."""
    log = file if file is not None and hasattr(file, "write") else sys.stderr
    traceback.print_stack(f=sys._getframe(2), file=log)
    log.write(warnings.formatwarning(message, category, filename, lineno, line))


def _assert_is_bytes(arg: Any) -> bytes | None:
    """bcc's coercion of str arguments to bytes (it warns; rbcc takes str and bytes alike)."""
    if arg is None or isinstance(arg, bytes):
        return arg
    return bytes(ArgString(str(arg)))


def disable_stdout() -> tuple[IO[Any], Any]:
    """Send stdout to /dev/null; returns the old stdout and a printb that prints nothing."""
    orig = sys.stdout
    sys.stdout = open(os.devnull, "w", buffering=1)  # noqa: SIM115 - replaces stdout for the process

    def silent(s: bytes, file: IO[Any] = sys.stdout, nl: int = 1) -> None:
        return None

    return orig, silent


def detect_language(candidates: list[str], pid: int) -> str | None:
    """The language runtime of process ``pid`` among ``candidates`` (java, node, perl, php, python, ruby),
    judged by the executable and the libraries it maps."""
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        with open(f"/proc/{pid}/maps") as f:
            libs = {os.path.basename(line.split()[-1]) for line in f if "/" in line}
    except OSError:
        return None
    markers = {
        "java": ("java", "libjvm.so"),
        "node": ("node", "libnode.so"),
        "perl": ("perl", "libperl.so"),
        "php": ("php", "libphp"),
        "python": ("python", "libpython"),
        "ruby": ("ruby", "libruby"),
        "tcl": ("tclsh", "libtcl"),
    }
    # Every process maps libc: "c" answers only when no runtime among the candidates is there. The
    # executable's name is the stronger sign, so all candidates are tried on it before their libraries.
    runtimes = [lang for lang in candidates if lang != "c"]
    for lang in runtimes:
        if exe.startswith(markers.get(lang, (lang, ""))[0]):
            return lang
    for lang in runtimes:
        lib_prefix = markers.get(lang, ("", f"lib{lang}"))[1]
        if any(lib.startswith(lib_prefix) for lib in libs):
            return lang
    if "c" in candidates and any(lib.startswith("libc.so") or lib.startswith("libc-") for lib in libs):
        return "c"
    return None


class StrcmpRewrite:
    """``STRCMP("literal", expr)`` in trace/argdist filters → a call of a generated BPF helper that reads
    the string ``expr`` points to and compares it with the literal (bcc's ``StrcmpRewrite``)."""

    @staticmethod
    def _streq_function(literal: str, read_fn: str, probeid: int) -> tuple[str, str]:
        name = f"streq_{probeid}"
        text = f"""
static inline bool {name}(char const *ignored, uintptr_t str) {{
    char needle[] = {literal};
    char haystack[sizeof(needle)] = {{}};
    {read_fn}(&haystack, sizeof(haystack), (void *)str);
    for (int i = 0; i < sizeof(needle) - 1; ++i) {{
        if (needle[i] != haystack[i])
            return false;
    }}
    return true;
}}
"""
        return name, text

    @staticmethod
    def rewrite_expr(
        expr: str, bin_cmp: bool, is_user: bool, probe_user_list: Any, streq_functions: str, probeid: int
    ) -> dict[str, Any]:
        # bin_cmp: the literal is written bare (STRCMP("abc",x) in argdist's binary comparisons)
        pattern = r'STRCMP\("([^"]+)",(.+?)\)' if bin_cmp else r'STRCMP\(("[^"]+"),(.+?)\)'
        for match in re.finditer(pattern, expr):
            literal, target = match.group(1), match.group(2).strip()
            user = is_user or target in (probe_user_list or ())
            read_fn = "bpf_probe_read_user" if user else "bpf_probe_read_kernel"
            name, text = StrcmpRewrite._streq_function(literal, read_fn, probeid)
            streq_functions += text
            probeid += 1
            expr = expr.replace("STRCMP", name, 1)
        return {"expr": expr, "streq_functions": streq_functions, "probeid": probeid}
