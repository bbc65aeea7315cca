//! Attachments bcc makes by hand with a loaded program's fd: XDP on a network device, a socket filter on
//! a raw packet socket, and `BPF_PROG_ATTACH` to a cgroup or a sockmap. These are not links: the kernel
//! keeps an XDP or cgroup program attached after the process ends (rbcc.programs removes what it
//! attached on cleanup).

use std::ffi::{CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// SO_ATTACH_BPF from asm-generic/socket.h (x86 and arm use it); the libc crate does not export it.
const SO_ATTACH_BPF: libc::c_int = 50;

/// The mode bits of the XDP flags (SKB, DRV, HW): which of a device's XDP slots an operation acts on.
const XDP_FLAGS_MODES: u32 =
    libbpf_sys::XDP_FLAGS_SKB_MODE | libbpf_sys::XDP_FLAGS_DRV_MODE | libbpf_sys::XDP_FLAGS_HW_MODE;

/// What works where a driver has no XDP of the mode asked for.
const GENERIC_XDP: &str = "XDP_FLAGS_SKB_MODE, generic XDP, works on every device";

/// The index of network device `dev`.
pub fn ifindex(dev: &str) -> Result<u32> {
    let missing = || Error::attach(format!("device {dev}"), format!("no network device named '{dev}' (see `ip link`)"));
    let name = CString::new(dev).map_err(|_| missing())?;
    // SAFETY: name is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(missing()),
        index => Ok(index),
    }
}

/// The error for a failed operation on `target` ("xdp eth0", see `Error::Attach`): `what` failed with
/// `errno`, `detail` adding what the kernel said.
fn failed(target: String, what: String, errno: i32, detail: &str) -> Error {
    let err = std::io::Error::from_raw_os_error(errno);
    let detail = if detail.is_empty() { String::new() } else { format!(" ({detail})") };
    match errno {
        libc::EPERM | libc::EACCES => {
            Error::Permission(format!("{what}: {err}{detail} (needs CAP_NET_ADMIN and CAP_BPF)"))
        }
        libc::EBADF => Error::attach(target, format!("{what}: {err}: a file descriptor given is not open{detail}")),
        _ => Error::attach(target, format!("{what}: {err}{detail}")),
    }
}

/// What the kernel said about a failed netlink request (its extack message), from libbpf's output.
fn kernel_message(libbpf_output: &str) -> String {
    libbpf_output
        .lines()
        .filter_map(|l| l.split_once("Kernel error message:").map(|(_, m)| m.trim().to_string()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Attach the XDP program `prog_fd` to device `dev` (bcc's `attach_xdp`; it replaces a program already
/// there unless `flags` has XDP_FLAGS_UPDATE_IF_NOEXIST).
pub fn xdp_attach(dev: &str, prog_fd: i32, flags: u32) -> Result<()> {
    let index = ifindex(dev)?;
    // SAFETY: a plain call; libbpf reads no options (null) and does not keep prog_fd.
    let (ret, log) = crate::libbpf_log::with_libbpf_log(|| unsafe {
        libbpf_sys::bpf_xdp_attach(index as i32, prog_fd, flags, std::ptr::null())
    });
    if ret == 0 {
        return Ok(());
    }
    let target = format!("xdp {dev}");
    let what = format!("cannot attach XDP program to {dev}");
    let said = kernel_message(&log);
    Err(match -ret {
        libc::EOPNOTSUPP => Error::kernel_feature(
            format!("XDP in this mode (flags 0x{flags:x}) on {dev}"),
            GENERIC_XDP,
            format!(
                "{what}: {} ({GENERIC_XDP})",
                if said.is_empty() { "its driver has no XDP of this mode".to_string() } else { said }
            ),
        )
        .at_target(target),
        libc::EBUSY | libc::EEXIST => Error::attach(target, format!(
            "{what}: a program is already attached there{} (remove_xdp first, or attach without XDP_FLAGS_UPDATE_IF_NOEXIST)",
            if said.is_empty() { String::new() } else { format!(": {said}") }
        )),
        libc::EINVAL if said.is_empty() => Error::attach(target, format!(
            "{what}: the kernel refused the program (is it loaded with load_func(name, BPF.XDP)?) or the flags 0x{flags:x}"
        )),
        errno => failed(target, what, errno, &said),
    })
}

/// Remove the XDP program of `flags`' mode from `dev` (bcc's `remove_xdp`). With `expected_fd`, only if
/// that program is still the one attached: returns whether it was removed.
pub fn xdp_detach(dev: &str, flags: u32, expected_fd: Option<i32>) -> Result<bool> {
    let index = match (ifindex(dev), expected_fd) {
        (Ok(index), _) => index,
        // the device is gone, and what was attached to it with it
        (Err(_), Some(_)) => return Ok(false),
        (Err(e), None) => return Err(e),
    };
    let mut opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    let mut flags = flags;
    if let Some(fd) = expected_fd {
        // libbpf adds XDP_FLAGS_REPLACE: the kernel removes the program only if it is this one
        opts.old_prog_fd = fd;
        flags &= XDP_FLAGS_MODES;
    }
    // SAFETY: opts is a valid, sized bpf_xdp_attach_opts living across the call.
    let (ret, log) =
        crate::libbpf_log::with_libbpf_log(|| unsafe { libbpf_sys::bpf_xdp_detach(index as i32, flags, &opts) });
    match -ret {
        0 => Ok(true),
        // another program is in its place (EEXIST), or ours was closed (EBADF/EINVAL)
        libc::EEXIST | libc::EBADF | libc::EINVAL if expected_fd.is_some() => Ok(false),
        errno => Err(failed(
            format!("xdp {dev}"),
            format!("cannot remove the XDP program from {dev}"),
            errno,
            &kernel_message(&log),
        )),
    }
}

/// The id of the XDP program attached to `dev` in `flags`' mode (0: none), as `ip link` shows it.
pub fn xdp_prog_id(dev: &str, flags: u32) -> Result<u32> {
    let index = ifindex(dev)?;
    let mut id = 0u32;
    // SAFETY: id is a valid u32 the call writes.
    let ret = unsafe { libbpf_sys::bpf_xdp_query_id(index as i32, flags as i32, &mut id) };
    if ret < 0 {
        return Err(failed(format!("xdp {dev}"), format!("cannot query the XDP program of {dev}"), -ret, ""));
    }
    Ok(id)
}

/// A raw packet socket on `dev` (every protocol, non-blocking) filtered by socket filter `prog_fd`
/// (bcc's `attach_raw_socket`).
pub fn raw_socket(dev: &str, prog_fd: i32) -> Result<OwnedFd> {
    let index = ifindex(dev)?;
    let all = (libc::ETH_P_ALL as u16).to_be();
    let target = || format!("socket {dev}");
    let what = || format!("cannot open a raw socket on {dev}");
    // SAFETY: a plain syscall; the fd it returns is owned below.
    let fd =
        unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, all.into()) };
    if fd < 0 {
        return Err(os_failed(target(), what(), "needs CAP_NET_RAW"));
    }
    // SAFETY: fd was just opened and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value to fill in.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = all;
    addr.sll_ifindex = index as i32;
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_ll of `len` bytes; fd is open.
    if unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), len) } < 0 {
        return Err(os_failed(target(), what(), ""));
    }
    let size = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: the option value is an i32 of `size` bytes, read during the call; fd is open.
    let ret = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, SO_ATTACH_BPF, (&prog_fd as *const i32).cast(), size) };
    if ret < 0 {
        let hint = "is the function loaded with load_func(name, BPF.SOCKET_FILTER)?";
        let what = format!("cannot attach the socket filter to a raw socket on {dev}");
        return Err(os_failed(target(), what, hint));
    }
    Ok(sock)
}

/// The error of the failed libc call just made.
fn os_failed(target: String, what: String, hint: &str) -> Error {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
    failed(target, what, errno, hint)
}

/// libbpf's name of attach type `attach_type` ("cgroup_inet_egress"), or its number.
fn attach_type_name(attach_type: u32) -> String {
    // SAFETY: libbpf returns a static string, or null for a number it does not know.
    let name = unsafe { libbpf_sys::libbpf_bpf_attach_type_str(attach_type) };
    if name.is_null() {
        return attach_type.to_string();
    }
    // SAFETY: non-null: a static NUL-terminated string.
    unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// BPF_PROG_ATTACH: attach program `prog_fd` to `target_fd` (a cgroup directory, a sockmap, ...) as
/// `attach_type` (bcc's `attach_func`).
pub fn prog_attach(prog_fd: i32, target_fd: i32, attach_type: u32, flags: u32) -> Result<()> {
    // SAFETY: a plain syscall wrapper on fds the caller holds.
    let ret = unsafe { libbpf_sys::bpf_prog_attach(prog_fd, target_fd, attach_type, flags) };
    if ret == 0 {
        return Ok(());
    }
    let kind = attach_type_name(attach_type);
    let hint = match -ret {
        libc::EINVAL => format!(
            "does the program's type fit {kind}, and the target? Some types need load_func(name, type, attach_type={attach_type})"
        ),
        libc::EEXIST | libc::EBUSY => "a program is attached there already (flags BPF_F_ALLOW_MULTI or BPF_F_ALLOW_OVERRIDE share the place)".to_string(),
        _ => String::new(),
    };
    let what = format!("cannot attach the program as {kind} to fd {target_fd}");
    Err(failed(format!("{kind} fd {target_fd}"), what, -ret, &hint))
}

/// BPF_PROG_DETACH of program `prog_fd` from `target_fd` (bcc's `detach_func`).
pub fn prog_detach(prog_fd: i32, target_fd: i32, attach_type: u32) -> Result<()> {
    // SAFETY: a plain syscall wrapper on fds the caller holds.
    let ret = unsafe { libbpf_sys::bpf_prog_detach2(prog_fd, target_fd, attach_type) };
    if ret == 0 {
        return Ok(());
    }
    let kind = attach_type_name(attach_type);
    let hint = if -ret == libc::ENOENT { "it is not attached there" } else { "" };
    let what = format!("cannot detach the program ({kind}) from fd {target_fd}");
    Err(failed(format!("{kind} fd {target_fd}"), what, -ret, hint))
}
