//! The BPF programs loaded in the kernel, whoever loaded them, with their run statistics (for bpftop):
//! the kernel counts each program's runs and run time while some process holds the descriptor
//! BPF_ENABLE_STATS returned.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libbpf_sys as sys;

use crate::error::{Error, Result};

/// One loaded program, as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgStats {
    pub id: u32,
    /// libbpf's name of its type ("tracepoint", "kprobe", ...), or the number where libbpf has none.
    pub prog_type: String,
    /// The program's name as loaded (the kernel keeps 15 characters of it).
    pub name: String,
    /// Counted only while run statistics are on.
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

fn errno_error(context: String, rc: i32) -> Error {
    Error::io(context, std::io::Error::from_raw_os_error(-rc))
}

/// Turn on run-time statistics of every program (BPF_STATS_RUN_TIME) for as long as the returned
/// descriptor stays open.
pub fn enable_stats() -> Result<OwnedFd> {
    // SAFETY: a plain syscall wrapper with an enum argument; nothing is borrowed.
    let fd = unsafe { sys::bpf_enable_stats(sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        return Err(errno_error("enabling BPF run time statistics (BPF_ENABLE_STATS)".into(), fd));
    }
    // SAFETY: a non-negative fd is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn type_name(prog_type: u32) -> String {
    // SAFETY: libbpf returns a static NUL-terminated string, or NULL for a type it does not know.
    let name = unsafe { sys::libbpf_bpf_prog_type_str(prog_type) };
    if name.is_null() {
        return prog_type.to_string();
    }
    // SAFETY: non-NULL: a static NUL-terminated string of libbpf's.
    unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// A descriptor of the program with this id, or None when it was unloaded since its id was listed.
fn open_prog(id: u32) -> Result<Option<OwnedFd>> {
    // SAFETY: a plain syscall wrapper; the id is a number.
    let fd = unsafe { sys::bpf_prog_get_fd_by_id(id) };
    if fd == -libc::ENOENT {
        return Ok(None);
    }
    if fd < 0 {
        return Err(errno_error(format!("opening BPF program {id}"), fd));
    }
    // SAFETY: a non-negative fd is a new descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Fill `info` from the kernel: the arrays it asks for (its pointers and counts) are written within
/// the sizes it gives.
fn read_info(fd: &OwnedFd, id: u32, info: &mut sys::bpf_prog_info) -> Result<()> {
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: info is a bpf_prog_info of `len` bytes; the caller vouches for any array it points at.
    let rc = unsafe { sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), info, &mut len) };
    if rc < 0 {
        return Err(errno_error(format!("reading BPF program {id}'s info"), rc));
    }
    Ok(())
}

/// The info of the program with this id, or None when it was unloaded since its id was listed.
fn prog_info(id: u32) -> Result<Option<ProgStats>> {
    let Some(fd) = open_prog(id)? else { return Ok(None) };
    // SAFETY: bpf_prog_info is plain data; zeroed, it asks for none of the arrays (instructions, maps).
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    read_info(&fd, id, &mut info)?;
    let name: Vec<u8> = info.name.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    Ok(Some(ProgStats {
        id: info.id,
        prog_type: type_name(info.type_),
        name: String::from_utf8_lossy(&name).into_owned(),
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
    }))
}

/// The whole name of the program with this id, from its BTF (the kernel keeps 15 characters in its
/// info), as bpftool shows it; None for a program without BTF or one since unloaded.
pub fn full_name(id: u32) -> Result<Option<String>> {
    let Some(fd) = open_prog(id)? else { return Ok(None) };
    // SAFETY: plain data, zeroed: no arrays asked for.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    read_info(&fd, id, &mut info)?;
    if info.btf_id == 0 || info.nr_func_info == 0 {
        return Ok(None);
    }
    let btf_id = info.btf_id;
    let mut func = sys::bpf_func_info { insn_off: 0, type_id: 0 };
    // SAFETY: plain data, zeroed; then one func_info record asked for, into `func`.
    let mut info: sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_func_info = 1;
    info.func_info_rec_size = std::mem::size_of::<sys::bpf_func_info>() as u32;
    info.func_info = &mut func as *mut sys::bpf_func_info as u64;
    read_info(&fd, id, &mut info)?;
    // SAFETY: a plain call; NULL when the BTF object is gone or unreadable.
    let btf = unsafe { sys::btf__load_from_kernel_by_id(btf_id) };
    if btf.is_null() {
        return Ok(None);
    }
    // SAFETY: btf is a live BTF object until freed below; the type and its name belong to it, and the
    // name is copied out before the free.
    let name = unsafe {
        let t = sys::btf__type_by_id(btf, func.type_id);
        let name = if t.is_null() { std::ptr::null() } else { sys::btf__name_by_offset(btf, (*t).name_off) };
        let owned = (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned());
        sys::btf__free(btf);
        owned
    };
    Ok(name.filter(|n| !n.is_empty()))
}

/// Every program loaded in the kernel, by id (programs unloaded meanwhile are left out).
pub fn loaded_programs() -> Result<Vec<ProgStats>> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: next is a u32 the call writes.
        let rc = unsafe { sys::bpf_prog_get_next_id(id, &mut next) };
        if rc == -libc::ENOENT {
            return Ok(out);
        }
        if rc < 0 {
            return Err(errno_error("listing BPF programs (BPF_PROG_GET_NEXT_ID)".into(), rc));
        }
        if let Some(stats) = prog_info(next)? {
            out.push(stats);
        }
        id = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_libbpfs() {
        assert_eq!(type_name(sys::BPF_PROG_TYPE_TRACEPOINT), "tracepoint");
        assert_eq!(type_name(sys::BPF_PROG_TYPE_KPROBE), "kprobe");
        assert_eq!(type_name(100_000), "100000");
    }
}
