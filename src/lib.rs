//! rbcc's core: bcc-dialect BPF C compiled against the kernel's BTF, loaded with libbpf, driven from
//! Python. Each stage of the pipeline has its own module, free of Python; `py` is the binding layer
//! (see ARCHITECTURE.md).

pub mod attach;
pub mod btf;
pub mod compile;
pub mod error;
pub mod events;
pub mod flame;
pub mod kernel;
pub mod libbpf_log;
pub mod load;
pub mod map_walk;
pub mod maps;
pub mod netattach;
pub mod shared_maps;
pub mod symbolize;
pub mod usdt;

mod py;

#[cfg(test)]
mod layering;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::register(m)
}
