"""Setup for the end-to-end tests: the ``needs_root`` marker.

Tests that load and attach BPF programs on the real kernel carry ``pytest.mark.needs_root``
(usually as a module-level ``pytestmark``); without root they are skipped, with the reason.
"""

from __future__ import annotations

import os

import pytest

ROOT_REASON = "needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN) to load and attach BPF programs on the real kernel"

needs_root = pytest.mark.needs_root


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"needs_root: skipped unless running as root; {ROOT_REASON}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_root") is not None and os.geteuid() != 0:
        pytest.skip(ROOT_REASON)
