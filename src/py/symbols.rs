//! Symbols (src/symbolize.rs): addresses → names for stack traces, names → addresses for probes;
//! without the GIL, as reading a binary's symbols (or /proc/kallsyms) takes milliseconds.

use pyo3::prelude::*;

use crate::symbolize;

/// Kernel address → (symbol, offset into it, module).
#[pyfunction]
fn ksym(py: Python<'_>, addr: u64) -> Option<(String, u64, String)> {
    py.detach(|| symbolize::ksym(addr))
}

/// Address in process `pid` → (symbol, offset into it, module path).
#[pyfunction]
fn usym(py: Python<'_>, pid: u32, addr: u64) -> Option<(String, u64, String)> {
    py.detach(|| symbolize::usym(pid, addr))
}

/// Kernel symbol → its address from /proc/kallsyms, or None.
#[pyfunction]
fn ksymname(py: Python<'_>, name: &str) -> Option<u64> {
    py.detach(|| symbolize::ksymname(name))
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
