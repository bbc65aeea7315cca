"""`rbcc run SCRIPT`: existing bcc scripts, unmodified, with `bcc` resolving to rbcc."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import child_env


def _rbcc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rbcc", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


ALIASES = """\
import sys
import bcc
from bcc import BPF, PerfType
from bcc.utils import printb, ArgString
from bcc.syscall import syscall_name
import bcc.table
import rbcc
printb(b"same BPF: %d" % (BPF is rbcc.BPF and bcc is rbcc))
printb(b"table module: %s" % bcc.table.__name__.encode())
printb(b"perf software type: %d" % PerfType.SOFTWARE)
print("argv:", sys.argv[1:], __name__, sys.argv[0] == __file__)
from bcc import lib, libbcc
print("libbcc:", lib is libbcc.lib, lib.bpf_module_rw_engine_enabled())
"""


def test_run_resolves_bcc_to_rbcc(tmp_path: Path) -> None:
    script = tmp_path / "tool.py"
    script.write_text(ALIASES)
    out = _rbcc("run", str(script), "-x", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "same BPF: 1",
        "table module: rbcc.table",
        "perf software type: 1",
        "argv: ['-x', '1'] __main__ True",
        "libbcc: True 1",
    ]


def test_run_passes_on_the_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("import sys\nsys.exit(3)\n")
    assert _rbcc("run", str(script)).returncode == 3


def test_run_of_a_missing_script_says_so_in_one_line(tmp_path: Path) -> None:
    out = _rbcc("run", str(tmp_path / "nonexistent.py"))
    assert out.returncode == 2  # as `python nonexistent.py`
    assert out.stderr.splitlines() == [
        f"rbcc run: can't open file {str(tmp_path / 'nonexistent.py')!r}: No such file or directory"
    ]


def test_run_imports_modules_beside_the_script_as_python_does(tmp_path: Path) -> None:
    (tmp_path / "helpers_of_tool.py").write_text("VALUE = 42\n")
    script = tmp_path / "tool.py"
    script.write_text("from helpers_of_tool import VALUE\nprint(VALUE, __file__)\n")
    out = _rbcc("run", str(script))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42", str(script)]


def test_a_bcc_module_rbcc_lacks_is_an_import_error(tmp_path: Path) -> None:
    script = tmp_path / "missing.py"
    script.write_text("import bcc.no_such_module\n")
    out = _rbcc("run", str(script))
    assert out.returncode == 1
    assert "ModuleNotFoundError" in out.stderr and "bcc.no_such_module" in out.stderr


@pytest.mark.without_kprobes
def test_a_script_needing_kprobes_stops_with_the_feature_named(tmp_path: Path) -> None:
    script = tmp_path / "kprobes.py"
    script.write_text('from bcc import BPF\nBPF(text="int kprobe__do_nanosleep(void *ctx) { return 0; }")\n')
    out = _rbcc("run", str(script))
    assert out.returncode == 1
    assert "KernelFeatureError" in out.stderr and "do_nanosleep" in out.stderr
    assert "Traceback" not in out.stderr


def _wrapper(tmp_path: Path, python_body: str) -> Path:
    """A shell script that runs a Python script by its #! line, as bcc's language tools do."""
    tool = tmp_path / "tool"
    tool.write_text(f"#!{sys.executable}\n{python_body}")
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\nlib=$(dirname "$0")\nexec "$lib/tool" -l python "$@"\n')
    for f in (tool, wrapper):
        f.chmod(0o755)
    return wrapper


def test_run_of_a_shell_wrapper_aliases_bcc_in_the_programs_it_starts(tmp_path: Path) -> None:
    wrapper = _wrapper(tmp_path, ALIASES + "sys.exit(4)\n")
    out = _rbcc("run", str(wrapper), "-x", "1")
    assert out.returncode == 4, out.stderr
    assert out.stdout.splitlines() == [
        "same BPF: 1",
        "table module: rbcc.table",
        "perf software type: 1",
        "argv: ['-l', 'python', '-x', '1'] __main__ True",
        "libbcc: True 1",
    ]


@pytest.mark.without_kprobes
def test_a_wrapped_script_needing_kprobes_stops_with_the_feature_named(tmp_path: Path) -> None:
    wrapper = _wrapper(tmp_path, 'from bcc import BPF\nBPF(text="int kprobe__do_nanosleep(void *ctx) { return 0; }")\n')
    out = _rbcc("run", str(wrapper))
    assert out.returncode == 1
    assert "KernelFeatureError" in out.stderr and "do_nanosleep" in out.stderr
    assert "Traceback" not in out.stderr


def test_rbcc_command_is_installed() -> None:
    exe = shutil.which("rbcc")
    if exe is None:
        pytest.skip("the rbcc console script is not on PATH (package not installed with pip)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "run" in out.stdout
