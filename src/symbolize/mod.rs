//! Addresses → symbols with blazesym, and symbol names → addresses, answering what bcc's symbol
//! caches answer (bcc's `bcc_syms.cc`):
//!
//! - a process's addresses (`process.rs`): its ELF files' symbol tables, then what bcc finds beyond
//!   them: split debug files (`.gnu_debuglink`, and `.build-id/xx/yyyy.debug` under the debug
//!   directories, `splitdebug.rs`), MiniDebugInfo (`.gnu_debugdata`, blazesym's `xz` feature), JIT
//!   code named by `/tmp/perf-PID.map`, the vDSO; and on request the functions DWARF says are
//!   inlined at an address (bcc has none);
//! - kernel addresses (`kernel.rs`): kallsyms, with the module a symbol belongs to (`[bpf]`,
//!   `[ext4]`) as bcc names it;
//! - symbol names → where a uprobe attaches (`byname.rs`): the symbol tables, then the same split
//!   debug files, where distributions keep the names of local functions;
//! - frames of a BPF_STACK_TRACE_BUILDID map, (build id, file offset) (`buildid.rs`): through the
//!   ELF files registered for their build ids (bcc's `BPF.add_module`), or a debug directory's.

mod buildid;
mod byname;
mod kernel;
mod process;
mod splitdebug;

use std::env;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::OnceLock;

use blazesym::inspect::{self, Inspector};
use blazesym::SymType;

use crate::error::{Error, Result};

pub use buildid::{add_module, build_id_sym};
pub use kernel::{ksym, ksymname};
pub use process::{resolve_name, user_module, usym, usym_inlined};

/// A symbol an address resolved to: its name, the address's offset into it, and the file (or kernel
/// module) it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub offset: u64,
    pub module: String,
}

/// The directories split debug files are looked for in: `$RBCC_DEBUG_DIRS` (colon-separated) first,
/// then the system's `/usr/lib/debug` and `/lib/debug`, where gdb and bcc look. Each one's
/// `.build-id/` subdirectory holds the files named by build id. Read once: the symbolizers built
/// from it live as long as their threads.
fn debug_dirs() -> &'static [PathBuf] {
    static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    DIRS.get_or_init(|| {
        let extra = env::var_os("RBCC_DEBUG_DIRS").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()).collect();
        dirs.extend(["/usr/lib/debug", "/lib/debug"].map(PathBuf::from));
        dirs
    })
}

/// Where uprobes attach to symbol `name` of ELF file `path`: its offset in the file, found in the
/// symbol tables or, as bcc finds them, in the file's split debug file and DWARF.
pub fn symbol_file_offset(path: &str, name: &str) -> Option<u64> {
    byname::file_offset_of(&Inspector::new(), std::path::Path::new(path), name)
}

/// The functions an ELF file defines (symtab and dynsym): (name, address, file offset), by address.
///
/// The file offset is what a uprobe attaches at; names may repeat (local symbols of the same name).
pub fn elf_functions(path: &str) -> Result<Vec<(String, u64, u64)>> {
    let mut elf = inspect::source::Elf::new(path);
    // the symbol tables, which uprobes attach by (blazesym's default, with DWARF, reads only DWARF)
    elf.debug_syms = false;
    let src = inspect::source::Source::Elf(elf);
    let mut out = Vec::new();
    Inspector::new()
        .for_each(&src, |sym| {
            if let (SymType::Function, Some(offset)) = (sym.sym_type, sym.file_offset) {
                out.push((sym.name.to_string(), sym.addr, offset));
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| Error::attach(path, format!("cannot read the symbols of {path}: {e}")))?;
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out.dedup();
    Ok(out)
}
