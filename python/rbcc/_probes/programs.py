"""A program's functions as bcc's ``BPF.Function``: loaded as the program type the caller names
(``load_func``), and attached where bcc scripts attach them by hand: XDP on a network device
(``attach_xdp``), a socket filter on a raw socket (``attach_raw_socket``), ``BPF_PROG_ATTACH`` to a
cgroup or a sockmap (``attach_func``).

One difference from bcc, on purpose: the kernel keeps an XDP program on its device and a cgroup
program on its cgroup after the process that attached them ends, so a script that dies before its
``remove_xdp`` would leave, say, a device dropping packets. ``BPF.cleanup()`` (so also the end of a
``with BPF(...)`` block, the object's collection and interpreter exit) removes the XDP programs and
``attach_func`` attachments the object made that are still in place, and closes the sockets of
``attach_raw_socket`` (``socket.fromfd`` makes a copy that stays open). A program someone else put in
their place is left alone.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, TypeAlias

from .. import _core
from ..errors import AttachError, BPFError
from ..utils import as_str

Text = str | bytes


class BPFProgType:
    """``enum bpf_prog_type`` numbers, as bcc names them."""

    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    CGROUP_SOCKOPT = 25
    TRACING = 26
    LSM = 29


class BPFAttachType:
    """``enum bpf_attach_type`` numbers, as bcc names them."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38


class XDPAction:
    """What an XDP program returns (``enum xdp_action``)."""

    XDP_ABORTED = 0
    XDP_DROP = 1
    XDP_PASS = 2
    XDP_TX = 3
    XDP_REDIRECT = 4


class XDPFlags:
    """``attach_xdp``/``remove_xdp`` flags (``XDP_FLAGS_*`` of linux/if_link.h)."""

    UPDATE_IF_NOEXIST = 1 << 0
    SKB_MODE = 1 << 1
    DRV_MODE = 1 << 2
    HW_MODE = 1 << 3
    REPLACE = 1 << 4


class ProgramConstants:
    """The program-type, XDP action and XDP flag names bcc keeps on ``BPF`` itself."""

    SOCKET_FILTER = BPFProgType.SOCKET_FILTER
    KPROBE = BPFProgType.KPROBE
    SCHED_CLS = BPFProgType.SCHED_CLS
    SCHED_ACT = BPFProgType.SCHED_ACT
    TRACEPOINT = BPFProgType.TRACEPOINT
    XDP = BPFProgType.XDP
    PERF_EVENT = BPFProgType.PERF_EVENT
    CGROUP_SKB = BPFProgType.CGROUP_SKB
    CGROUP_SOCK = BPFProgType.CGROUP_SOCK
    LWT_IN = BPFProgType.LWT_IN
    LWT_OUT = BPFProgType.LWT_OUT
    LWT_XMIT = BPFProgType.LWT_XMIT
    SOCK_OPS = BPFProgType.SOCK_OPS
    SK_SKB = BPFProgType.SK_SKB
    CGROUP_DEVICE = BPFProgType.CGROUP_DEVICE
    SK_MSG = BPFProgType.SK_MSG
    RAW_TRACEPOINT = BPFProgType.RAW_TRACEPOINT
    CGROUP_SOCK_ADDR = BPFProgType.CGROUP_SOCK_ADDR
    TRACING = BPFProgType.TRACING
    LSM = BPFProgType.LSM

    XDP_ABORTED = XDPAction.XDP_ABORTED
    XDP_DROP = XDPAction.XDP_DROP
    XDP_PASS = XDPAction.XDP_PASS
    XDP_TX = XDPAction.XDP_TX
    XDP_REDIRECT = XDPAction.XDP_REDIRECT

    XDP_FLAGS_UPDATE_IF_NOEXIST = XDPFlags.UPDATE_IF_NOEXIST
    XDP_FLAGS_SKB_MODE = XDPFlags.SKB_MODE
    XDP_FLAGS_DRV_MODE = XDPFlags.DRV_MODE
    XDP_FLAGS_HW_MODE = XDPFlags.HW_MODE
    XDP_FLAGS_REPLACE = XDPFlags.REPLACE

    # bpf_attach_type numbers bcc keeps here too
    TRACE_FENTRY = BPFAttachType.TRACE_FENTRY
    TRACE_FEXIT = BPFAttachType.TRACE_FEXIT
    MODIFY_RETURN = BPFAttachType.MODIFY_RETURN
    LSM_MAC = BPFAttachType.LSM_MAC


_TYPE_NAMES = {v: k for k, v in vars(BPFProgType).items() if not k.startswith("_")}


def type_name(prog_type: int | None) -> str:
    """``BPF.XDP`` for 6: how the error messages name a program type."""
    return f"BPF.{_TYPE_NAMES[prog_type]}" if prog_type in _TYPE_NAMES else f"program type {prog_type}"


class Function:
    """A function of a BPF program loaded as one program type (bcc's ``BPF.Function``): ``name``
    (bytes, as bcc), ``fd`` (valid until the BPF object's cleanup), ``bpf`` (the object), and ``sock``
    once ``attach_raw_socket`` opened one."""

    def __init__(
        self,
        bpf: Any,
        name: Text,
        fd: int,
        prog_type: int | None = None,
        attach_type: int = -1,
        device: str | None = None,
    ) -> None:
        self.bpf = bpf
        self.name = name.encode() if isinstance(name, str) else bytes(name)
        self.fd = fd
        self.prog_type = prog_type
        self.attach_type = attach_type
        self.device = device
        self.sock: int | None = None

    def _how(self) -> str:
        how = type_name(self.prog_type)
        if self.attach_type >= 0:
            how += f", attach_type={self.attach_type}"
        if self.device:
            how += f", device={self.device!r}"
        return how

    def __repr__(self) -> str:
        return f"<BPF.Function {self.name.decode()} ({self._how()}) fd={self.fd}>"


class Held:
    """What one BPF object attached that the kernel would keep after the process ends, released once:
    at cleanup, or when the object is collected or the interpreter exits (it holds no reference to the
    object, so a finalizer can run it)."""

    def __init__(self) -> None:
        self.xdp: list[tuple[str, int, int]] = []  # (device, flags, program fd)
        self.attached: list[tuple[int, int, int]] = []  # (program fd, target fd, attach type)
        self.sockets: list[int] = []

    def release(self) -> None:
        for dev, flags, fd in reversed(self.xdp):
            try:
                _core.xdp_detach(dev, flags, fd)
            except BPFError:
                pass  # the device can no longer be asked: nothing of ours left to remove there
        for prog_fd, target_fd, attach_type in reversed(self.attached):
            try:
                _core.prog_detach(prog_fd, target_fd, attach_type)
            except BPFError:
                pass  # detached already, or its target closed (a sockmap goes with its last fd)
        for sock in self.sockets:
            try:
                os.close(sock)
            except OSError:
                pass  # closed by its user already
        self.xdp.clear()
        self.attached.clear()
        self.sockets.clear()


def _function(fn: Any, what: str) -> Function:
    if not isinstance(fn, Function):
        raise BPFError(f"{what} takes a BPF.Function (from load_func), not {type(fn).__name__}")
    return fn


def _check_type(fn: Function, prog_type: int, what: str) -> None:
    """A function loaded as another type gets a message saying how to load it, before the kernel's EINVAL."""
    if fn.prog_type is not None and fn.prog_type != prog_type:
        name = fn.name.decode()
        raise AttachError(
            f"{what}: {name} is loaded as {type_name(fn.prog_type)}; "
            f"it needs load_func({name!r}, {type_name(prog_type)})"
        )


def _load_hint(message: str, fn: Function) -> str:
    """What to try when the kernel refused a load in a way that has a usual cause."""
    if "EINVAL" in message and fn.attach_type < 0:
        return "\n(some program types, CGROUP_SOCK_ADDR for one, need attach_type=BPFAttachType.*)"
    if "EOPNOTSUPP" in message and fn.device:
        return f"\n(device {fn.device} cannot take programs offloaded to it: load without device=)"
    return ""


def _held(fn: Function) -> Held | None:
    return getattr(fn.bpf, "_held", None)


class ProgramFunctions(ProgramConstants):
    """bcc's ``BPF`` methods for functions loaded by hand; ``BPF`` inherits them."""

    Function: TypeAlias = Function  # bcc's BPF.Function
    _obj: _core.Object | None
    _functions: dict[str, Function]
    _held: Held
    _held_finalizer: weakref.finalize[[], ProgramFunctions]

    def _init_programs(self) -> None:
        self._functions = {}
        self._held = Held()
        self._held_finalizer = weakref.finalize(self, self._held.release)

    def _release_programs(self) -> None:
        finalizer = self.__dict__.get("_held_finalizer")
        if finalizer is not None:
            finalizer()
        self.__dict__.get("_functions", {}).clear()

    def _program(self, fn_name: Text) -> str:
        raise NotImplementedError  # BPF's: the name checked against the program's functions

    def _loaded(self) -> _core.Object:
        """The loaded object; after cleanup() (or while BPF() runs, before it is loaded) a BPFError that says
        so, instead of "'NoneType' object has no attribute ..."."""
        if self._obj is None:
            raise BPFError(
                "this BPF object was cleaned up (cleanup() or the end of its `with` block): its programs, "
                "maps and buffers are gone; make a new BPF(...)"
            )
        return self._obj

    @property
    def funcs(self) -> dict[bytes, Function]:
        """The functions load_func loaded, by name (bcc's ``BPF.funcs``)."""
        return {name.encode(): fn for name, fn in self._functions.items()}

    def load_func(self, func_name: Text, prog_type: int, device: Text | None = None, attach_type: int = -1) -> Function:
        """Load function ``func_name`` as program type ``prog_type`` (``BPF.XDP``, ...), with
        ``attach_type`` as its expected attach type and bound to network device ``device`` when given.
        A function is loaded once: asking again returns the same Function, asking for another type is
        an error."""
        obj = self._loaded()
        name = self._program(func_name)
        dev = as_str(device) if device else None
        fn = self._functions.get(name)
        if fn is not None:
            if (fn.prog_type, fn.attach_type, fn.device) == (prog_type, attach_type, dev):
                return fn
            wanted = Function(self, name, -1, prog_type, attach_type, dev)
            raise BPFError(
                f"{name} is already loaded as {fn._how()}; load_func loads a function once per BPF object, "
                f"so it cannot also be {wanted._how()} (compile another BPF object for that)"
            )
        fn = Function(self, name, -1, prog_type, attach_type, dev)
        try:
            fn.fd = obj.load_func(name, prog_type, attach_type if attach_type >= 0 else None, dev)
        except BPFError as e:
            raise type(e)(f"cannot load {name} as {fn._how()}: {e}{_load_hint(str(e), fn)}") from e
        self._functions[name] = fn
        return fn

    def load_funcs(self, prog_type: int = BPFProgType.KPROBE) -> list[Function]:
        """Load every function of the program as ``prog_type``."""
        return [self.load_func(name, prog_type) for name, _section in self._loaded().programs()]

    def dump_func(self, func_name: Text) -> bytes:
        """The function's BPF instructions (8 bytes each) as they go to the kernel: map fds in its map
        loads, its subprograms appended. Of the program load_func made, else of the function loaded as
        the type its declaration gives it (``struct xdp_md *ctx``: XDP, ...)."""
        obj = self._loaded()
        name = self._program(func_name)
        fn = self._functions.get(name)
        if fn is None:
            return obj.func_insns(name)
        return obj.func_insns(name, fn.prog_type, fn.attach_type if fn.attach_type >= 0 else None, fn.device)

    @staticmethod
    def attach_xdp(dev: Text, fn: Function, flags: int = 0) -> None:
        """Attach XDP function ``fn`` to network device ``dev`` (``XDP_FLAGS_*`` in ``flags``)."""
        fn = _function(fn, "attach_xdp")
        device = as_str(dev)
        _check_type(fn, BPFProgType.XDP, f"cannot attach XDP program to {device}")
        _core.xdp_attach(device, fn.fd, flags)
        held = _held(fn)
        if held is not None:
            held.xdp.append((device, flags, fn.fd))

    @staticmethod
    def remove_xdp(dev: Text, flags: int = 0) -> None:
        """Remove the XDP program (of the mode ``flags`` names) from network device ``dev``."""
        _core.xdp_detach(as_str(dev), flags)

    @staticmethod
    def attach_raw_socket(fn: Function, dev: Text) -> None:
        """Open a raw packet socket on ``dev`` filtered by socket filter ``fn``; its fd is ``fn.sock``."""
        fn = _function(fn, "attach_raw_socket")
        device = as_str(dev)
        _check_type(fn, BPFProgType.SOCKET_FILTER, f"cannot attach a socket filter on {device}")
        fn.sock = _core.raw_socket(device, fn.fd)
        held = _held(fn)
        if held is not None:
            held.sockets.append(fn.sock)

    @staticmethod
    def attach_func(fn: Function, attachable_fd: int, attach_type: int, flags: int = 0) -> None:
        """Attach ``fn`` to ``attachable_fd`` (a cgroup directory, a sockmap) as ``attach_type``
        (``BPFAttachType.*``): the kernel's BPF_PROG_ATTACH."""
        fn = _function(fn, "attach_func")
        _core.prog_attach(fn.fd, attachable_fd, attach_type, flags)
        held = _held(fn)
        if held is not None:
            held.attached.append((fn.fd, attachable_fd, attach_type))

    @staticmethod
    def detach_func(fn: Function, attachable_fd: int, attach_type: int) -> None:
        """Undo ``attach_func``."""
        fn = _function(fn, "detach_func")
        _core.prog_detach(fn.fd, attachable_fd, attach_type)
        held = _held(fn)
        if held is not None and (fn.fd, attachable_fd, attach_type) in held.attached:
            held.attached.remove((fn.fd, attachable_fd, attach_type))
