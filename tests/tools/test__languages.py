"""rbcc._tools.languages: the per-language table, and the C every language tool builds from it for
every language passes the verifier (the runtimes missing here included: their programs load even where
no process of theirs runs to attach them to)."""

from __future__ import annotations

import pytest
from _toolcheck import text_of

from rbcc import BPF
from rbcc._tools import languages
from rbcc.tools import ucalls, uflow, ugc, uobjnew, ustat, uthreads


def test_the_table_names_each_tools_languages() -> None:
    assert languages.languages_with("calls") == ["java", "perl", "php", "python", "ruby", "tcl"]
    assert languages.languages_with("gcs") == ["java", "node", "python", "ruby"]
    assert languages.languages_with("allocs") == ["c", "java", "ruby", "tcl"]
    assert languages.languages_with("stat") == ["java", "node", "perl", "php", "python", "ruby", "tcl"]
    assert languages.languages_with("threads") == ["java"]


def test_comm_matches_a_runtime_and_its_versions() -> None:
    assert languages.comm_matches("python3", ("python",)) and languages.comm_matches("python3.11", ("python",))
    assert languages.comm_matches("tclsh8.6", ("tclsh", "wish")) and languages.comm_matches("irb", ("ruby", "irb"))
    assert not languages.comm_matches("pythonista", ("python",)) and not languages.comm_matches("javac", ("java",))


def test_a_name_with_a_length_is_cut_at_it() -> None:
    plain = languages.read_string("k.name", "p", 2)
    assert plain == "    bpf_usdt_readarg(2, ctx, &p);\n    bpf_probe_read_user(&k.name, sizeof(k.name), (void *)p);\n"
    cut = languages.read_string("k.name", "p", 2, 3)
    assert "bpf_usdt_readarg(3, ctx, &len);" in cut and "bpf_probe_read_user(&k.name, len, (void *)p);" in cut
    assert languages.read_string("k.name", "p", None) == ""


CASES = [(ucalls, lang, opts) for lang in languages.languages_with("calls") for opts in ([], ["-L"])]
CASES += [(uflow, lang, ["-M", "a", "-C", "b"]) for lang in languages.languages_with("calls")]
CASES += [(ugc, lang, []) for lang in languages.languages_with("gcs")]
CASES += [(uobjnew, lang, []) for lang in languages.languages_with("allocs")]
CASES += [(uthreads, lang, []) for lang in ("c", "java")]


@pytest.mark.needs_root
@pytest.mark.parametrize(("tool", "lang", "opts"), CASES, ids=lambda c: c if isinstance(c, str) else None)
def test_every_languages_programs_pass_the_verifier(tool: object, lang: str, opts: list[str]) -> None:
    text = text_of(tool, "-l", lang, *opts, "1")  # type: ignore[arg-type]
    # USDT functions load as the uprobes libbpf attaches them as; the USDT maps come with the flag
    b = BPF(text=text, cflags=["-D__RBCC_USDT"])
    with b:
        functions = [fn for fn in b._programs if not fn.startswith("tracepoint__")]
        assert functions
        for fn in functions:
            assert b.load_func(fn, BPF.KPROBE).fd > 0, fn


def test_ustat_builds_a_counter_per_probe() -> None:
    text = text_of(ustat, "-l", "ruby")
    assert text.count("int ruby_") == len(languages.LANGUAGES["ruby"].stat)
