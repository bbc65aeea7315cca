"""mysqld_qslower: its C for the threshold, and live: a stand-in mysqld's slow queries (USDT probes)
shown with their pid, time and text, its fast one not."""

from __future__ import annotations

from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _dbservers import build_mysqld, fake_mysqld
from _toolcheck import text_of

from rbcc.tools import mysqld_qslower


def test_the_threshold_shows_in_the_c() -> None:
    assert "delta >= 1000000" in text_of(mysqld_qslower, "42")
    assert "delta >= 2500000" in text_of(mysqld_qslower, "42", "2.5")
    assert "delta >= 0)" in text_of(mysqld_qslower, "42", "0")


@pytest.fixture(scope="module")
def mysqld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mysqld(tmp_path_factory.mktemp("qslower"))


@pytest.mark.needs_root
def test_slow_queries_show_and_fast_ones_do_not(mysqld: Path) -> None:
    with fake_mysqld(mysqld, "2:SELECT fast", "40:SELECT slow FROM t", "30:UPDATE t SET a = 1") as server:
        out, _ = run_interrupted(
            ["tool", "mysqld_qslower", str(server.pid), "20"],
            lambda h: h == f"Tracing MySQL server queries for PID {server.pid} slower than 20 ms...\n",
            server.go,
            seen=lambda out: "UPDATE" in out,
        )
    lines = out.splitlines()
    assert lines[1].split() == ["TIME(s)", "PID", "MS", "QUERY"], out
    rows = [line.split(None, 3) for line in lines[2:]]
    assert [(int(r[1]), r[3]) for r in rows] == [(server.pid, "SELECT slow FROM t"), (server.pid, "UPDATE t SET a = 1")]
    # times from the first query shown; the second started after the first's 40 ms
    assert float(rows[0][0]) == 0 and 0.04 <= float(rows[1][0]) < 1, out
    assert 40 <= float(rows[0][2]) < 1000 and 30 <= float(rows[1][2]) < 1000, out
