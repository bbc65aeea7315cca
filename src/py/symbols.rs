//! Symbols (src/symbolize.rs): addresses → names for stack traces, names → addresses for probes.

use pyo3::prelude::*;

use crate::symbolize;

/// Kernel address → (symbol, offset into it, module).
#[pyfunction]
fn ksym(addr: u64) -> Option<(String, u64, String)> {
    symbolize::ksym(addr)
}

/// Address in process `pid` → (symbol, offset into it, module path).
#[pyfunction]
fn usym(pid: u32, addr: u64) -> Option<(String, u64, String)> {
    symbolize::usym(pid, addr)
}

/// Kernel symbol → its address from /proc/kallsyms, or None.
#[pyfunction]
fn ksymname(name: &str) -> Option<u64> {
    symbolize::ksymname(name)
}

/// The functions an ELF file defines: (name, address, file offset), by address.
#[pyfunction]
fn elf_functions(py: Python<'_>, path: &str) -> PyResult<Vec<(String, u64, u64)>> {
    Ok(py.detach(|| symbolize::elf_functions(path))?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ksym, m)?)?;
    m.add_function(wrap_pyfunction!(usym, m)?)?;
    m.add_function(wrap_pyfunction!(ksymname, m)?)?;
    m.add_function(wrap_pyfunction!(elf_functions, m)?)
}
