"""dbslower: its C for the options and modes, and live: slow queries shown and fast ones not, from a
stand-in mysqld's USDT probes (by pid, and found by name) and its dispatch_command (uprobes, -x), and
from a real PostgreSQL server's USDT probes in a backend forked after the tool started (-x)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _dbservers import build_mysqld, fake_mysqld, postgres
from _toolcheck import text_of

from rbcc.tools import dbslower


def _text(how: str, *argv: str) -> str:
    return dbslower.bpf_text(dbslower.build_parser().parse_args(list(argv)), how)


def test_the_options_and_modes_show_in_the_c() -> None:
    usdt = text_of(dbslower, "postgres")
    assert "bpf_usdt_readarg(1, ctx, &query);" in usdt and "delta >= 1000000" in usdt
    assert "delta >= 30000000" in text_of(dbslower, "mysql", "-p", "480", "-m", "30")
    assert "delta >= 0)" in text_of(dbslower, "mysql", "-m", "0")
    v57 = _text("MYSQL57", "mysql", "-x", "/usr/sbin/mysqld")
    assert "PT_REGS_PARM3(ctx) != 3" in v57 and "(void *)PT_REGS_PARM2(ctx)" in v57 and "usdt" not in v57
    v56 = _text("MYSQL56", "mysql", "-x", "/usr/sbin/mysqld")
    assert "PT_REGS_PARM1(ctx) != 3" in v56 and "query = PT_REGS_PARM3(ctx);" in v56


@pytest.fixture(scope="module")
def mysqld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mysqld(tmp_path_factory.mktemp("dbslower"))


def _rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    assert lines[1].split() == ["TIME(s)", "PID", "MS", "QUERY"], out
    return [line.split(None, 3) for line in lines[2:]]


QUERIES = ("40:SELECT slow FROM t", "2:SELECT fast", "!40:USE other")


@pytest.mark.needs_root
@pytest.mark.parametrize("by_name", [False, True], ids=["pid", "found-by-name"])
def test_slow_mysql_queries_from_usdt_probes(mysqld: Path, by_name: bool) -> None:
    with fake_mysqld(mysqld, *QUERIES) as server:
        pids = [] if by_name else ["-p", str(server.pid)]
        out, _ = run_interrupted(
            ["tool", "dbslower", "mysql", *pids, "-m", "20"],
            lambda h: h.startswith("Tracing database queries for pids ") and str(server.pid) in h,
            server.go,
            seen=lambda out: "USE other" in out,
        )
    # the USDT probes fire for every command (the 40 ms USE too), not for the 2 ms query
    rows = [r for r in _rows(out) if int(r[1]) == server.pid]
    assert [r[3] for r in rows] == ["SELECT slow FROM t", "USE other"], out
    assert all(40 <= float(r[2]) < 1000 and float(r[0]) > 0 for r in rows), out


@pytest.mark.needs_root
@pytest.mark.parametrize("shape", ["5.7", "5.6"])
def test_slow_mysql_queries_from_uprobes_on_dispatch_command(
    tmp_path_factory: pytest.TempPathFactory, mysqld: Path, shape: str
) -> None:
    if shape == "5.6":
        mysqld = build_mysqld(tmp_path_factory.mktemp("mysql56"), "-DMYSQL56")
    with fake_mysqld(mysqld, *QUERIES) as server:
        out, _ = run_interrupted(
            ["tool", "dbslower", "mysql", "-x", str(mysqld), "-m", "20"],
            lambda h: h.startswith(f"Tracing database queries for application {mysqld} slower than 20 ms"),
            server.go,
            seen=lambda out: "SELECT slow" in out,
        )
    # COM_QUERY only: neither the fast query nor the other command
    rows = [r for r in _rows(out) if int(r[1]) == server.pid]
    assert [r[3] for r in rows] == ["SELECT slow FROM t"] and 40 <= float(rows[0][2]) < 1000, out


@pytest.mark.needs_root
def test_slow_postgres_queries_in_a_backend_forked_later() -> None:
    with postgres() as pg:
        with pg.session() as s:
            session = s

            def workload() -> None:
                s.query("select pg_sleep(0.05)")
                s.query("select 1")

            out, _ = run_interrupted(
                ["tool", "dbslower", "postgres", "-x", str(pg.binary), "-m", "20"],
                lambda h: h.startswith("Tracing database queries for application"),
                workload,
                seen=lambda out: "pg_sleep" in out,
            )
    rows = [r for r in _rows(out) if int(r[1]) == session.backend]
    assert [r[3] for r in rows] == ["select pg_sleep(0.05);"] and 50 <= float(rows[0][2]) < 1000, out
