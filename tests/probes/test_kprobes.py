"""rbcc._probes.kprobes: which way event_re's functions are attached, and the bookkeeping of a multi link that
stands for several functions' kprobes. A fake core object records what the kernel would be asked; the
real attaches run in make test-kernels' VMs (test_bpf_kernel_features.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rbcc._probes import kprobes
from rbcc.errors import AttachError

FUNCS = ["vfs_read", "vfs_write", "do_nanosleep"]


class FakeLink:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.attached = log, name, True
        log.append(f"attach {name}")

    def detach(self) -> None:
        if self.attached:
            self.log.append(f"detach {self.name}")
        self.attached = False


class FakeObject:
    """The core Object's two kprobe attaches, logged; ``refuse_multi`` makes the multi link fail."""

    def __init__(self, refuse_multi: bool = False) -> None:
        self.log: list[str] = []
        self.refuse_multi = refuse_multi

    def attach_kprobe(self, prog: str, func: str, retprobe: bool) -> FakeLink:
        return FakeLink(self.log, f"{prog}@{func}")

    def attach_kprobe_multi(self, prog: str, funcs: list[str], retprobe: bool) -> FakeLink:
        if self.refuse_multi:
            raise AttachError("cannot attach kprobe to 3 functions through one kprobe multi link")
        return FakeLink(self.log, f"{prog}@{'+'.join(funcs)}")


@pytest.fixture
def multi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kprobes._core, "has_kprobe_multi", lambda: True)


def test_one_multi_link_stands_for_every_function(multi: None) -> None:
    obj = FakeObject()
    pairs = kprobes.attach_kprobes(obj, "on_call", FUNCS, retprobe=False)
    assert [f for f, _ in pairs] == FUNCS
    assert len({id(link) for _, link in pairs}) == 1
    assert obj.log == ["attach on_call@vfs_read+vfs_write+do_nanosleep"]


def test_a_refused_multi_link_falls_back_to_one_kprobe_each(multi: None) -> None:
    obj = FakeObject(refuse_multi=True)
    pairs = kprobes.attach_kprobes(obj, "on_call", FUNCS, retprobe=False)
    assert [link.name for _, link in pairs] == [f"on_call@{f}" for f in FUNCS]


def test_one_kprobe_each_without_multi_links_or_for_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kprobes._core, "has_kprobe_multi", lambda: False)
    assert len(kprobes.attach_kprobes(FakeObject(), "f", FUNCS, retprobe=True)) == 3
    monkeypatch.setattr(kprobes._core, "has_kprobe_multi", lambda: True)
    obj = FakeObject()
    kprobes.attach_kprobes(obj, "f", ["vfs_read"], retprobe=True)
    assert obj.log == ["attach f@vfs_read"]


def test_removing_a_function_attaches_the_rest_before_the_old_link_goes(multi: None) -> None:
    obj = FakeObject()
    group: Any = kprobes.attach_kprobes(obj, "p", FUNCS, retprobe=False)[0][1]
    group.remove("vfs_write")
    assert obj.log[1:] == ["attach p@vfs_read+do_nanosleep", "detach p@vfs_read+vfs_write+do_nanosleep"]
    assert group.funcs == ["vfs_read", "do_nanosleep"] and group.attached
    group.remove("vfs_read")
    group.remove("do_nanosleep")
    assert obj.log[-1] == "detach p@do_nanosleep" and not group.attached


def test_a_failed_reattach_leaves_every_function_attached(multi: None) -> None:
    obj = FakeObject()
    group: Any = kprobes.attach_kprobes(obj, "p", FUNCS, retprobe=False)[0][1]
    obj.refuse_multi = True
    with pytest.raises(AttachError):
        group.remove("vfs_write")
    assert group.funcs == FUNCS and group.attached and obj.log == ["attach p@vfs_read+vfs_write+do_nanosleep"]


def test_detaching_the_group_twice_detaches_once(multi: None) -> None:
    obj = FakeObject()
    group: Any = kprobes.attach_kprobes(obj, "p", FUNCS, retprobe=False)[0][1]
    group.detach()
    group.detach()  # BPF.cleanup() reaches the group once per function
    assert obj.log == ["attach p@vfs_read+vfs_write+do_nanosleep", "detach p@vfs_read+vfs_write+do_nanosleep"]
    assert not group.attached
