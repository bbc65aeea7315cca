//! Addresses → symbols with blazesym (kernel through kallsyms, processes through their maps and ELF
//! files), and kernel symbol names → addresses.

use std::cell::RefCell;
use std::fs;

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;
use pyo3::prelude::*;

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
#[pyfunction]
pub fn ksym(addr: u64) -> Option<(String, u64, String)> {
    let kernel = Kernel { vmlinux: MaybeDefault::None, debug_syms: false, ..Default::default() };
    one(&Source::Kernel(kernel), addr)
}

/// Address in process `pid` → (symbol, offset into it, module path).
#[pyfunction]
pub fn usym(pid: u32, addr: u64) -> Option<(String, u64, String)> {
    let mut process = Process::new(pid.into());
    process.debug_syms = true;
    one(&Source::Process(process), addr)
}

/// Kernel symbol → its address from /proc/kallsyms, or None.
#[pyfunction]
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
