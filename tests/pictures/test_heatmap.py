"""Latency heatmaps (rbcc._pictures.heatmap): bcc's log2 slots, columns from events and from histograms,
the PNG and SVG matplotlib draws, the text picture, and Jupyter's MIME bundle."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from rbcc._pictures.heatmap import Heatmap, log2_slots, slot_label

pytest.importorskip("matplotlib", reason="matplotlib (rbcc[notebook], installed by make test) is not installed")


def bpf_log2l(v: int) -> int:
    """bcc's helper, as its C computes it: 0 for 0, else the bit length."""
    return v.bit_length()


def test_slots_are_bcc_s_log2_slots_up_to_64_bits() -> None:
    values = [0, 1, 2, 3, 4, 7, 8, 1000, 2**53 + 1, 2**63, 2**64 - 1]
    assert log2_slots(np.array(values, dtype=np.uint64)).tolist() == [bpf_log2l(v) for v in values]
    assert log2_slots([-5, 0.5, 1.9, 2.0]).tolist() == [0, 0, 1, 2]
    assert [slot_label(s) for s in (0, 1, 2, 3, 10)] == ["0", "0-1", "2-3", "4-7", "512-1023"]


def test_events_fall_in_their_interval_and_slot() -> None:
    times = [10.0, 10.4, 11.2, 11.9, 13.5]
    values = [1, 3, 3, 100, 5]
    h = Heatmap.from_events(times, values, interval=1.0, val_type="usecs")
    # columns from the earliest time: [10, 11), [11, 12), [12, 13), [13, 14)
    assert h.counts.shape == (4, 8)
    assert h.counts[0, 1] == 1 and h.counts[0, 2] == 1
    assert h.counts[1, 2] == 1 and h.counts[1, 7] == 1
    assert h.counts[2].sum() == 0 and h.counts[3, 3] == 1
    assert h.total == 5
    with pytest.raises(ValueError):
        Heatmap.from_events([1.0], [1, 2])


def test_histograms_make_a_column_each() -> None:
    h = Heatmap.from_histograms([[0, 1, 2], [0, 0, 0, 4]], interval=0.5)
    assert h.counts.tolist() == [[0, 1, 2, 0], [0, 0, 0, 4]] and h.interval == 0.5


def test_png_and_svg_by_the_file_s_suffix(tmp_path: Path) -> None:
    h = Heatmap.from_events(np.arange(100) / 10, np.arange(100) * 37, val_type="usecs", title="Latency")
    h.save(tmp_path / "h.png")
    h.save(tmp_path / "h.svg")
    assert (tmp_path / "h.png").read_bytes().startswith(b"\x89PNG")
    svg = ET.parse(tmp_path / "h.svg").getroot()
    assert svg.tag.endswith("svg")
    with pytest.raises(ValueError, match="png or .svg"):
        h.save(tmp_path / "h.jpg")


def test_the_text_picture_shades_each_bucket_per_column() -> None:
    h = Heatmap.from_histograms([[0, 4, 0, 1], [0, 0, 0, 4]], val_type="usecs", title="Lat")
    assert str(h).splitlines() == [
        "Lat: 9 counted in 2 x 1s",
        "usecs |",
        "  4-7 |-@",
        "  2-3 |  ",
        "  0-1 |@ ",
        "      +--> time",
    ]
    assert str(Heatmap.from_events([], [])) == "0 counted in 0 x 1s"


def test_jupyter_gets_a_png_and_the_text() -> None:
    h = Heatmap.from_events([0.0, 1.5], [10, 20])
    bundle = h._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert bundle["text/plain"] == str(h)
    assert h._repr_png_() == base64.b64decode(bundle["image/png"])


def test_an_empty_heatmap_still_draws() -> None:
    assert Heatmap.from_events([], []).png().startswith(b"\x89PNG")
