"""``rbcc doctor`` (``python -m rbcc doctor``): what this machine lacks for tracing, and the one command
that fixes each missing piece on Debian/Ubuntu and on Fedora.

Needed (the exit status is 1 when one is missing, 0 otherwise): privileges (root, or CAP_BPF with
CAP_PERFMON, or CAP_SYS_ADMIN), the kernel's BTF, tracefs (mounted, or mountable: rbcc mounts it itself
as root), a clang binary and a libclang of one supported LLVM version. Reported but optional (tracepoints
need none of them): kprobes, fentry/fexit, BPF LSM, ring buffers, kprobe and uprobe multi links. Nothing
is changed on the machine; what only root can check says so when run without it.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# capability numbers (linux/capability.h)
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

BTF = Path("/sys/kernel/btf/vmlinux")
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
# a stock distribution kernel has BTF, kprobes, fentry and ring buffers (Debian 11+, Fedora 31+)
STOCK_KERNEL = (
    "sudo apt-get install linux-image-amd64 (Ubuntu: linux-image-generic), then reboot",
    "sudo dnf install kernel, then reboot",
)


@dataclass
class Check:
    """One line of the report: what was looked at, whether it is there, and how to get it."""

    name: str
    ok: bool | None  # None: could not be checked (needs root)
    detail: str
    needed: bool = True
    fixes: tuple[str, str] | None = None  # (Debian/Ubuntu, Fedora)
    notes: list[str] = field(default_factory=list)


def cap_eff(status: str) -> int:
    """The effective capability set from /proc/self/status's text."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def privileges(euid: int, caps: int) -> Check:
    has = {
        name: bool(caps >> bit & 1)
        for name, bit in (("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
    }
    held = ", ".join(n for n, h in has.items() if h) or "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"
    if euid == 0 and caps:
        return Check("privileges", True, f"root ({held})")
    if (has["CAP_BPF"] and has["CAP_PERFMON"]) or has["CAP_SYS_ADMIN"]:
        return Check("privileges", True, f"uid {euid} with {held}")
    run_as_root = f"sudo {sys.executable} -m rbcc doctor (run tracing as root)"
    return Check(
        "privileges",
        False,
        f"uid {euid} holds {held}: BPF tracing needs root, or CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN)",
        fixes=(run_as_root, run_as_root),
    )


def btf(path: Path = BTF) -> Check:
    if path.is_file():
        return Check("BTF", True, f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return Check(
        "BTF", False, f"{path} is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF", fixes=STOCK_KERNEL
    )


def mounted_tracefs(mounts: str) -> str | None:
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "tracefs":
            return parts[1]
    return None


def tracefs(mounts: str, can_mount: bool, dirs: Sequence[str] = TRACEFS_DIRS) -> Check:
    where = mounted_tracefs(mounts)
    if where:
        return Check("tracefs", True, f"mounted at {where}")
    mount = f"sudo mount -t tracefs nodev {dirs[0]}"
    if not Path(dirs[0]).is_dir():
        return Check(
            "tracefs", False, f"not mounted, and {dirs[0]} is missing (CONFIG_TRACING unset)", fixes=STOCK_KERNEL
        )
    if can_mount:
        return Check("tracefs", True, f"not mounted; rbcc mounts it at {dirs[0]} when it first needs it")
    return Check(
        "tracefs",
        False,
        f"not mounted at {dirs[0]}; rbcc mounts it when run as root (mounting needs root)",
        fixes=(mount, mount),
    )


def toolchain(
    report: tuple[str | None, int | None, str | None, int | None, str | None, list[int]],
) -> list[Check]:
    """The clang binary and libclang a compile would use (rbcc._core.toolchain's report)."""
    clang, clang_v, lib, lib_v, refusal, versions = report
    newest = versions[-1]
    supported = f"supported: LLVM {', '.join(map(str, versions))}"
    if refusal is not None:
        version = clang_v if clang_v in versions else newest
        fixes = (f"sudo apt-get install clang-{version} libclang1-{version}", "sudo dnf install clang clang-libs")
        if clang is None:
            return [Check("clang", False, refusal, fixes=("sudo apt-get install clang libclang-dev", fixes[1]))]
        return [Check("clang and libclang", False, refusal, fixes=fixes)]

    def named(path: str | None, version: int | None) -> str:
        return f"{path} (LLVM {version if version is not None else 'version unknown'})"

    checks = [Check("clang", True, f"{named(clang, clang_v)}; {supported}")]
    if lib is None:
        v = clang_v if clang_v is not None else newest
        checks.append(
            Check(
                "libclang",
                False,
                f"no libclang beside {clang} (set LIBCLANG_PATH if it is elsewhere)",
                fixes=(f"sudo apt-get install libclang1-{v}", "sudo dnf install clang-libs"),
            )
        )
    else:
        checks.append(Check("libclang", True, named(lib, lib_v)))
    return checks


def kernel_features(root: bool, probe: Callable[[str], bool], btf_knows: Callable[[str, str], bool]) -> list[Check]:
    """The optional features: probed where that needs no privilege (kprobes: the PMU in sysfs; ring buffers
    and uprobe multi links: the kernel's BTF names them), loaded and attached as root (fentry, LSM, kprobe
    multi links), otherwise reported as needing root to check."""
    lsm_cmdline = (
        "sudo sh -c 'echo GRUB_CMDLINE_LINUX=\\\"\\$GRUB_CMDLINE_LINUX lsm=lockdown,capability,"
        "landlock,yama,apparmor,bpf\\\" >> /etc/default/grub && update-grub', then reboot",
        "sudo grubby --update-kernel=ALL --args=lsm=lockdown,capability,yama,selinux,bpf, then reboot",
    )
    out = [
        Check(
            "kprobes",
            probe("kprobes"),
            "kprobe PMU or kprobe_events (CONFIG_KPROBES)",
            needed=False,
            fixes=STOCK_KERNEL,
        )
    ]
    for name, what, fixes in (
        ("fentry/fexit", "a trivial fentry program loads and attaches", STOCK_KERNEL),
        ("BPF LSM", "an LSM program attaches (needs bpf in the lsm= boot list)", lsm_cmdline),
        ("kprobe multi links", "one link on many kernel functions (5.18+, CONFIG_FPROBE)", STOCK_KERNEL),
    ):
        ok = probe(name) if root else None
        detail = what if root else f"{what}: needs root to check"
        out.append(Check(name, ok, detail, needed=False, fixes=fixes))
    for name, enum, value in (
        ("ring buffers", "bpf_map_type", "BPF_MAP_TYPE_RINGBUF"),
        ("uprobe multi links", "bpf_attach_type", "BPF_TRACE_UPROBE_MULTI"),
    ):
        ok = btf_knows(enum, value) if BTF.is_file() else None
        out.append(Check(name, ok, f"the kernel's BTF has {value}", needed=False, fixes=STOCK_KERNEL))
    return out


def collect() -> list[Check]:
    from . import _core

    euid = os.geteuid()
    caps = cap_eff(Path("/proc/self/status").read_text())
    checks = [privileges(euid, caps), btf()]
    mounts = Path("/proc/self/mounts").read_text()
    checks.append(tracefs(mounts, can_mount=euid == 0 or bool(caps >> CAP_SYS_ADMIN & 1)))
    checks += toolchain(_core.toolchain())
    probes: dict[str, Callable[[], bool]] = {
        "kprobes": _core.has_kprobes,
        "fentry/fexit": _core.has_fentry,
        "BPF LSM": _core.has_lsm,
        "kprobe multi links": _core.has_kprobe_multi,
    }

    def btf_knows(enum: str, value: str) -> bool:
        try:
            return _core.kernel_enum_has_val(enum, value)
        except Exception:  # noqa: BLE001 - an unreadable BTF is reported by its own check
            return False

    root = euid == 0 or bool(caps >> CAP_SYS_ADMIN & 1)
    checks += kernel_features(root, lambda name: probes[name](), btf_knows)
    return checks


def render(checks: Sequence[Check]) -> str:
    lines = [f"rbcc doctor: Linux {platform.release()}, uid {os.geteuid()}, Python {platform.python_version()}", ""]
    for c in checks:
        state = {True: "ok", False: "MISSING" if c.needed else "absent", None: "unknown"}[c.ok]
        label = c.name + ("" if c.needed else " (optional)")
        lines.append(f"{state:8} {label:30} {c.detail}")
        if c.ok is False and c.fixes:
            lines.append(f"{'':8} {'':30} fix (Debian/Ubuntu): {c.fixes[0]}")
            lines.append(f"{'':8} {'':30} fix (Fedora):        {c.fixes[1]}")
    missing = [c.name for c in checks if c.needed and c.ok is False]
    lines.append("")
    if missing:
        lines.append(f"missing for tracing: {', '.join(missing)} (exit status 1)")
    else:
        lines.append("everything tracing needs is here (exit status 0)")
    return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> int:
    """Print the report; 0 when everything tracing needs is here, 1 otherwise."""
    if argv:
        print("usage: rbcc doctor (no options)", file=sys.stderr)
        return 2
    checks = collect()
    print(render(checks))
    return 1 if any(c.needed and c.ok is False for c in checks) else 0
