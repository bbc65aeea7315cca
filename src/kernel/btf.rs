//! The kernel's BTF: its identity (a hash, keying every cache) and `vmlinux.h` dumped from it.

use std::ffi::{c_char, c_int, c_void, CString};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Names a BTF file for kernels that do not expose their own (older distribution kernels): the raw
/// or ELF files BTFHub publishes per kernel release.
pub const KERNEL_BTF_ENV: &str = "RBCC_KERNEL_BTF";

/// The BTF file named by `RBCC_KERNEL_BTF`, when set: it replaces the kernel's own everywhere (the
/// headers, the cache key, CO-RE relocations at load).
pub fn custom_btf() -> Option<PathBuf> {
    std::env::var_os(KERNEL_BTF_ENV).filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// The error for a kernel whose BTF cannot be had, naming both ways out.
fn no_btf(detail: &str) -> Error {
    match custom_btf() {
        Some(path) => {
            let instead = "point it at this kernel's BTF";
            let message = format!("cannot use the BTF file {KERNEL_BTF_ENV}={} ({detail}); {instead}", path.display());
            Error::kernel_feature("BTF", instead, message)
        }
        None => {
            let instead = format!(
                "use a kernel built with CONFIG_DEBUG_INFO_BTF=y, or set {KERNEL_BTF_ENV} to a BTF file for this \
                 kernel (BTFHub publishes them for distribution kernels)"
            );
            let message = format!("this kernel has no BTF at {VMLINUX_BTF} ({detail}): {instead}");
            Error::kernel_feature("BTF", instead, message)
        }
    }
}

/// This kernel's BTF, parsed by libbpf: the custom file or the kernel's own. Null-checked; the caller
/// frees it with btf__free.
fn load_kernel_btf() -> Result<*mut libbpf_sys::btf> {
    // SAFETY: btf__parse reads the file at a valid C path; btf__load_vmlinux_btf has no arguments.
    let btf = unsafe {
        match custom_btf() {
            Some(path) => {
                let c = CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(|_| no_btf("the path holds a NUL byte"))?;
                libbpf_sys::btf__parse(c.as_ptr(), std::ptr::null_mut())
            }
            None => libbpf_sys::btf__load_vmlinux_btf(),
        }
    };
    if btf.is_null() {
        return Err(no_btf("libbpf could not parse it"));
    }
    Ok(btf)
}

/// sha256 of the kernel's BTF, computed once per process.
pub fn btf_hash() -> Result<&'static str> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return Ok(h);
    }
    let path = custom_btf().unwrap_or_else(|| PathBuf::from(VMLINUX_BTF));
    let bytes = fs::read(&path).map_err(|e| no_btf(&e.to_string()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    Ok(HASH.get_or_init(|| digest[..16].to_string()))
}

extern "C" {
    fn vfprintf(stream: *mut libc::FILE, format: *const c_char, ap: *mut libbpf_sys::__va_list_tag) -> c_int;
}

/// libbpf's btf_dump prints through a printf-style callback; forward it to the FILE in `ctx`.
unsafe extern "C" fn print_to_file(ctx: *mut c_void, fmt: *const c_char, args: *mut libbpf_sys::__va_list_tag) {
    // SAFETY: ctx is the FILE* opened in `dump_vmlinux_h`, alive for the whole dump; fmt and args come
    // straight from libbpf's own vprintf-style call.
    unsafe {
        vfprintf(ctx as *mut libc::FILE, fmt, args);
    }
}

const HEADER_PROLOGUE: &str = "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n\
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n";
const HEADER_EPILOGUE: &str = "\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n#endif\n";

/// Write the kernel's types as C to `out` (a `vmlinux.h`), the way `bpftool btf dump format c` does.
pub fn dump_vmlinux_h(out: &Path) -> Result<()> {
    // first compiles of several processes or threads may dump at once: each into a file of its own
    let tmp = out.with_extension(format!("tmp{}-{:?}", std::process::id(), std::thread::current().id()));
    fs::write(&tmp, HEADER_PROLOGUE).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    let path = CString::new(tmp.as_os_str().as_encoded_bytes()).expect("paths have no NUL");
    // SAFETY: all pointers passed to libbpf are checked for NULL before use, the btf and dump objects are
    // freed on every path, and the FILE is closed after libbpf has stopped printing into it.
    unsafe {
        let btf = load_kernel_btf()?;
        let file = libc::fopen(path.as_ptr(), c"a".as_ptr());
        if file.is_null() {
            libbpf_sys::btf__free(btf);
            return Err(Error::io(format!("opening {}", tmp.display()), std::io::Error::last_os_error()));
        }
        let dump = libbpf_sys::btf_dump__new(btf, Some(print_to_file), file as *mut c_void, std::ptr::null());
        let mut status = 0;
        if dump.is_null() {
            status = -1;
        } else {
            let count = libbpf_sys::btf__type_cnt(btf);
            for id in 1..count {
                let rc = libbpf_sys::btf_dump__dump_type(dump, id);
                if rc < 0 {
                    status = rc;
                    break;
                }
            }
            libbpf_sys::btf_dump__free(dump);
        }
        libc::fclose(file);
        libbpf_sys::btf__free(btf);
        if status != 0 {
            return Err(Error::Setup(format!("libbpf's btf_dump failed ({status}) writing vmlinux.h")));
        }
    }
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&tmp)
        .map_err(|e| Error::io(format!("opening {}", tmp.display()), e))?;
    std::io::Write::write_all(&mut f, HEADER_EPILOGUE.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, out).map_err(|e| Error::io(format!("renaming to {}", out.display()), e))?;
    Ok(())
}

/// Run `f` on the running kernel's BTF (what `BPF.kernel_struct_has_field` and friends ask).
pub fn with_vmlinux<T>(f: impl FnOnce(&crate::btf::Btf) -> T) -> Result<T> {
    // SAFETY: the BTF is loaded here, only borrowed by `f`, and freed before returning.
    unsafe {
        let btf = load_kernel_btf()?;
        let Some(view) = crate::btf::Btf::from_raw(btf) else {
            return Err(no_btf("libbpf could not parse it"));
        };
        let out = f(&view);
        libbpf_sys::btf__free(btf);
        Ok(out)
    }
}

/// Where the running kernel defines a struct or union.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordHome {
    Vmlinux,
    /// Only in the BTF of this loaded module, which vmlinux.h does not hold.
    Module(String),
    Nowhere,
}

/// Where the running kernel defines struct `name` (union `name` when `union`): its own BTF, a loaded
/// module's (/sys/kernel/btf/<module>, split BTF on top of vmlinux's), or nowhere.
pub fn record_home(name: &str, union: bool) -> Result<RecordHome> {
    let mut modules: Vec<_> = fs::read_dir("/sys/kernel/btf")
        .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    modules.retain(|m| m != "vmlinux");
    modules.sort();
    // SAFETY: every BTF loaded here is checked for NULL, only borrowed by the views, and freed before
    // returning; a module's split BTF is freed before the base it was parsed on top of.
    unsafe {
        let base = load_kernel_btf()?;
        let Some(vmlinux) = crate::btf::Btf::from_raw(base) else {
            return Err(no_btf("libbpf could not parse it"));
        };
        let mut home = RecordHome::Nowhere;
        if vmlinux.defines_record(name, union) {
            home = RecordHome::Vmlinux;
        } else {
            for module in modules {
                let Ok(path) = CString::new(format!("/sys/kernel/btf/{module}")) else { continue };
                let split = libbpf_sys::btf__parse_split(path.as_ptr(), base);
                // the name is not among the base's types, so a match is the module's own
                let found = crate::btf::Btf::from_raw(split).is_some_and(|m| m.defines_record(name, union));
                libbpf_sys::btf__free(split);
                if found {
                    home = RecordHome::Module(module);
                    break;
                }
            }
        }
        libbpf_sys::btf__free(base);
        Ok(home)
    }
}

/// The cached `vmlinux.h` for this kernel, dumped on first use.
pub fn vmlinux_h(kernel_dir: &Path) -> Result<PathBuf> {
    let path = kernel_dir.join("vmlinux.h");
    if !path.exists() {
        dump_vmlinux_h(&path)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmlinux_h_has_task_struct() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: no kernel BTF at {VMLINUX_BTF}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("rbcc-btf-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = vmlinux_h(&dir).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("struct task_struct {"));
        assert!(text.ends_with(HEADER_EPILOGUE));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn raw_tracepoint_arity_counts_what_the_tracepoint_passes() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: no kernel BTF at {VMLINUX_BTF}");
            return;
        }
        // sched_process_exec(p, old_pid, bprm) has had these three arguments since BTF exists
        assert_eq!(with_vmlinux(|b| b.raw_tracepoint_arity("sched_process_exec")).unwrap(), Some(3));
        assert_eq!(with_vmlinux(|b| b.raw_tracepoint_arity("no_such_tracepoint")).unwrap(), None);
    }

    #[test]
    fn finds_where_records_are_defined() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: no kernel BTF at {VMLINUX_BTF}");
            return;
        }
        assert_eq!(record_home("task_struct", false).unwrap(), RecordHome::Vmlinux);
        assert_eq!(record_home("task_struct", true).unwrap(), RecordHome::Nowhere);
        assert_eq!(record_home("rbcc_no_such_struct", false).unwrap(), RecordHome::Nowhere);
    }
}
