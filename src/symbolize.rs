//! Addresses → symbols with blazesym (kernel through kallsyms, processes through their maps and ELF
//! files), and symbol names → addresses (kernel through kallsyms, ELF files through blazesym).

use std::cell::RefCell;
use std::fs;
use std::ops::ControlFlow;

use blazesym::inspect::{self, Inspector};
use blazesym::SymType;

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;

use crate::error::{Error, Result};

thread_local! {
    // blazesym caches parsed symbol tables inside its Symbolizer; keep one per thread.
    static SYMBOLIZER: RefCell<Symbolizer> = RefCell::new(Symbolizer::new());
}

fn one(src: &Source<'_>, addr: u64) -> Option<(String, u64, String)> {
    SYMBOLIZER.with(|s| {
        let s = s.borrow();
        match s.symbolize_single(src, Input::AbsAddr(addr)).ok()? {
            Symbolized::Sym(sym) => Some((
                sym.name.to_string(),
                sym.offset as u64,
                sym.module.map(|m| m.to_string_lossy().into_owned()).unwrap_or_default(),
            )),
            Symbolized::Unknown(_) => None,
        }
    })
}

/// Kernel address → (symbol, offset into it, module).
pub fn ksym(addr: u64) -> Option<(String, u64, String)> {
    let kernel = Kernel { vmlinux: MaybeDefault::None, debug_syms: false, ..Default::default() };
    one(&Source::Kernel(kernel), addr)
}

/// Address in process `pid` → (symbol, offset into it, module path).
pub fn usym(pid: u32, addr: u64) -> Option<(String, u64, String)> {
    let mut process = Process::new(pid.into());
    process.debug_syms = true;
    one(&Source::Process(process), addr)
}

/// Kernel symbol → its address from /proc/kallsyms, or None.
pub fn ksymname(name: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/kallsyms").ok()?;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(addr), Some(_), Some(sym)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if sym == name {
            return u64::from_str_radix(addr, 16).ok();
        }
    }
    None
}

/// The functions an ELF file defines (symtab and dynsym): (name, address, file offset), by address.
///
/// The file offset is what a uprobe attaches at; names may repeat (local symbols of the same name).
pub fn elf_functions(path: &str) -> Result<Vec<(String, u64, u64)>> {
    let src = inspect::source::Source::Elf(inspect::source::Elf::new(path));
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
