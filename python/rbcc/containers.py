"""Container filters for tools' ``--cgroupmap``/``--mntnsmap`` options (bcc's ``bcc.containers``).

``filter_by_containers(args)`` returns C that defines ``container_should_be_filtered()``, which a
probe calls to skip events from outside the chosen containers. Without either option it filters
nothing.
"""

from __future__ import annotations

from typing import Any

from .errors import BPFError


def _no_filter(name: str) -> str:
    return f"static inline int {name}(void) {{ return 0; }}\n"


def filter_by_containers(args: Any) -> str:
    cgroupmap = getattr(args, "cgroupmap", None)
    mntnsmap = getattr(args, "mntnsmap", None)
    if cgroupmap or mntnsmap:
        # Both filter through a map another program pinned under /sys/fs/bpf (BPF_TABLE_PINNED).
        raise BPFError("--cgroupmap and --mntnsmap need pinned maps (BPF_TABLE_PINNED), which rbcc does not load yet")
    return (
        _no_filter("_cgroup_filter")
        + _no_filter("_mntns_filter")
        + "static inline int container_should_be_filtered(void) { return _cgroup_filter() || _mntns_filter(); }\n"
    )
