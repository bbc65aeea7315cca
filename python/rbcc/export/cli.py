"""``rbcc export``: run BPF programs and serve their maps as metrics until SIGTERM.

    rbcc export CONFIG.yaml [--listen 127.0.0.1:9435]
    rbcc export --tool biolatency --tool runqlat --tool 'syscount -L'
    rbcc export CONFIG.yaml --otlp http://127.0.0.1:4318/v1/metrics --otlp-interval 15

A config file and --tool sets combine. Every mistake stops the command before it serves, in one line
on stderr: a config error names the file, line and field (exit 2); a program that does not compile
or attach names its entry (exit 1). SIGTERM or SIGINT detaches everything and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from ..errors import BPFError
from .config import Config, ConfigError, load_config
from .exporter import Exporter, field_of, parse_listen
from .spec import DEFAULT_MAX_SERIES, SpecError
from .tools import tool_names, tool_program

__all__ = ["main"]

DEFAULT_LISTEN = "127.0.0.1:9435"  # ebpf_exporter's port, on this host only unless told otherwise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rbcc export",
        description="Serve BPF maps as Prometheus metrics (and push them over OTLP).",
        epilog="Listens on 127.0.0.1 unless --listen (or the config's listen:) names another address.",
    )
    p.add_argument("config", nargs="?", help="a YAML file of programs and their metrics")
    p.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="'NAME [OPTIONS]'",
        help="export the metric set of one of rbcc's tools (repeatable; --list-tools names them)",
    )
    p.add_argument("--listen", metavar="ADDR:PORT", help=f"where Prometheus scrapes (default {DEFAULT_LISTEN})")
    p.add_argument("--otlp", metavar="URL", help="also push to this OTLP/HTTP endpoint (.../v1/metrics)")
    p.add_argument("--otlp-interval", type=float, default=15.0, metavar="SECONDS", help="push interval (15)")
    p.add_argument(
        "--otlp-header", action="append", default=[], metavar="NAME=VALUE", help="a header for each push (repeatable)"
    )
    p.add_argument("--max-series", type=int, metavar="N", help=f"label sets per metric (default {DEFAULT_MAX_SERIES})")
    p.add_argument("--list-tools", action="store_true", help="list the tools with a metric set and exit")
    return p


def _fail(message: str, code: int) -> int:
    print(f"rbcc export: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    if opts.list_tools:
        print("\n".join(tool_names()))
        return 0
    if opts.config is None and not opts.tool:
        return _fail("name a CONFIG.yaml or a --tool (rbcc export --list-tools lists the tools)", 2)
    headers: dict[str, str] = {}
    for header in opts.otlp_header:
        name, sep, value = header.partition("=")
        if not sep or not name:
            return _fail(f"--otlp-header {header!r}: NAME=VALUE", 2)
        headers[name.strip()] = value.strip()
    try:
        config = load_config(opts.config) if opts.config is not None else None
        tools = [tool_program(spec) for spec in opts.tool]
        listen = opts.listen or (config.listen if config and config.listen else DEFAULT_LISTEN)
        parse_listen(listen)
    except (ConfigError, ValueError, ImportError) as e:
        return _fail(str(e), 2)
    max_series = opts.max_series or (config.max_series if config else None) or DEFAULT_MAX_SERIES
    if max_series < 1:
        return _fail(f"--max-series {max_series}: a positive number of label sets", 2)

    # From here on a signal ends the run in order: whatever is loaded is detached before exit.
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    exporter = Exporter(max_series=max_series)
    try:
        code = _load(exporter, config, tools)
        if code or stop.is_set():
            return code
        try:
            host, port = exporter.serve(listen)
            if opts.otlp:
                exporter.push_otlp(opts.otlp, interval=opts.otlp_interval, headers=headers)
        except (OSError, ValueError, ImportError) as e:
            return _fail(f"cannot serve at {listen}: {e}" if isinstance(e, OSError) else str(e), 1)
        shown = f"[{host}]" if ":" in host else host
        metrics = len(exporter.metric_names)
        print(
            f"rbcc export: {len(exporter.programs)} programs, {metrics} metrics at http://{shown}:{port}/metrics"
            + (f", pushing to {opts.otlp} every {opts.otlp_interval:g}s" if opts.otlp else ""),
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            pass
        return 0
    finally:
        exporter.close()


def _load(exporter: Exporter, config: Config | None, tools: Sequence[Any]) -> int:
    """Load every program (the config's, then the tools'); the first failure, said in one line, ends it."""
    for entry in config.entries if config else ():
        try:
            exporter.load(entry.program)
        except (BPFError, SpecError, ValueError, OSError) as e:
            return _fail(config.load_error(entry, field_of(e), e) if config else str(e), 1)
    for program in tools:
        try:
            exporter.load(program)
        except (BPFError, SpecError, ValueError, OSError) as e:
            return _fail(f"--tool {program.name}: {type(e).__name__}: {e}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
