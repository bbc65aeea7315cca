"""bcc's per-language wrappers (pythoncalls, javagc, cobjnew, ...): each is its generic tool with the
language set, its C the generic tool's for that language; live: pythoncalls counts a Python child's own
calls, and on a JVM of the test's own (hotspot has USDT probes), javathreads sees its named thread and
javacalls counts its method exactly. Perl, Tcl and Node here lack USDT probes, Ruby and PHP are not
installed: their wrappers are covered by their C (and the verifier, in test__languages.py)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from _langkids import python_child, run_on_child

from rbcc import USDT, tools

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


# starts a thread named rbccWorker once a line arrives, calls rbccMethod 14 times in all, prints the thread's id
JAVA_MAIN = """
public class RbccMain {
    static int rbccCounter = 0;
    static void rbccMethod() { rbccCounter++; }
    public static void main(String[] a) throws Exception {
        System.in.read();
        Thread t = new Thread(() -> { rbccMethod(); }, "rbccWorker");
        t.start();
        t.join();
        for (int i = 0; i < 13; i++) rbccMethod();
        System.out.println(t.getId());
    }
}
"""


@pytest.fixture(scope="module")
def java_class_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    java, javac = shutil.which("java"), shutil.which("javac")
    if java is None or javac is None:
        pytest.skip("java/javac are not installed: no JVM to trace")
    libjvm = Path(os.path.realpath(java)).parents[1] / "lib" / "server" / "libjvm.so"
    if not libjvm.exists() or not USDT(path=str(libjvm)).enumerate_probes():
        pytest.skip(f"{libjvm} has no hotspot USDT probes (built without DTrace support)")
    where = tmp_path_factory.mktemp("java")
    (where / "RbccMain.java").write_text(JAVA_MAIN)
    subprocess.run([javac, "-d", str(where), str(where / "RbccMain.java")], check=True, timeout=120)
    return where


def _jvm(class_dir: Path) -> subprocess.Popen[bytes]:
    """The JVM running RbccMain, once it has mapped libjvm (where its probes are)."""
    child = subprocess.Popen(
        ["java", "-XX:+ExtendedDTraceProbes", "-cp", str(class_dir), "RbccMain"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/maps") as maps:
            if "libjvm.so" in maps.read():
                return child
        time.sleep(0.05)
    child.kill()
    raise AssertionError("the JVM did not map libjvm.so")


@pytest.mark.needs_root
def test_javathreads_sees_a_named_thread_start_and_stop(java_class_dir: Path) -> None:
    child = _jvm(java_class_dir)
    header = lambda h: h.startswith(f"Tracing thread events in process {child.pid} (language: java)")  # noqa: E731
    seen = lambda out: " stop     rbccWorker" in out  # noqa: E731
    out = run_on_child(["tool", "javathreads", str(child.pid)], child, header, seen)
    assert child.stdout is not None
    java_id = child.stdout.read().decode().strip()
    rows = [line.split() for line in out.splitlines() if line.endswith(" rbccWorker")]
    assert [r[2] for r in rows] == ["start", "stop"], out
    runtime, native = rows[0][1].split("/")
    assert runtime == f"R={java_id}" and rows[1][1] == rows[0][1], out
    # the JVM's own pthread for it, by the same native id
    tid = native.removeprefix("N=")
    assert any(line.split()[1:3] == [tid, "pthread"] for line in out.splitlines() if len(line.split()) > 3), out


@pytest.mark.needs_root
def test_javacalls_counts_a_method_exactly(java_class_dir: Path) -> None:
    child = _jvm(java_class_dir)
    header = lambda h: h.startswith(f"Tracing calls in process {child.pid} (language: java)")  # noqa: E731
    out = run_on_child(["tool", "javacalls", str(child.pid)], child, header)
    rows = [line.split() for line in out.splitlines() if line.startswith("RbccMain.rbccMethod ")]
    assert rows == [["RbccMain.rbccMethod", "14"]], out
