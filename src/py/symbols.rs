//! Symbols (src/symbolize/): addresses → names for stack traces, names → addresses for probes and
//! bcc's `resolve_name`; without the GIL, as reading a binary's symbols (or /proc/kallsyms) takes
//! milliseconds.

use pyo3::prelude::*;

use crate::symbolize::{self, Symbol};

type Found = Option<(String, u64, String)>;

fn tuple(symbol: Option<Symbol>) -> Found {
    symbol.map(|s| (s.name, s.offset, s.module))
}

/// Kernel address → (symbol, offset into it, module: "kernel", a module's name, or "" unless asked).
#[pyfunction]
#[pyo3(signature = (addr, module = false))]
fn ksym(py: Python<'_>, addr: u64, module: bool) -> Found {
    tuple(py.detach(|| symbolize::ksym(addr, module)))
}

/// Address in process `pid` → (symbol, offset into it, module path).
#[pyfunction]
#[pyo3(signature = (pid, addr, demangle = true))]
fn usym(py: Python<'_>, pid: u32, addr: u64, demangle: bool) -> Found {
    tuple(py.detach(|| symbolize::usym(pid, addr, demangle)))
}

/// The functions inlined at `addr` in process `pid`, outermost first (empty without DWARF).
#[pyfunction]
fn usym_inlined(py: Python<'_>, pid: u32, addr: u64) -> Vec<String> {
    py.detach(|| symbolize::usym_inlined(pid, addr))
}

/// The file mapped at `addr` in process `pid` and the offset into it, or None.
#[pyfunction]
fn user_module(py: Python<'_>, pid: u32, addr: u64) -> Option<(String, u64)> {
    py.detach(|| symbolize::user_module(pid, addr))
}

/// Symbol `name` of `module` (a path the process maps) → its address in process `pid`, or None.
#[pyfunction]
fn usymname(py: Python<'_>, pid: u32, module: &str, name: &str) -> Option<u64> {
    py.detach(|| symbolize::resolve_name(pid, module, name))
}

/// Symbol `name` of ELF file `path` → its offset in the file (symbol tables, then split debug file
/// and DWARF), or None.
#[pyfunction]
fn symbol_file_offset(py: Python<'_>, path: &str, name: &str) -> Option<u64> {
    py.detach(|| symbolize::symbol_file_offset(path, name))
}

/// Kernel symbol → its address from /proc/kallsyms, or None.
#[pyfunction]
fn ksymname(py: Python<'_>, name: &str) -> Option<u64> {
    py.detach(|| symbolize::ksymname(name))
}

/// Registers an ELF file under its build id for `build_id_sym`; False if it has no build id.
#[pyfunction]
fn add_build_id_module(py: Python<'_>, path: &str) -> bool {
    py.detach(|| symbolize::add_module(path))
}

/// (build id, file offset) of a BPF_STACK_TRACE_BUILDID frame → (symbol, offset into it, file).
#[pyfunction]
fn build_id_sym(py: Python<'_>, build_id: Vec<u8>, offset: u64) -> Found {
    tuple(py.detach(|| symbolize::build_id_sym(&build_id, offset)))
}

/// The functions an ELF file defines: (name, address, file offset), by address.
#[pyfunction]
fn elf_functions(py: Python<'_>, path: &str) -> PyResult<Vec<(String, u64, u64)>> {
    Ok(py.detach(|| symbolize::elf_functions(path))?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ksym, m)?)?;
    m.add_function(wrap_pyfunction!(usym, m)?)?;
    m.add_function(wrap_pyfunction!(usym_inlined, m)?)?;
    m.add_function(wrap_pyfunction!(user_module, m)?)?;
    m.add_function(wrap_pyfunction!(usymname, m)?)?;
    m.add_function(wrap_pyfunction!(ksymname, m)?)?;
    m.add_function(wrap_pyfunction!(symbol_file_offset, m)?)?;
    m.add_function(wrap_pyfunction!(add_build_id_module, m)?)?;
    m.add_function(wrap_pyfunction!(build_id_sym, m)?)?;
    m.add_function(wrap_pyfunction!(elf_functions, m)?)
}
