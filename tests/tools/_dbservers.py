"""Database servers the database tools' tests query: a stand-in mysqld of the test's own (a C program
with MySQL's USDT query probes and a dispatch_command of MySQL 5.7's shape) and, where Debian's
PostgreSQL (built with USDT probes) is installed, a real postgres server in a temporary directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _bpfutil import build_c_program
from _functargets import need_sdt_header, timed

# Waits for a line on stdin, then serves its queries (argv): "MS:TEXT" is a query (COM_QUERY) taking
# MS milliseconds, "!MS:TEXT" another command (COM_INIT_DB) taking as long. Each goes through
# rbcc_dispatch_command_COM_DATA(thd, com_data, command) (built with -DMYSQL56:
# rbcc_dispatch_command_v56(command, thd, packet, length), 5.6's shape), which fires mysql:query__start(query,
# connection, db, user, host) and mysql:query__done(status) around the work, as mysqld does. Prints
# "done", then waits for a second line.
MYSQLD_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/sdt.h>

struct com_query { const char *query; unsigned int length; };
union com_data { struct com_query com_query; long other; };

static int serve(const char *query, long command) {
    DTRACE_PROBE5(mysql, query__start, query, 7L, "test", "rbcc", "localhost");
    long ms = atol(query + strlen(query) + 1);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    DTRACE_PROBE1(mysql, query__done, 0);
    return command == 3 ? 0 : 1;
}

#ifdef MYSQL56
/* MySQL 5.6: dispatch_command(command, thd, packet, packet_length) */
__attribute__((noinline)) int rbcc_dispatch_command_v56(long command, void *thd, const char *packet, unsigned len) {
    return serve(packet, command);
}
#define DISPATCH(data, command) rbcc_dispatch_command_v56(command, NULL, (data)->com_query.query, 0)
#else
/* MySQL 5.7 and later: dispatch_command(thd, com_data, command) */
__attribute__((noinline)) int rbcc_dispatch_command_COM_DATA(void *thd, const union com_data *data, long command) {
    return serve(data->com_query.query, command);
}
#define DISPATCH(data, command) rbcc_dispatch_command_COM_DATA(NULL, data, command)
#endif

int main(int argc, char **argv) {
    char line[64], text[256];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *spec = argv[i] + (argv[i][0] == '!');
        const char *colon = strchr(spec, ':');
        /* the text, then its duration after its terminating zero */
        int n = snprintf(text, sizeof text - 16, "%s", colon + 1);
        snprintf(text + n + 1, 16, "%.*s", (int)(colon - spec), spec);
        union com_data data = {.com_query = {text, (unsigned int)n}};
        DISPATCH(&data, argv[i][0] == '!' ? 2 : 3);
    }
    printf("done\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 0;
    return 0;
}
"""


def build_mysqld(workdir: Path, *flags: str) -> Path:
    need_sdt_header()
    # named mysqld, so its comm is the server's (the tools find servers by name)
    return build_c_program(workdir, "mysqld", MYSQLD_C, "-O0", *flags)


# the stand-in server runs its queries as the function tests' program runs its plan
fake_mysqld = timed


def postgres_bin() -> Path:
    """Debian's PostgreSQL binaries (the newest version installed); skips the test where there are none,
    or where its postgres has no USDT probes."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not versions:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres)")
    notes = subprocess.run(["readelf", "-n", str(versions[-1])], capture_output=True, text=True).stdout
    if "query__start" not in notes:
        pytest.skip(f"{versions[-1]} has no USDT probes (built without --enable-dtrace)")
    return versions[-1].parent


class Postgres:
    """A PostgreSQL server of the test's own: its binary, its socket directory."""

    def __init__(self, bindir: Path, sockets: Path) -> None:
        self.bindir = bindir
        self.binary = bindir / "postgres"
        self.sockets = sockets

    @contextmanager
    def session(self) -> Iterator[PgSession]:
        s = PgSession(self)
        try:
            yield s
        finally:
            s.close()


class PgSession:
    """One psql connection (so one backend process) that runs queries when told."""

    def __init__(self, server: Postgres) -> None:
        self.proc = subprocess.Popen(
            [str(server.bindir / "psql"), "-h", str(server.sockets), "-U", "postgres", "-At", "-q"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.backend = int(self.query("select pg_backend_pid()"))

    def query(self, sql: str) -> str:
        """Run ``sql`` (one row, one column), and its result once it is done."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(sql + ";\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().rstrip("\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("\\q\n", timeout=10)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A fresh server (initdb in a temporary directory, run as the postgres user, Unix socket only)."""
    bindir = postgres_bin()
    if os.geteuid() != 0:
        pytest.skip("not root: the server runs as the postgres user")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="rbcc-pg-"))
    shutil.chown(root, "postgres")
    as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": [], "cwd": root}
    server = None
    try:
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            **as_postgres,  # type: ignore[arg-type]
        )
        server = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(root / "data"),
                "-k",
                str(root),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **as_postgres,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + 30
        while subprocess.run([str(bindir / "pg_isready"), "-h", str(root), "-q"]).returncode != 0:
            assert time.monotonic() < deadline, "postgres did not start within 30 s"
            time.sleep(0.2)
        yield Postgres(bindir, root)
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)  # fast shutdown: ends its backends
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
