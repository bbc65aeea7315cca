"""tcpcong: the C it builds for its options, and live runs over a path the test shapes to drop
packets (a veth to a namespace of its own, a small token bucket): the bulk send's connection changes
congestion state, and its row (or histogram) shows time out of the open state."""

from __future__ import annotations

import re

import pytest
from _bpfutil import run_interrupted
from _network import bulk_send, lossy_path
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcpcong


def _text(*argv: str) -> str:
    return text_of(tcpcong, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "if (0 || 0)" in plain and "#if 0\n    struct congest_state_key_t" in plain
    assert "(lport < 3000 || lport > 3006)" in _text("-L", "3000-3006")
    assert "(dport < 5000 || dport > 5005)" in _text("-R", "5005-5000")
    assert "(dport < 80 || dport > 80)" in _text("-R", "80")
    assert "#if 1\n    struct congest_state_key_t" in _text("-d")
    assert "#if 1\n    us /= 1000" in _text("-d") and "#if 0\n    us /= 1000" in _text("-d", "-u")


def test_bad_options_are_refused_by_the_parser() -> None:
    for argv in (["-L", "1-2-3"], ["-R", "x"], ["0"], ["1", "0"]):
        with pytest.raises(SystemExit):
            tcpcong.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpcong", "--ebpf", "-L", "4242")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(tcp, tcp_cong_state_set)" in out.stdout and "lport < 4242" in out.stdout


def _started(line: str) -> bool:
    return line.startswith("Tracing tcp congestion control status duration")


@pytest.mark.needs_root
def test_a_lossy_bulk_send_leaves_the_open_state() -> None:
    ports: list[int] = []
    with lossy_path() as path:
        argv = ["tool", "tcpcong", "-u", "-R", str(path.sink_port)]
        out, err = run_interrupted(argv, _started, lambda: ports.append(bulk_send(path)), lambda o: False, timeout=1)
    assert "LAddrPort" in out, out + err
    (row,) = [f for f in (line.split() for line in out.splitlines()) if f and f[0] == f"{path.host_addr}/{ports[0]}"]
    assert row[1] == f"{path.peer_addr}/{path.sink_port}", out
    # Open_us Dod_us Rcov_us Cwr_us Los_us Chgs: the drops took it out of open and back, at least once
    durations, changes = [int(x) for x in row[2:7]], int(row[7])
    assert changes >= 2 and durations[0] > 0 and sum(durations[1:]) > 0, out


@pytest.mark.needs_root
def test_histograms_per_state() -> None:
    with lossy_path() as path:
        argv = ["tool", "tcpcong", "-d", "-u", "-R", str(path.sink_port)]
        out, err = run_interrupted(argv, _started, lambda: [bulk_send(path)], lambda o: False, timeout=1)
    sections = re.findall(r"^tcp_congest_state = (\w+)", out, re.M)
    assert "open" in sections and set(sections) - {"open"}, out + err
    assert re.search(r"^\s+\d+ -> \d+\s+: [1-9]", out, re.M), out
