//! rbcc's core: bcc-dialect BPF C compiled against the kernel's BTF, loaded with libbpf, driven from
//! Python. This file only declares the Python module; each stage of the pipeline has its own module.

pub mod attach;
pub mod cdata;
pub mod compile;
pub mod error;
pub mod events;
pub mod kernel;
pub mod libbpf_log;
pub mod load;
pub mod map_walk;
pub mod maps;
pub mod netattach;
pub mod shared_maps;
pub mod symbolize;
pub mod types;
pub mod usdt;

mod py;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<py::Compiled>()?;
    m.add_class::<load::Object>()?;
    m.add_class::<attach::Link>()?;
    m.add_class::<maps::Map>()?;
    m.add_class::<events::PerfBuffer>()?;
    m.add_class::<events::RingBuffer>()?;
    m.add_function(wrap_pyfunction!(py::compile, m)?)?;
    m.add_function(wrap_pyfunction!(attach::perf_event_open, m)?)?;
    m.add_function(wrap_pyfunction!(py::tracefs, m)?)?;
    m.add_function(wrap_pyfunction!(py::has_kprobes, m)?)?;
    m.add_function(wrap_pyfunction!(py::has_kprobe_multi, m)?)?;
    m.add_function(wrap_pyfunction!(py::has_fentry, m)?)?;
    m.add_function(wrap_pyfunction!(py::has_lsm, m)?)?;
    m.add_function(wrap_pyfunction!(py::kernel_struct_has_field, m)?)?;
    m.add_function(wrap_pyfunction!(py::kernel_enum_has_val, m)?)?;
    m.add_function(wrap_pyfunction!(maps::num_possible_cpus, m)?)?;
    m.add_function(wrap_pyfunction!(cdata::cdata_list, m)?)?;
    m.add_function(wrap_pyfunction!(cdata::cdata_items, m)?)?;
    m.add_function(wrap_pyfunction!(symbolize::ksym, m)?)?;
    m.add_function(wrap_pyfunction!(symbolize::usym, m)?)?;
    m.add_function(wrap_pyfunction!(symbolize::ksymname, m)?)?;
    m.add_function(wrap_pyfunction!(symbolize::elf_functions, m)?)?;
    m.add_function(wrap_pyfunction!(usdt::usdt_sites, m)?)?;
    m.add_function(wrap_pyfunction!(netattach::xdp_attach, m)?)?;
    m.add_function(wrap_pyfunction!(netattach::xdp_detach, m)?)?;
    m.add_function(wrap_pyfunction!(netattach::xdp_prog_id, m)?)?;
    m.add_function(wrap_pyfunction!(netattach::raw_socket, m)?)?;
    m.add_function(wrap_pyfunction!(netattach::prog_attach, m)?)?;
    m.add_function(wrap_pyfunction!(netattach::prog_detach, m)?)?;
    Ok(())
}
