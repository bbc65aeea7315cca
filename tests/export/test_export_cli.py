"""``rbcc export`` as a user runs it: every tool's metric set at once, the cardinality guard from the
command line, what an HTTP request can reach (nothing but the metrics), the default address, and
SIGTERM (everything detached, exit 0)."""

from __future__ import annotations

import os
import re
import urllib.request

import pytest
from _exporters import ExportProcess, exporting, run_export

from rbcc.export.tools import tool_names, tool_program

pytestmark = pytest.mark.needs_root


def _value(exposition: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", exposition, re.M)
    assert found, f"{sample} is not in the exposition"
    return float(found[1])


def test_every_tools_metric_set_runs_at_once() -> None:
    names = tool_names()
    argv = [arg for name in names for arg in ("--tool", name)]
    with exporting(*argv) as exporter:
        os.sync()  # some block I/O for the block tools
        text = exporter.scrape()
    assert _value(text, "rbcc_export_programs_loaded") == len(names)
    for metric in ("rbcc_biolatency_seconds", "rbcc_runqlat_seconds", "rbcc_syscount_calls", "rbcc_vfsstat_calls"):
        assert re.search(rf"^# TYPE {metric}(_total)? ", text, re.M), metric
    assert _value(text, "rbcc_runqlat_seconds_count") > 0  # this machine switches tasks all the time
    assert _value(text, 'rbcc_export_lost_events_total{program="runqlat"}') >= 0  # read from its programs' fdinfo
    errors = re.findall(r"^rbcc_export_scrape_errors_total\{.*\} (\S+)$", text, re.M)
    assert len(errors) == sum(len(tool_program(n).metrics) for n in names) and set(errors) == {"0.0"}


def test_the_guard_caps_label_sets_and_says_how_many_it_left_out() -> None:
    with exporting("--tool", "syscount", "--max-series", "3") as exporter:
        text = exporter.scrape()
    assert len(re.findall(r"^rbcc_syscount_calls_total\{", text, re.M)) == 3
    assert _value(text, 'rbcc_export_series{metric="rbcc_syscount_calls",program="syscount"}') == 3
    assert _value(text, 'rbcc_export_series_dropped{metric="rbcc_syscount_calls",program="syscount"}') > 0


def test_requests_reach_nothing_but_the_metrics_and_sigterm_exits_0() -> None:
    exporter = ExportProcess("--tool", "vfsstat")
    try:
        base = exporter.url.removesuffix("/metrics")
        for path in ("/metrics", "/../../etc/passwd", "/metrics?name[]=rbcc_vfsstat_calls_total", "/x%00y"):
            with urllib.request.urlopen(base + path, timeout=30) as r:
                body = r.read().decode()
            assert "root:" not in body and "rbcc_vfsstat_calls_total" in body, path
        links = [
            fd
            for fd in os.listdir(f"/proc/{exporter.proc.pid}/fd")
            if os.readlink(f"/proc/{exporter.proc.pid}/fd/{fd}") == "anon_inode:bpf_link"
        ]
        assert links  # attached, by links the process holds
    finally:
        code = exporter.stop()
    assert code == 0, "".join(exporter.stderr)
    assert "Traceback" not in "".join(exporter.stderr)


def test_by_default_it_listens_on_this_host_only() -> None:
    try:
        exporter = ExportProcess("--tool", "vfsstat", listen=False)
    except AssertionError as e:
        if "Address already in use" in str(e):
            pytest.skip("port 9435 is taken on this machine: the default address cannot be tried")
        raise
    try:
        assert exporter.url == "http://127.0.0.1:9435/metrics"
    finally:
        assert exporter.stop() == 0


def test_nothing_to_export_is_said_in_one_line() -> None:
    done = run_export()
    assert done.returncode == 2
    assert done.stderr == "rbcc export: name a CONFIG.yaml or a --tool (rbcc export --list-tools lists the tools)\n"
    listed = run_export("--list-tools")
    assert listed.returncode == 0 and listed.stdout.split() == tool_names()
