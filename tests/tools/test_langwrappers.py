"""bcc's per-language wrappers (pythoncalls, javagc, cobjnew, ...): each is its generic tool with the
language set, its C the generic tool's for that language; pythoncalls counts a Python child's own calls."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from _langkids import python_child, run_on_child

from rbcc import tools

GENERIC = {"calls": "ucalls", "flow": "uflow", "gc": "ugc", "objnew": "uobjnew", "stat": "ustat", "threads": "uthreads"}
# bcc 0.26's wrappers (/usr/sbin/*-bpfcc that run $lib/u* -l LANG)
WRAPPERS = """cobjnew javacalls javaflow javagc javaobjnew javastat javathreads nodegc nodestat perlcalls perlflow
perlstat phpcalls phpflow phpstat pythoncalls pythonflow pythongc pythonstat rubycalls rubyflow rubygc
rubyobjnew rubystat tclcalls tclflow tclobjnew tclstat""".split()


def _split(name: str) -> tuple[str, str]:
    kind = next(k for k in GENERIC if name.endswith(k))
    return name[: -len(kind)], GENERIC[kind]


@pytest.mark.parametrize("name", WRAPPERS)
def test_wrapper_is_its_generic_tool_with_the_language_set(name: str) -> None:
    assert name in tools.names()
    lang, generic = _split(name)
    wrapper = importlib.import_module(f"rbcc.tools.{name}")
    tool = importlib.import_module(f"rbcc.tools.{generic}")
    argv = [] if generic == "ustat" else ["4242"]
    args = wrapper.build_parser().parse_args(argv)
    assert args.language == lang and wrapper.build_parser().prog == name
    assert wrapper.bpf_text(args) == tool.bpf_text(tool.build_parser().parse_args(["-l", lang, *argv]))
    assert f"({generic} -l {lang})" in tools.summary(name)


@pytest.mark.needs_root
def test_pythoncalls_counts_a_childs_calls(tmp_path: Path) -> None:
    child = python_child(tmp_path, "def rbcc_wrapped():\n    pass\nfor _ in range(17):\n    rbcc_wrapped()\n")
    header = lambda h: h.startswith(f"Tracing calls in process {child.pid} (language: python)")  # noqa: E731
    out = run_on_child(["tool", "pythoncalls", str(child.pid)], child, header)
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0].endswith(".rbcc_wrapped")]
    assert rows == [[f"{tmp_path / 'child.py'}.rbcc_wrapped", "17"]], out
