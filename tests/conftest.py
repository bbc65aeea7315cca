"""Shared pytest setup for every test directory (python/, tools/, bench/).

rbcc is imported from the source tree (python/) without installing it, and the helpers of
tests/python (``_bpfutil``) are importable from every directory.

Markers for what the kernel must (or must not) have.

Tests that load and attach BPF programs on the real kernel carry ``pytest.mark.needs_root``
(usually as a module-level ``pytestmark``); without root they are skipped, with the reason.

``needs_kprobes`` / ``needs_fentry`` tests need those probe types, which this project's CI kernel lacks:
there they skip, saying so, and ``make test-kernels`` runs them in a VM on a stock kernel.
``without_kprobes`` / ``without_fentry`` tests check the clear failure on a kernel that lacks them, and
skip where the feature exists. What a kernel has is probed (rbcc's own feature probes), never guessed
from its version.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
for _dir in (str(_TESTS.parent / "python"), str(_TESTS / "python")):
    if _dir not in sys.path:
        sys.path.insert(0, _dir)

from rbcc import _core  # noqa: E402 (found through the path set above)

ROOT_REASON = "needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN) to load and attach BPF programs on the real kernel"
VM_HINT = "`make test-kernels` runs these in a VM on a stock kernel"

needs_root = pytest.mark.needs_root

FEATURES = {
    "kprobes": (_core.has_kprobes, "kprobes (CONFIG_KPROBES)"),
    "fentry": (_core.has_fentry, "fentry/fexit programs"),
    "lsm": (_core.has_lsm, "BPF LSM programs"),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"needs_root: skipped unless running as root; {ROOT_REASON}")
    for name, (_, what) in FEATURES.items():
        config.addinivalue_line("markers", f"needs_{name}: needs a kernel with {what}")
        config.addinivalue_line("markers", f"without_{name}: checks the failure on a kernel without {what}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    root_tests = item.get_closest_marker("needs_root") is not None
    for name, (has, what) in FEATURES.items():
        if item.get_closest_marker(f"needs_{name}") is not None:
            root_tests = True
            if os.geteuid() == 0 and not has():
                pytest.skip(f"this kernel has no {what}; {VM_HINT}")
        if item.get_closest_marker(f"without_{name}") is not None:
            root_tests = True
            if os.geteuid() == 0 and has():
                pytest.skip(f"this kernel has {what}: the path for kernels without them cannot be seen here")
    if root_tests and os.geteuid() != 0:
        pytest.skip(ROOT_REASON)


@pytest.fixture
def pin_path(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A path under /sys/fs/bpf for the test's pinned map, named after the test and removed afterwards."""
    path = Path(f"/sys/fs/bpf/rbcc_{request.node.name}_{os.getpid()}"[:200])
    yield path
    if path.exists():
        path.unlink()
