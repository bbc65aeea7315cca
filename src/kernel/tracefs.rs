//! tracefs: where it is (mounting it when missing), and tracepoint formats turned into C structs.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::{Error, Result};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs mount point. Mounts it at /sys/kernel/tracing when no tracefs is mounted (needs root).
pub fn tracefs() -> Result<PathBuf> {
    static MOUNT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = MOUNT.get() {
        return Ok(p.clone());
    }
    let path = find_or_mount()?;
    Ok(MOUNT.get_or_init(|| path).clone())
}

fn find_or_mount() -> Result<PathBuf> {
    if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
        for line in mounts.lines() {
            let mut parts = line.split_whitespace();
            let (_, dir, fstype) = (parts.next(), parts.next(), parts.next());
            if fstype == Some("tracefs") {
                if let Some(dir) = dir {
                    return Ok(PathBuf::from(dir));
                }
            }
        }
    }
    for dir in CANDIDATES {
        if PathBuf::from(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    let target = CANDIDATES[0];
    // SAFETY: every pointer is a NUL-terminated literal that outlives the call.
    let rc = unsafe {
        libc::mount(c"nodev".as_ptr(), c"/sys/kernel/tracing".as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null())
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
            return Err(Error::Permission(format!(
                "tracefs is not mounted and mounting it at {target} needs CAP_SYS_ADMIN (run as root, or mount -t tracefs nodev {target})"
            )));
        }
        return Err(Error::kernel_feature(
            "tracefs",
            format!("mount it yourself (mount -t tracefs nodev {target}), or use a kernel with CONFIG_TRACING"),
            format!("cannot mount tracefs at {target}: {err}"),
        ));
    }
    Ok(PathBuf::from(target))
}

/// One field of a tracepoint's format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The declaration as the kernel prints it, e.g. `const char * filename` or `char comm[16]`.
    pub decl: String,
    pub name: String,
    pub offset: usize,
    pub size: usize,
}

pub fn format_path(category: &str, event: &str) -> Result<PathBuf> {
    Ok(tracefs()?.join("events").join(category).join(event).join("format"))
}

pub fn tracepoint_exists(category: &str, event: &str) -> bool {
    format_path(category, event).map(|p| p.exists()).unwrap_or(false)
}

/// The fields of `category:event`, in offset order.
pub fn tracepoint_fields(category: &str, event: &str) -> Result<Vec<Field>> {
    let path = format_path(category, event)?;
    let text = fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::compile(format!(
                "tracepoint {category}:{event} does not exist on this kernel (no {})",
                path.display()
            ))
        } else {
            Error::io(format!("reading {}", path.display()), e)
        }
    })?;
    Ok(parse_format(&text))
}

pub fn parse_format(text: &str) -> Vec<Field> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let mut decl = None;
        let mut offset = None;
        let mut size = None;
        for (i, part) in rest.split(';').enumerate() {
            let part = part.trim();
            if i == 0 {
                decl = Some(part.to_string());
            } else if let Some(v) = part.strip_prefix("offset:") {
                offset = v.trim().parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.trim().parse().ok();
            }
        }
        if let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) {
            let name = decl_name(&decl);
            fields.push(Field { decl, name, offset, size });
        }
    }
    fields.sort_by_key(|f| f.offset);
    fields
}

/// The identifier a declaration declares: its last identifier outside `[...]`
/// (`char comm[16]` → comm, `__data_loc char[] name` → name).
fn decl_name(decl: &str) -> String {
    let mut head = String::new();
    let mut depth = 0;
    for c in decl.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => head.push(c),
            _ => {}
        }
    }
    head.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).find(|s| !s.is_empty()).unwrap_or("").to_string()
}

/// C for `struct tracepoint__<category>__<event>`, laid out at exactly the format's offsets.
///
/// Each field sits in a union with a char array of the format's size: syscall tracepoints give
/// `int` arguments 8-byte slots, so the C type's own size cannot be trusted to place what follows.
pub fn tracepoint_struct(category: &str, event: &str, fields: &[Field]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "struct tracepoint__{category}__{event} {{");
    let mut at = 0usize;
    for (i, f) in fields.iter().enumerate() {
        if f.offset < at {
            continue; // overlapping field (never seen in practice): keep the first
        }
        if f.offset > at {
            let _ = writeln!(out, "\tchar __rbcc_pad{i}[{}];", f.offset - at);
        }
        let decl = if let Some(rest) = f.decl.strip_prefix("__data_loc ") {
            let _ = rest;
            format!("u32 data_loc_{}", f.name)
        } else if f.decl.contains("[]") {
            // A flexible array at the end (dynamic data): nothing to lay out.
            at = f.offset + f.size;
            continue;
        } else {
            f.decl.clone()
        };
        if f.size == 0 {
            at = f.offset;
            continue;
        }
        let _ = writeln!(out, "\tunion {{ {decl}; char __rbcc_size{i}[{}]; }} __attribute__((packed));", f.size);
        at = f.offset + f.size;
    }
    out.push_str("} __attribute__((aligned(8)));\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str = "name: sys_enter_openat
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"dfd: 0x%08lx\", ((unsigned long)(REC->dfd))
";

    #[test]
    fn parses_fields_in_order() {
        let f = parse_format(OPENAT);
        assert_eq!(f.len(), 9);
        assert_eq!(f[6].name, "filename");
        assert_eq!(f[6].offset, 24);
        assert_eq!(f[6].decl, "const char * filename");
        assert_eq!(decl_name("char comm[16]"), "comm");
        assert_eq!(decl_name("__data_loc char[] name"), "name");
    }

    #[test]
    fn struct_pads_to_offsets() {
        let s = tracepoint_struct("syscalls", "sys_enter_openat", &parse_format(OPENAT));
        assert!(s.starts_with("struct tracepoint__syscalls__sys_enter_openat {"));
        assert!(s.contains("char __rbcc_pad5[4];"), "{s}");
        assert!(s.contains("union { const char * filename; char __rbcc_size6[8]; }"), "{s}");
    }
}
