//! The attachments bcc makes by hand with a program's fd (src/netattach.rs): XDP, raw sockets,
//! BPF_PROG_ATTACH; each a syscall or a netlink round trip, made without the GIL.

use pyo3::prelude::*;

use crate::netattach;

/// Attach the XDP program `prog_fd` to device `dev` (bcc's `attach_xdp`).
#[pyfunction]
fn xdp_attach(py: Python<'_>, dev: &str, prog_fd: i32, flags: u32) -> PyResult<()> {
    Ok(py.detach(|| netattach::xdp_attach(dev, prog_fd, flags))?)
}

/// Remove the XDP program of `flags`' mode from `dev` (bcc's `remove_xdp`). With `expected_fd`, only if
/// that program is still the one attached: returns whether it was removed.
#[pyfunction]
#[pyo3(signature = (dev, flags, expected_fd=None))]
fn xdp_detach(py: Python<'_>, dev: &str, flags: u32, expected_fd: Option<i32>) -> PyResult<bool> {
    Ok(py.detach(|| netattach::xdp_detach(dev, flags, expected_fd))?)
}

/// The id of the XDP program attached to `dev` in `flags`' mode (0: none).
#[pyfunction]
fn xdp_prog_id(py: Python<'_>, dev: &str, flags: u32) -> PyResult<u32> {
    Ok(py.detach(|| netattach::xdp_prog_id(dev, flags))?)
}

/// A raw packet socket on `dev` filtered by socket filter `prog_fd` (bcc's `attach_raw_socket`); its
/// fd, which the caller owns.
#[pyfunction]
fn raw_socket(py: Python<'_>, dev: &str, prog_fd: i32) -> PyResult<i32> {
    use std::os::fd::IntoRawFd;
    Ok(py.detach(|| netattach::raw_socket(dev, prog_fd))?.into_raw_fd())
}

/// BPF_PROG_ATTACH of `prog_fd` to `target_fd` as `attach_type` (bcc's `attach_func`).
#[pyfunction]
fn prog_attach(py: Python<'_>, prog_fd: i32, target_fd: i32, attach_type: u32, flags: u32) -> PyResult<()> {
    Ok(py.detach(|| netattach::prog_attach(prog_fd, target_fd, attach_type, flags))?)
}

/// BPF_PROG_DETACH of `prog_fd` from `target_fd` (bcc's `detach_func`).
#[pyfunction]
fn prog_detach(py: Python<'_>, prog_fd: i32, target_fd: i32, attach_type: u32) -> PyResult<()> {
    Ok(py.detach(|| netattach::prog_detach(prog_fd, target_fd, attach_type))?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(xdp_attach, m)?)?;
    m.add_function(wrap_pyfunction!(xdp_detach, m)?)?;
    m.add_function(wrap_pyfunction!(xdp_prog_id, m)?)?;
    m.add_function(wrap_pyfunction!(raw_socket, m)?)?;
    m.add_function(wrap_pyfunction!(prog_attach, m)?)?;
    m.add_function(wrap_pyfunction!(prog_detach, m)?)
}
