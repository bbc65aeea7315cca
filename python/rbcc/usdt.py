"""bcc's ``bcc.usdt``: the ``USDT`` class (``from bcc import USDT`` works too), the probes it finds, and
``USDTException``. They live in ``rbcc._probes.usdt``."""

from __future__ import annotations

from ._probes.usdt import USDT, USDTArgument, USDTProbe, USDTProbeArgument, USDTProbeLocation
from .errors import USDTException

__all__ = ["USDT", "USDTArgument", "USDTException", "USDTProbe", "USDTProbeArgument", "USDTProbeLocation"]
