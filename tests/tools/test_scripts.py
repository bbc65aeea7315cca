"""The tools as files: each ``tools/NAME.py`` is a script a bcc user can read, copy and run from the checkout
(``sudo tools/execsnoop.py -T``), and the package ships each one as ``rbcc.tools.NAME`` through a link
(``python/rbcc/tools/NAME.py -> ../../../tools/NAME.py``), so ``rbcc tool NAME`` and
``python -m rbcc.tools.NAME`` run the same file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import child_env
from _toolcheck import run_rbcc

from rbcc import tools

CHECKOUT = Path(__file__).resolve().parents[2]
SCRIPTS = CHECKOUT / "tools"
LINKS = CHECKOUT / "python" / "rbcc" / "tools"
NAMES = sorted(p.stem for p in SCRIPTS.glob("*.py"))


def test_every_script_is_linked_into_the_package_and_every_link_is_a_script() -> None:
    linked = sorted(p.stem for p in LINKS.glob("*.py") if p.name != "__init__.py")
    assert linked == NAMES, "add the link: ln -s ../../../tools/NAME.py python/rbcc/tools/"
    for name in NAMES:
        link = LINKS / f"{name}.py"
        # relative, so it holds in every checkout (and maturin reads the file it points to)
        assert link.is_symlink() and os.readlink(link) == f"../../../tools/{name}.py", link
    assert tools.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_is_an_executable_script_that_runs_as_a_module_too(name: str) -> None:
    script = SCRIPTS / f"{name}.py"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env python3\n"), "a tool starts with #!/usr/bin/env python3"
    # executable by everyone (git keeps 755; a checkout's umask may add group write)
    assert stat.S_IMODE(script.stat().st_mode) & 0o555 == 0o555, f"chmod 755 {script}"
    assert text.rstrip().endswith('if __name__ == "__main__":\n    sys.exit(main())')
    assert "from ." not in text, "a script imports rbcc by its name (it runs outside the package too)"


@pytest.mark.parametrize("name", NAMES)
def test_runs_from_the_checkout_by_its_path(name: str) -> None:
    # as `sudo tools/NAME.py -h` runs it: by its #! line, finding rbcc on the import path
    done = subprocess.run([SCRIPTS / f"{name}.py", "-h"], capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {name}"), done.stdout[:200]


def test_python_m_runs_a_tool_and_rbcc_tool_lists_every_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rbcc.tools.execsnoop", "--ebpf"], capture_output=True, text=True, env=child_env()
    )
    assert done.returncode == 0, done.stderr
    assert "TRACEPOINT_PROBE(syscalls, sys_enter_execve)" in done.stdout
    listed = run_rbcc("tool")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(None, 1) for line in listed.stdout.splitlines()]
    assert [row[0] for row in rows] == NAMES and all(len(row) == 2 for row in rows)
