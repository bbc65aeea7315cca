"""dbstat: its C for the options, and live histograms of query latencies: a stand-in mysqld's USDT
probes (-u, -m) and a real PostgreSQL backend's (-p), the queries taking known times."""

from __future__ import annotations

from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _dbservers import build_mysqld, fake_mysqld, postgres
from _functargets import histograms
from _toolcheck import text_of

from rbcc.tools import dbstat


def test_the_options_show_in_the_c() -> None:
    plain = text_of(dbstat, "mysql")
    assert "delta /= 1000000;" in plain and "delta / 1000000 <" not in plain
    assert "delta /= 1000;" in text_of(dbstat, "mysql", "-u")
    assert "if (delta / 1000000 < 5)" in text_of(dbstat, "postgres", "-m", "5")


@pytest.fixture(scope="module")
def mysqld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mysqld(tmp_path_factory.mktemp("dbstat"))


@pytest.mark.needs_root
def test_mysql_query_latencies_in_microseconds_above_a_threshold(mysqld: Path) -> None:
    with fake_mysqld(mysqld, "40:SELECT a", "40:SELECT b", "2:SELECT c") as server:
        out, _ = run_interrupted(
            ["tool", "dbstat", "mysql", "-p", str(server.pid), "-u", "-m", "10"],
            lambda h: h.startswith(f"Tracing database queries for pids {server.pid} slower than 10 ms"),
            server.go,
        )
    assert "query latency (us)" in out and out.splitlines()[1].startswith("["), out
    # the two 40 ms queries; the 2 ms one is under the threshold
    assert histograms(out) == {"": {32768: 2}}, out


@pytest.mark.needs_root
def test_postgres_query_latencies_of_a_backend() -> None:
    with postgres() as pg, pg.session() as s:

        def workload() -> None:
            for _ in range(3):
                s.query("select pg_sleep(0.04)")
            s.query("select 1")

        out, _ = run_interrupted(
            ["tool", "dbstat", "postgres", "-p", str(s.backend)],
            lambda h: h.startswith(f"Tracing database queries for pids {s.backend} slower than 0 ms"),
            workload,
        )
    assert histograms(out) == {"": {0: 1, 32: 3}}, out
