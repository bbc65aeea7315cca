"""Container filters for tools' ``--cgroupmap``/``--mntnsmap`` options (bcc's ``bcc.containers``).

``filter_by_containers(args)`` returns C that defines ``container_should_be_filtered()``, which a
probe calls to skip events from outside the chosen containers. Without either option it filters
nothing.
"""

from __future__ import annotations

from typing import Any

from .utils import as_str

__all__ = ["filter_by_containers"]


def _no_filter(name: str) -> str:
    return f"static inline int {name}(void) {{ return 0; }}\n"


def _c_string(path: Any) -> str:
    text = as_str(path)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cgroup_filter(path: Any) -> str:
    # The map (cgroup id → anything) is pinned by whoever chooses the containers, e.g. with bpftool.
    return f"""BPF_TABLE_PINNED("hash", u64, u64, cgroupset, 1024, {_c_string(path)});
static inline int _cgroup_filter(void) {{
    u64 cgroupid = bpf_get_current_cgroup_id();
    return cgroupset.lookup(&cgroupid) == NULL;
}}
"""


def _mntns_filter(path: Any) -> str:
    # struct mnt_namespace comes from the kernel's BTF; a tool that defines its own copy (bcc's do, as
    # the struct is private to fs/) checks MNT_NAMESPACE_DEFINED first.
    return f"""#define MNT_NAMESPACE_DEFINED
BPF_TABLE_PINNED("hash", u64, u32, mount_ns_set, 1024, {_c_string(path)});
static inline int _mntns_filter(void) {{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u64 ns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
    return mount_ns_set.lookup(&ns_id) == NULL;
}}
"""


def filter_by_containers(args: Any) -> str:
    """C defining ``container_should_be_filtered()``: true for events outside the chosen containers.

    ``args.cgroupmap`` / ``args.mntnsmap`` name hash maps pinned under /sys/fs/bpf whose keys are the
    cgroup ids / mount namespace ids to keep.
    """
    cgroupmap = getattr(args, "cgroupmap", None)
    mntnsmap = getattr(args, "mntnsmap", None)
    return (
        (_cgroup_filter(cgroupmap) if cgroupmap else _no_filter("_cgroup_filter"))
        + (_mntns_filter(mntnsmap) if mntnsmap else _no_filter("_mntns_filter"))
        + "static inline int container_should_be_filtered(void) { return _cgroup_filter() || _mntns_filter(); }\n"
    )
