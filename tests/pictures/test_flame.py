"""Flame graphs (rbcc._pictures.flame): what they take, the SVG the core draws (XML whose frame widths
are the counts' shares), kernel frames coloured apart, the blue off-CPU palette, the stack-map folding
over fake tables, and how Jupyter shows them."""

from __future__ import annotations

import ctypes
import errno
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from rbcc._pictures.flame import FlameGraph, flamegraph, fold_stacks, folded_lines, palettes

SVG = "{http://www.w3.org/2000/svg}"


def frames_of(svg: str) -> dict[str, tuple[float, tuple[int, int, int]]]:
    """Each frame's name (from its tooltip) → (width in percent, summed over its boxes; its last fill)."""
    out: dict[str, tuple[float, tuple[int, int, int]]] = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        title, rect = g.find(f"{SVG}title"), g.find(f"{SVG}rect")
        if title is None or rect is None or title.text is None:
            continue
        name = title.text.rsplit(" (", 1)[0]
        width = float(rect.attrib["width"].rstrip("%"))
        m = re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", rect.attrib["fill"])
        assert m, rect.attrib
        fill = (int(m[1]), int(m[2]), int(m[3]))
        out[name] = (out.get(name, (0.0, fill))[0] + width, fill)
    return out


def test_folded_lines_from_text_pairs_and_mappings() -> None:
    assert folded_lines("a;b 3\n\na;c 1\n") == ["a;b 3", "a;c 1"]
    assert folded_lines(b"a;b 3\n") == ["a;b 3"]
    assert folded_lines([(("a", b"b"), 3), ("a;c", ctypes.c_uint64(1))]) == ["a;b 3", "a;c 1"]
    assert folded_lines({("a", "b"): 3, "a;c": 1}) == ["a;b 3", "a;c 1"]
    assert folded_lines(["a;b 3\n", ""]) == ["a;b 3"]


def test_the_svg_is_xml_whose_widths_are_the_counts_shares() -> None:
    graph = flamegraph({("app", "main", "spin_a"): 200, ("app", "main", "spin_b"): 100}, title="Two spins")
    frames = frames_of(graph.svg)
    assert frames["spin_a"][0] == pytest.approx(2 * frames["spin_b"][0], rel=0.01)
    assert frames["main"][0] == pytest.approx(frames["spin_a"][0] + frames["spin_b"][0], rel=0.01)
    assert "Two spins" in graph.svg and graph.samples == 300


def test_kernel_frames_are_coloured_apart_by_default() -> None:
    graph = flamegraph(["app;main;read;ksys_read_[k];vfs_read_[k] 5", "app;main;spin 5"])
    frames = frames_of(graph.svg)
    # the SVG names frames without the annotation; "java" paints them orange (no blue), user ones red
    assert "ksys_read_[k]" not in graph.svg and "ksys_read" in frames
    assert frames["ksys_read"][1][2] == 0 and frames["vfs_read"][1][2] == 0
    assert frames["main"][1][2] > 0 and frames["spin"][1][2] > 0


def test_off_cpu_graphs_are_blue_and_count_microseconds() -> None:
    graph = flamegraph(["app;main;read;schedule 700"], palette="io", count_name="us")
    (_, (r, g, b)) = frames_of(graph.svg)["schedule"]
    assert b > r and b > g
    assert "schedule (700 us" in graph.svg


def test_palettes_are_inferno_s_and_others_are_refused() -> None:
    assert {"hot", "java", "io", "wakeup", "mem"} <= set(palettes())
    with pytest.raises(ValueError, match='unknown palette "mauve"'):
        flamegraph(["a 1"], palette="mauve")


def test_nothing_counted_still_draws_a_picture_that_says_so() -> None:
    graph = flamegraph([])
    assert "No valid input" in graph.svg and str(graph) == "Flame Graph: nothing counted"


def test_jupyter_shows_the_svg_and_a_text_summary() -> None:
    graph = flamegraph("app;main;spin_a 3\napp;main;spin_b 1\n", title="CPU")
    bundle = graph._repr_mimebundle_()
    assert bundle["image/svg+xml"] == graph._repr_svg_() == graph.svg
    assert bundle["text/plain"].splitlines() == [
        "CPU: 4 samples in 2 stacks; hottest frames:",
        "           3  75.0%  spin_a",
        "           1  25.0%  spin_b",
    ]


def test_the_facade_and_the_notebook_module_name_it(tmp_path: Any) -> None:
    import rbcc.notebook

    assert rbcc.flamegraph is flamegraph is rbcc.notebook.flamegraph
    graph = rbcc.flamegraph(["a;b 1"])
    assert isinstance(graph, FlameGraph)
    graph.save(tmp_path / "g.svg")
    ET.parse(tmp_path / "g.svg")


# -- stack maps: a table counting stack ids, folded through its BPF_STACK_TRACE table ------------------


class Key(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("user_stack_id", ctypes.c_int),
        ("kernel_stack_id", ctypes.c_int),
        ("name", ctypes.c_char * 16),
    ]


class FakeBPF:
    @staticmethod
    def ksym(addr: int) -> bytes:
        return b"k%x" % addr

    @staticmethod
    def sym(addr: int, pid: int) -> bytes:
        return b"u%x@%d" % (addr, pid)


class FakeStacks:
    bpf = FakeBPF()
    stacks = {1: [0x11, 0x12], 2: [0x21, 0x22, 0x23]}  # innermost first, as the kernel stores them

    def walk(self, stack_id: int) -> list[int]:
        return list(self.stacks[stack_id])


class FakeCounts:
    def __init__(self, items: list[tuple[Any, int]]) -> None:
        self._items = items

    def items(self) -> list[tuple[Any, Any]]:
        return [(k, ctypes.c_uint64(v)) for k, v in self._items]


def test_a_stack_map_folds_root_first_with_kernel_frames_annotated() -> None:
    counts = FakeCounts(
        [
            (Key(7, 2, 1, b"app"), 5),
            (Key(7, 2, 1, b"app"), 2),  # the same stacks under another key (another CPU's sample): added up
            (Key(8, -errno.EFAULT, 1, b"kworker"), 3),  # a kernel thread: no user side
            (Key(9, -errno.EEXIST, 99, b"lost"), 1),  # a user stack not stored; a kernel one since evicted
        ]
    )
    assert fold_stacks(counts, FakeStacks()) == [
        "lost;[Missed User Stack];[Missed Kernel Stack] 1",
        "kworker;k12_[k];k11_[k] 3",
        "app;u23@7;u22@7;u21@7;k12_[k];k11_[k] 7",
    ]
    assert fold_stacks(counts, FakeStacks(), annotate=False)[-1] == "app;u23@7;u22@7;u21@7;k12;k11 7"


def test_a_map_keyed_by_stack_id_is_kernel_stacks_and_draws_through_flamegraph() -> None:
    counts = FakeCounts([(ctypes.c_int(1), 4), (2, 2)])
    assert fold_stacks(counts, FakeStacks()) == ["k23;k22;k21 2", "k12;k11 4"]
    graph = flamegraph(counts, stack_traces=FakeStacks(), palette="hot")
    assert frames_of(graph.svg)["k12"][0] == pytest.approx(2 * frames_of(graph.svg)["k23"][0], rel=0.01)
