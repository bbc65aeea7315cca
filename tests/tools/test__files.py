"""The file tools' shared helpers: the name bcc prints from a path as the caller spelled it, the -p
filter, and the C that finds the directory a relative path starts from."""

from __future__ import annotations

import argparse

from rbcc._tools import files


def test_basename_is_the_last_component_as_bcc_prints_the_dentry() -> None:
    assert files.basename(b"/tmp/dir/name") == "name"
    assert files.basename(b"name") == "name"
    assert files.basename(b"dir/sub/") == "sub"
    assert files.basename(b"/") == "/"
    assert files.basename(b"caf\xc3\xa9") == "café"


def test_pid_filter_and_start_dir() -> None:
    p = argparse.ArgumentParser()
    files.add_pid(p)
    assert files.pid_filter(p.parse_args([])) == "0"
    assert files.pid_filter(p.parse_args(["-p", "42"])) == "pid != 42"
    # AT_FDCWD is the current directory (task->fs->pwd), any other dirfd a file of the task
    assert "if (dirfd == AT_FDCWD)" in files.START_DIR and "task->fs->pwd.dentry" in files.START_DIR
    assert "static __always_inline struct file *file_of_fd(int fd)" in files.START_DIR
