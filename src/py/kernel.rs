//! What the running kernel offers (src/kernel/): tracefs, feature probes, its BTF's types, CPUs,
//! perf events opened directly, and the BPF programs loaded in it with their run statistics.

use pyo3::prelude::*;

use crate::kernel::{btf, features};

/// The tracefs mount point, mounting tracefs when it is missing.
#[pyfunction]
fn tracefs() -> PyResult<String> {
    Ok(crate::kernel::tracefs::tracefs()?.display().to_string())
}

#[pyfunction]
fn has_kprobes() -> bool {
    features::has_kprobes()
}

/// Whether this kernel has kprobe multi links (one link, many kernel functions), probed once.
#[pyfunction]
fn has_kprobe_multi() -> bool {
    features::has_kprobe_multi()
}

/// Whether fentry/fexit programs (bcc's kfuncs) load and attach here, probed once.
#[pyfunction]
fn has_fentry() -> bool {
    features::has_fentry()
}

/// Whether BPF LSM programs load and attach here, probed once.
#[pyfunction]
fn has_lsm() -> bool {
    features::has_lsm()
}

/// Whether the running kernel's struct (or union) `name` has a member `field`, from its BTF.
#[pyfunction]
fn kernel_struct_has_field(py: Python<'_>, name: String, field: String) -> PyResult<bool> {
    Ok(py.detach(|| btf::with_vmlinux(|btf| btf.record_has_member(&name, &field)))?)
}

/// Whether the running kernel's enum `name` has an enumerator `value`, from its BTF.
#[pyfunction]
fn kernel_enum_has_val(py: Python<'_>, name: String, value: String) -> PyResult<bool> {
    Ok(py.detach(|| btf::with_vmlinux(|btf| btf.enum_has_value(&name, &value)))?)
}

/// The enumerators of the running kernel's enum `name` as (name, value), from its BTF; empty when it has
/// no such enum (`enum bpf_func_id` names the helpers a disassembly shows).
#[pyfunction]
fn kernel_enum(py: Python<'_>, name: String) -> PyResult<Vec<(String, i64)>> {
    Ok(py.detach(|| btf::with_vmlinux(|btf| btf.enum_values(&name)))?)
}

/// The number of possible CPUs (per-CPU maps hold one value for each).
#[pyfunction]
fn num_possible_cpus() -> PyResult<usize> {
    Ok(crate::maps::num_possible_cpus()?)
}

/// A counting perf event (no sampling) on `cpu` (for `pid`, -1 for all): its fd, owned by the caller,
/// for a BPF_PERF_ARRAY slot (bcc's `open_perf_event`).
#[pyfunction]
#[pyo3(signature = (ev_type, ev_config, pid=-1, cpu=-1))]
fn perf_event_open(ev_type: u32, ev_config: u64, pid: i32, cpu: i32) -> PyResult<i32> {
    use std::os::fd::IntoRawFd;
    Ok(crate::attach::open_perf_event(ev_type, ev_config, 0, 0, pid, cpu, -1)?.into_raw_fd())
}

/// A perf event opened from `attr`, a whole `struct perf_event_attr` (bcc's `Perf.perf_event_open`): its
/// fd, owned by the caller.
#[pyfunction]
fn perf_event_open_raw(attr: &[u8], pid: i32, cpu: i32, group_fd: i32) -> PyResult<i32> {
    use std::os::fd::IntoRawFd;
    Ok(crate::attach::open_perf_event_raw(attr, pid, cpu, group_fd)?.into_raw_fd())
}

/// Turn on every BPF program's run statistics (run_cnt, run_time_ns) while the returned fd, owned by
/// the caller, stays open (BPF_ENABLE_STATS).
#[pyfunction]
fn enable_stats() -> PyResult<i32> {
    use std::os::fd::IntoRawFd;
    Ok(crate::kernel::progs::enable_stats()?.into_raw_fd())
}

/// A loaded program as Python sees it: (id, type, name, run_time_ns, run_cnt).
type ProgRow = (u32, String, String, u64, u64);

/// Every BPF program loaded in the kernel, by id.
#[pyfunction]
fn loaded_programs(py: Python<'_>) -> PyResult<Vec<ProgRow>> {
    let progs = py.detach(crate::kernel::progs::loaded_programs)?;
    Ok(progs.into_iter().map(|p| (p.id, p.prog_type, p.name, p.run_time_ns, p.run_cnt)).collect())
}

/// The whole name of BPF program `id` from its BTF (its info keeps 15 characters); None without BTF.
#[pyfunction]
fn prog_full_name(py: Python<'_>, id: u32) -> PyResult<Option<String>> {
    Ok(py.detach(|| crate::kernel::progs::full_name(id))?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(prog_full_name, m)?)?;
    m.add_function(wrap_pyfunction!(enable_stats, m)?)?;
    m.add_function(wrap_pyfunction!(loaded_programs, m)?)?;
    m.add_function(wrap_pyfunction!(tracefs, m)?)?;
    m.add_function(wrap_pyfunction!(has_kprobes, m)?)?;
    m.add_function(wrap_pyfunction!(has_kprobe_multi, m)?)?;
    m.add_function(wrap_pyfunction!(has_fentry, m)?)?;
    m.add_function(wrap_pyfunction!(has_lsm, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_struct_has_field, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_enum_has_val, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_enum, m)?)?;
    m.add_function(wrap_pyfunction!(num_possible_cpus, m)?)?;
    m.add_function(wrap_pyfunction!(perf_event_open_raw, m)?)?;
    m.add_function(wrap_pyfunction!(perf_event_open, m)?)
}
