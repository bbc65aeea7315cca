"""Setup for the end-to-end tests: markers for what the kernel must (or must not) have.

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
from collections.abc import Iterator
from pathlib import Path

import pytest

from rbcc import _core

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
