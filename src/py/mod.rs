//! The Python binding layer: everything rbcc._core exports, one file per concept. The rest of the
//! crate knows nothing of Python; the code here converts arguments and results, releases the GIL
//! around work that may block or run long, and maps `crate::error::Error` onto rbcc.errors
//! (errors.rs). Sinks that call Python (events/) and ctypes objects made from batch buffers (cdata.rs)
//! live here too, as they are Python's business.

mod cdata;
mod compile;
mod errors;
mod events;
mod flame;
mod kernel;
mod link;
mod map;
mod net;
mod object;
mod symbols;
mod typedesc;
mod usdt;

use pyo3::prelude::*;

/// Add every class and function of rbcc._core to `m`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    compile::register(m)?;
    object::register(m)?;
    link::register(m)?;
    map::register(m)?;
    events::register(m)?;
    cdata::register(m)?;
    kernel::register(m)?;
    symbols::register(m)?;
    usdt::register(m)?;
    net::register(m)?;
    flame::register(m)?;
    Ok(())
}
