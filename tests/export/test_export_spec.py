"""What can be declared (rbcc.export.spec), the label decoders (rbcc.export.decoders), and the metric sets
the tools declare next to their C (``export_metrics``): all pure, no kernel needed."""

from __future__ import annotations

import os
import re
import socket
import struct
import sys

import pytest

from rbcc.export import Attach, Counter, Exporter, Gauge, Histogram, Label, Program, SpecError, parse_listen
from rbcc.export.config import load_config
from rbcc.export.decoders import cgroup2_mount, make
from rbcc.export.spec import perf_event_numbers
from rbcc.export.tools import tool_names, tool_program


@pytest.mark.parametrize(
    ("make_it", "field", "message"),
    [
        (lambda: Label("1st"), "name", "not a Prometheus label name"),
        (lambda: Label("__x"), "name", "not a Prometheus label name"),
        (lambda: Label("x", "a..b"), "field", "not a C field name"),
        (lambda: Label("x", decoder="nope"), "decoder", "unknown decoder 'nope'"),
        (lambda: Label("x", decoder="usym"), "decoder", "decoder usym needs option 'pid_field'"),
        (lambda: Label("x", decoder="port", options={"byte_order": "le"}), "byte_order", "host or network"),
        (lambda: Label("x", decoder="int", options={"base": 16}), "base", "takes no option 'base'"),
        (lambda: Counter("m", "a b"), "name", "not a Prometheus metric name"),
        (lambda: Counter("m", "rbcc_export_x"), "name", "the exporter's own"),
        (lambda: Counter("", "a"), "map", "names the BPF map"),
        (lambda: Counter("m", "a", labels=(Label("x"), Label("x"))), "labels[1].name", "label 'x' twice"),
        (lambda: Gauge("m", "a", scale=float("nan")), "scale", "not a finite number"),
        (lambda: Gauge("m", "a", max_series=0), "max_series", "not a positive number"),
        (lambda: Histogram("m", "a", kind="log10"), "kind", "log2 or linear"),
        (lambda: Histogram("m", "a", unit="weeks"), "unit", "unknown unit 'weeks'"),
        (lambda: Histogram("m", "a", labels=(Label("le"),)), "labels", "'le' is the histogram's bucket label"),
        (lambda: Histogram("m", "a", max_slot=200), "max_slot", "not a slot number"),
        (lambda: Attach("fentry", "x", "f"), "kind", "unknown attach kind 'fentry'"),
        (lambda: Attach("tracepoint", "sched_switch", "f"), "target", "category:event"),
        (lambda: Attach("uprobe", "c:malloc", "f", {"sample_freq": 9}), "sample_freq", "takes no option"),
        (lambda: Attach("perf_event", "software:cpu_clocks", "f"), "target", "unknown software event 'cpu_clocks'"),
        (lambda: Program("p", " "), "text", "no text"),
    ],
)
def test_what_cannot_be_exported_is_refused_naming_the_field(make_it: object, field: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        make_it()  # type: ignore[operator]
    assert raised.value.field == field and message in raised.value.message


def test_counters_lose_a_given_total_and_histogram_bounds_are_in_the_base_unit() -> None:
    assert Counter("m", "calls_total").name == "calls"
    assert Histogram("m", "a", unit="usecs", max_slot=3).bounds() == pytest.approx([1e-6, 2e-6, 4e-6, 8e-6])
    assert Histogram("m", "a", unit="kbytes", max_slot=1).bounds() == [1024.0, 2048.0]
    assert Histogram("m", "a", kind="linear", width=5, max_slot=2).bounds() == [5.0, 10.0, 15.0]
    assert Histogram("m", "a").last_slot == 32 and Histogram("m", "a", kind="linear").last_slot == 99


def test_perf_events_and_listen_addresses() -> None:
    assert perf_event_numbers("software:cpu_clock") == (1, 0)
    assert perf_event_numbers("hardware:instructions") == (0, 1)
    assert perf_event_numbers("4:1234") == (4, 1234)
    assert parse_listen("127.0.0.1:9435") == ("127.0.0.1", 9435)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in (":9435", "9435", "localhost:http", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="--listen"):
            parse_listen(bad)


def _decode(name: str, value: object, **options: object) -> str | None:
    return make(name, options, None).fn(value)


def test_decoders() -> None:
    assert _decode("int", 42) == "42" and _decode("hex", 255) == "0xff"
    assert _decode("comm", b"bash\0junk") == "bash" and _decode("string", (104, 105, 0)) == "hi"
    assert _decode("syscall", 110) == "getppid"
    assert _decode("errno", -2) == "ENOENT" and _decode("errno", 2**32 - 13) == "EACCES"
    assert _decode("errno", 0) == "0" and _decode("errno", 9999) == "9999"
    assert _decode("ip", socket.inet_aton("192.0.2.7")) == "192.0.2.7"
    assert _decode("ip", socket.inet_pton(socket.AF_INET6, "2001:db8::1")) == "2001:db8::1"
    assert _decode("ip", socket.inet_pton(socket.AF_INET6, "::ffff:192.0.2.7")) == "192.0.2.7"
    assert _decode("port", socket.htons(8080), byte_order="network") == "8080" and _decode("port", 22) == "22"
    assert _decode("map", 2, values={1: "read", "2": "write"}) == "write"
    assert _decode("map", 3, values={1: "read"}) is None  # left out


def test_cgroup_ids_are_named_by_their_path_in_the_v2_hierarchy() -> None:
    root = cgroup2_mount()
    if root is None:
        pytest.skip("no cgroup2 hierarchy is mounted (cgroup ids are cgroup v2's)")
    assert _decode("cgroup", os.stat(root).st_ino) == "/"
    below = next((d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d))), None)
    if below is not None:
        assert _decode("cgroup", os.stat(os.path.join(root, below)).st_ino) == f"/{below}"
    assert _decode("cgroup", 1 << 60) == str(1 << 60)


def test_disk_decoder_names_this_machines_disks() -> None:
    name = sorted(os.listdir("/sys/class/block"))[0] if os.path.isdir("/sys/class/block") else None
    if name is None:
        pytest.skip("no /sys/class/block here")
    with open(f"/sys/class/block/{name}/dev") as f:
        major, minor = (int(x) for x in f.read().split(":"))
    assert _decode("disk", (major << 20) | minor) == name
    assert _decode("disk", (4095 << 20) | 7) == "4095:7"


def test_usym_takes_the_pid_field_along() -> None:
    decode = make("usym", {"pid_field": "pid"}, None)
    assert decode.pair == "pid"
    assert isinstance(decode.fn((struct.unpack("Q", struct.pack("Q", 1))[0], os.getpid())), str)


EXPECTED = {
    "biolatency": ["rbcc_biolatency_seconds"],
    "biopattern": ["rbcc_biopattern_sequential", "rbcc_biopattern_random", "rbcc_biopattern_bytes"],
    "bitesize": ["rbcc_bitesize_bytes"],
    "cpudist": ["rbcc_cpudist_seconds"],
    "hardirqs": ["rbcc_hardirqs_seconds"],
    "runqlat": ["rbcc_runqlat_seconds"],
    "runqlen": ["rbcc_runqlen"],
    "softirqs": ["rbcc_softirqs_seconds"],
    "syscount": ["rbcc_syscount_calls"],
    "vfsstat": ["rbcc_vfsstat_calls"],
}


def test_the_tools_with_metric_sets() -> None:
    assert tool_names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_tools_metric_set_reads_maps_of_its_own_c(name: str) -> None:
    program = tool_program(name)
    assert program.name == name and [m.name for m in program.metrics] == EXPECTED[name]
    for metric in program.metrics:
        assert re.search(rf"BPF_\w+\({metric.map}[,)]", program.text)  # BPF_HISTOGRAM(dist), BPF_ARRAY(stats, ...)
    for point in program.attach:
        assert f" {point.function}(" in program.text


def test_tool_options_shape_the_metric_set() -> None:
    (per_disk,) = tool_program("biolatency -D -m").metrics
    assert isinstance(per_disk, Histogram) and per_disk.label_names == ("disk",) and per_disk.unit == "msecs"
    calls, spent = tool_program("syscount -L").metrics
    assert (calls.value, spent.value, spent.scale) == ("count", "total_ns", 1e-9)  # type: ignore[union-attr]
    assert tool_program("runqlat -P").metrics[0].label_names == ("pid",)
    assert tool_program("hardirqs -C").metrics[0].name == "rbcc_hardirqs"
    assert isinstance(tool_program("softirqs -d").metrics[0], Histogram)
    with pytest.raises(ValueError, match="options refused by biolatency's parser"):
        tool_program("biolatency -D -F")
    with pytest.raises(ValueError, match="execsnoop: has no metric set .*biolatency"):
        tool_program("execsnoop")
    with pytest.raises(ValueError, match="nosuch: is no rbcc tool"):
        tool_program("nosuch")


@pytest.mark.parametrize(
    ("module", "use"),
    [
        ("prometheus_client", lambda: Exporter().serve("127.0.0.1:0")),
        ("opentelemetry.sdk.metrics.export", lambda: Exporter().push_otlp("http://127.0.0.1:1/v1/metrics")),
        ("yaml", lambda: load_config("/nonexistent.yaml")),
    ],
)
def test_a_missing_library_names_the_extra_that_brings_it(
    monkeypatch: pytest.MonkeyPatch, module: str, use: object
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails, as where it is not installed
    with pytest.raises(ImportError, match=r"pip install 'rbcc\[export\]'"):
        use()  # type: ignore[operator]
