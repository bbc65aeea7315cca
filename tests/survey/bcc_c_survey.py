"""Survey: does rbcc compile the C of bcc's own tools and examples, and which names they use does it lack?

Not a test (pytest does not collect it): a tool for finding what the C dialect still misses. It needs
Debian's bcc (bpfcc-tools, python3-bpfcc) and root, and takes a few minutes::

    sudo python3 tests/survey/bcc_c_survey.py [OUTDIR]

1. Each tool (/usr/sbin/*-bpfcc and bcc's language tools) and example script runs under the system
   Python with real bcc imported, except that ``BPF()`` writes the text and cflags it was given to
   OUTDIR and exits: the C exactly as the tool builds it, placeholders substituted.
2. Each text is compiled with rbcc (``_core.compile``, no load).
3. Every ALL_CAPS name in the tools' C (their texts and each C-looking string literal of their Python,
   so options a run did not take count too) that the text does not define itself nor replace from
   Python is compiled against rbcc's headers: the undeclared ones are listed with their users.
"""

from __future__ import annotations

import ast
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from rbcc import CompileError, _core

EXAMPLES = Path("/usr/share/doc/bpfcc-tools/examples")
LANGUAGE_TOOLS = ["ucalls", "uflow", "ugc", "uobjnew", "ustat", "uthreads"]
# the arguments a tool needs before it builds its program
ARGS = {
    "argdist": ["-C", "p::vfs_read(struct file *f):int:f->f_flags"],
    "biolatpcts": ["sda"],
    "dirtop": ["-d", "/tmp"],
    "funccount": ["vfs_read"],
    "funclatency": ["vfs_read"],
    "funcslower": ["vfs_read"],
    "funcinterval": ["vfs_read"],
    "stackcount": ["submit_bio"],
    "trace": ['do_sys_openat2 "%d", arg1'],
    "inject": ["kmalloc", "-I", "net/sock.h", "(true)"],
    "netqtop": ["-n", "lo"],
    "deadlock": [str(os.getpid())],
    "ucalls": ["-l", "python", "1"],
    "uflow": ["-l", "python", "1"],
    "ugc": ["-l", "java", "1"],
    "uobjnew": ["-l", "c", "1"],
    "ustat": ["-l", "python"],
    "uthreads": ["1"],
    "xdp_redirect_cpu": ["lo", "0"],
    "xdp_redirect_map": ["lo", "lo"],
    "sockmap": ["-c", "/sys/fs/cgroup"],
    "strlen_snoop": ["1"],
    "stacksnoop": ["vfs_read"],
    "dbslower": ["mysql", "-p", "1"],
    "dbstat": ["mysql", "-p", "1"],
}

# Runs under the system Python: real bcc, but BPF() dumps its program and leaves.
CAPTURE = r"""
import json, os, runpy, sys
from unittest.mock import MagicMock
for m in ("pyroute2", "netaddr"):
    sys.modules.setdefault(m, MagicMock())
import bcc
def dump(self, src_file=b"", hdr_file=b"", text=None, debug=0, cflags=[], usdt_contexts=[], **kw):
    if text is None:
        path = src_file.decode() if isinstance(src_file, bytes) else src_file
        text = open(os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), path)).read()
    text = text.decode() if isinstance(text, bytes) else text
    with open(os.environ["SURVEY_OUT"], "w") as f:
        json.dump({"text": text, "cflags": list(cflags), "usdt": bool(usdt_contexts)}, f)
    os._exit(0)
bcc.BPF.__init__ = dump
class Usdt:
    def __init__(self, *a, **k): pass
    def __getattr__(self, name): return lambda *a, **k: ""
bcc.USDT = Usdt
bcc.BPF.get_kprobe_functions = staticmethod(lambda pat: [b"vfs_read"])
bcc.BPF.ksymname = staticmethod(lambda name: 0xFFFFFFFF81000000)
tool = sys.argv[1]
sys.argv = sys.argv[1:]
os.chdir(os.path.dirname(os.path.abspath(tool)))
runpy.run_path(tool, run_name="__main__")
"""


def scripts() -> list[Path]:
    tools = sorted(Path("/usr/sbin").glob("*-bpfcc")) + [Path("/usr/sbin") / t for t in LANGUAGE_TOOLS]
    return tools + sorted(EXAMPLES.glob("**/*.py"))


def name_of(script: Path) -> str:
    return script.name.removesuffix("-bpfcc").removesuffix(".py")


def capture(out: Path) -> None:
    for script in scripts():
        dest = out / f"{name_of(script)}.json"
        env = {**os.environ, "SURVEY_OUT": str(dest)}
        # a script without its own arguments here: none, else an interface, else a pid
        tries = [ARGS[name_of(script)]] if name_of(script) in ARGS else [[], ["lo"], ["1"]]
        for args in tries:
            cmd = ["/usr/bin/python3", "-c", CAPTURE, str(script), *args]
            subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
            if dest.exists():
                break
    for c_file in EXAMPLES.glob("**/*.c"):  # programs only a script's options would load
        dest = out / f"{c_file.stem}.json"
        if not dest.exists():
            dest.write_text(json.dumps({"text": c_file.read_text(), "cflags": [], "usdt": False}))


def compile_all(out: Path) -> dict[str, str]:
    results = {}
    for path in sorted(out.glob("*.json")):
        program = json.loads(path.read_text())
        flags = program["cflags"] + (["-D__RBCC_USDT"] if program["usdt"] else [])
        try:
            _core.compile(program["text"], flags, f"{path.stem}.c")
            results[path.stem] = "ok"
        except CompileError as e:
            results[path.stem] = str(e).splitlines()[0]
    return results


IDENT = re.compile(r"\b[A-Z_][A-Z0-9_]{2,}\b")


def c_texts() -> tuple[dict[str, list[str]], set[str]]:
    """Each script's C texts (its string literals that look like C), and the names it replaces."""
    texts: dict[str, list[str]] = collections.defaultdict(list)
    replaced: set[str] = set()
    for script in scripts():
        try:
            tree = ast.parse(script.read_text())
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(r"[;{}]|->|#include|#define", node.value):
                    texts[name_of(script)].append(node.value)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "replace" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, (str, bytes)):
                    value = first.value.decode() if isinstance(first.value, bytes) else first.value
                    replaced.update(IDENT.findall(value))
    for c_file in EXAMPLES.glob("**/*.c"):
        texts[c_file.name].append(c_file.read_text())
    return texts, replaced


def undeclared(texts: dict[str, list[str]], replaced: set[str]) -> dict[str, list[str]]:
    users: dict[str, set[str]] = collections.defaultdict(set)
    for who, strings in texts.items():
        text = "\n".join(strings)
        own = set(re.findall(r"#\s*define\s+(\w+)", text))
        for body in re.findall(r"\benum\s*\w*\s*\{([^}]*)\}", text):
            own.update(m.group(1) for m in re.finditer(r"(?:^|,)\s*([A-Za-z_]\w*)", body))
        text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
        text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
        for name in set(IDENT.findall(text)) - own - replaced:
            users[name].add(who)
    missing: dict[str, list[str]] = {}
    names = sorted(users)
    for start in range(0, len(names), 15):  # a CompileError shows 20 errors at most
        batch = names[start : start + 15]
        probe = "".join(f"#if !defined({n})\nlong __survey_{i} = (long)({n});\n#endif\n" for i, n in enumerate(batch))
        try:
            _core.compile(probe, ["-w"], "survey.c")
        except CompileError as e:
            for name in re.findall(r"use of undeclared identifier '(\w+)'", str(e)):
                missing[name] = sorted(users[name])
    return missing


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="rbcc-survey-"))
    out.mkdir(parents=True, exist_ok=True)
    capture(out)
    results = compile_all(out)
    failed = {name: why for name, why in results.items() if why != "ok"}
    print(f"{len(results) - len(failed)} of {len(results)} programs compile; the others:")
    for name, why in failed.items():
        print(f"  {name}: {why}")
    print("names no program defines that rbcc's headers lack (placeholders and #ifdef'd names included):")
    for name, who in undeclared(*c_texts()).items():
        print(f"  {name:32} {' '.join(who[:6])}")
    print(f"(programs in {out})")


if __name__ == "__main__":
    main()
