"""``rbcc export CONFIG.yaml``'s config file: a good one read into Programs, and each kind of bad one
stopped with one line naming the file, the line and the field, before anything is loaded (or, for a
program that does not compile or attach, naming its entry and the line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _exporters import line_of, run_export, syscalls_config

from rbcc.export import Counter, Histogram
from rbcc.export.config import ConfigError, load_config

GOOD = """\
listen: 127.0.0.1:9999
max_series: 50
programs:
  - name: sched
    text: |
      BPF_HISTOGRAM(dist);
      int on_switch(struct bpf_raw_tracepoint_args *ctx) { dist.increment(1); return 0; }
    attach:
      - raw_tracepoint: sched_switch
        function: on_switch
    metrics:
      histograms:
        - name: test_switch_seconds
          map: dist
          unit: usecs
          max_slot: 20
      counters:
        - name: test_switches_total
          map: dist
          labels:
            - {name: slot, decoder: map, values: {1: one, 2: two}}
"""


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_config_becomes_programs(tmp_path: Path) -> None:
    config = load_config(str(_write(tmp_path, GOOD)))
    assert config.listen == "127.0.0.1:9999" and config.max_series == 50
    (entry,) = config.entries
    program = entry.program
    assert program.name == "sched" and "on_switch" in program.text
    assert [(a.kind, a.target, a.function) for a in program.attach] == [("raw_tracepoint", "sched_switch", "on_switch")]
    histogram, counter = program.metrics
    assert isinstance(histogram, Histogram) and histogram.unit == "usecs" and histogram.last_slot == 20
    assert isinstance(counter, Counter) and counter.name == "test_switches"  # prometheus_client adds _total
    assert counter.labels[0].options == {"values": {1: "one", 2: "two"}}
    assert entry.metric_fields == ("programs[0].metrics.histograms[0]", "programs[0].metrics.counters[0]")
    assert config.line_of("programs[0].metrics.counters[0].labels[0]") == 21


def test_the_program_can_be_a_file_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "prog.c").write_text("BPF_ARRAY(a, u64, 1);\n")
    path = _write(tmp_path, "programs:\n- name: f\n  file: prog.c\n  metrics: {gauges: [{name: g, map: a}]}\n")
    (entry,) = load_config(str(path)).entries
    assert entry.program.text == "BPF_ARRAY(a, u64, 1);\n" and entry.text_file == str(tmp_path / "prog.c")


BAD = {
    "unknown field": (
        GOOD.replace("unit: usecs", "units: usecs"),
        15,
        "programs[0].metrics.histograms[0].units: unknown field (known here: name, help, map, value, max_series,",
    ),
    "wrong type": (
        GOOD.replace("max_slot: 20", "max_slot: twenty"),
        16,
        "programs[0].metrics.histograms[0].max_slot: should be whole number, not 'twenty'",
    ),
    "wrong type (a list)": (
        GOOD.replace("map: dist\n          labels", "map: [dist]\n          labels"),
        19,
        "programs[0].metrics.counters[0].map: should be text, not a list",
    ),
    "unknown decoder": (
        GOOD.replace("decoder: map", "decoder: mapp"),
        21,
        "programs[0].metrics.counters[0].labels[0].decoder: unknown decoder 'mapp' (known: cgroup, comm, disk,",
    ),
    "a decoder option missing": (
        GOOD.replace("decoder: map, values: {1: one, 2: two}", "decoder: kstack"),
        21,
        "programs[0].metrics.counters[0].labels[0].decoder: decoder kstack needs option 'stack_map'",
    ),
    "duplicate metric name": (
        GOOD.replace("test_switches_total", "test_switch_seconds"),
        18,
        "programs[0].metrics.counters[0].name: metric 'test_switch_seconds' is programs[0].metrics.histograms[0]",
    ),
    "a bad metric name": (
        GOOD.replace("test_switches_total", "test-switches"),
        18,
        "programs[0].metrics.counters[0].name: 'test-switches' is not a Prometheus metric name",
    ),
    "an unknown unit": (
        GOOD.replace("unit: usecs", "unit: fortnights"),
        15,
        "programs[0].metrics.histograms[0].unit: unknown unit 'fortnights'",
    ),
    "an unknown attach kind": (
        GOOD.replace("raw_tracepoint: sched_switch", "raw_tracepont: sched_switch"),
        9,
        "programs[0].attach[0].raw_tracepont: unknown field",
    ),
    "a field given twice": (
        GOOD.replace("  - name: sched\n", "  - name: sched\n    name: x\n"),
        5,
        "programs[0].name: given twice",
    ),
    "text and file both": (
        GOOD.replace("    text: |", "    file: x.c\n    text: |"),
        4,
        "programs[0].text: give the program's C as text: or as file:, one of them",
    ),
    "not YAML": ("programs: [\n", 2, "not YAML"),
    "no programs": ("listen: 127.0.0.1:1\n", 1, "programs: missing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_mistake_is_one_line_naming_file_line_and_field(tmp_path: Path, case: str) -> None:
    text, line, message = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    said = str(raised.value)
    assert "\n" not in said
    assert said.startswith(f"{path}:{line}: {message}"), said


def test_the_command_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD["unknown decoder"][0])
    done = run_export(str(path))
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"rbcc export: {path}:21: {BAD['unknown decoder'][2]}"), done.stderr
    missing = run_export(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert missing.stderr == f"rbcc export: {tmp_path / 'nope.yaml'}: cannot be read: No such file or directory\n"


@pytest.mark.needs_root
def test_a_program_that_does_not_compile_is_named_with_its_line(tmp_path: Path) -> None:
    config = syscalls_config(tmp_path / "c.yaml", 1)
    config.write_text(config.read_text().replace("calls.increment(k);", "calls.increment(kk);"))
    done = run_export(str(config))
    assert done.returncode == 1 and done.stdout == ""
    line, column = line_of(config, "kk")  # clang's line and column, in the config file
    (said,) = done.stderr.splitlines()
    assert said.startswith(
        f"rbcc export: {config}:{line}:{column}: programs[0].text (program 'syscalls'): CompileError: "
        "use of undeclared identifier 'kk'"
    ), said


@pytest.mark.needs_root
def test_a_program_that_does_not_attach_or_fit_its_metrics_is_named(tmp_path: Path) -> None:
    config = syscalls_config(tmp_path / "c.yaml", 1)
    text = config.read_text()
    attach = "    attach:\n      - tracepoint: nosuch:event\n        function: f\n    metrics:"
    config.write_text(text.replace("    metrics:", attach))
    done = run_export(str(config))
    assert done.returncode == 1
    (said,) = done.stderr.splitlines()
    line, _ = line_of(config, "nosuch:event")
    assert said.startswith(f"rbcc export: {config}:{line}: programs[0].attach[0] (program 'syscalls'): "), said
    config.write_text(text.replace("field: nr,", "field: id,"))
    done = run_export(str(config))
    assert done.returncode == 1
    line, _ = line_of(config, "field: id")
    assert done.stderr.splitlines() == [
        f"rbcc export: {config}:{line}: programs[0].metrics.counters[0].labels[1].field (program 'syscalls'): "
        "the map's key has no field 'id' (its fields: tgid, nr, comm)"
    ]


def test_the_readmes_example_config_is_a_good_one(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    fleet = readme[readme.index("## Fleet metrics") :]
    example = fleet[fleet.index("```yaml\n") + len("```yaml\n") : fleet.index("```\n", fleet.index("```yaml\n"))]
    config = load_config(str(_write(tmp_path, example)))
    (entry,) = config.entries
    assert [m.name for m in entry.program.metrics] == ["syscalls", "wait_seconds"]
    assert config.listen == "127.0.0.1:9435" and entry.program.cflags == ("-DENTRIES=10240",)
