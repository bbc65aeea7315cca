//! `PerfBuffer` and `RingBuffer`: the sinks that deliver records to Python (src/events/ owns libbpf's
//! buffers and drains them into these), and the poll that waits with the GIL released, in short
//! slices so Ctrl-C raises KeyboardInterrupt promptly.

mod perf;
mod ring;

use std::time::{Duration, Instant};

use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::error::Error;

pub use perf::PerfBuffer;
pub use ring::RingBuffer;

const SLICE: Duration = Duration::from_millis(100);

/// Wait on an epoll fd for up to `timeout_ms` (negative: forever), without the GIL, checking for
/// signals between slices. Returns whether the fd became ready.
fn wait_ready(py: Python<'_>, epoll_fd: i32, timeout_ms: i32) -> PyResult<bool> {
    let deadline = (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        let ms = slice.as_millis() as i32;
        match py.detach(move || crate::events::epoll_ready(epoll_fd, ms)) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {}
            Err(err) => return Err(Error::io("waiting for events", err).into()),
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

/// A per-record callback and what to do when it raises.
struct Handler {
    callback: Py<PyAny>,
    /// `on_error(callback, exception)` for an Exception the callback raised (bcc's callbacks run
    /// through ctypes, which prints it and goes on); None lets it end the poll.
    on_error: Option<Py<PyAny>>,
}

impl Handler {
    /// Call the callback. `Ok(None)`: it raised an Exception that on_error dealt with. `Err` ends the
    /// poll: a BaseException that is no Exception (SystemExit, KeyboardInterrupt) or what on_error raised.
    fn call<'py>(&self, py: Python<'py>, args: impl PyCallArgs<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let callback = self.callback.bind(py);
        match callback.call1(args) {
            Ok(ret) => Ok(Some(ret)),
            Err(e) => match &self.on_error {
                Some(on_error) if e.is_instance_of::<PyException>(py) => {
                    on_error.bind(py).call1((callback, e.into_value(py)))?;
                    Ok(None)
                }
                _ => Err(e),
            },
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PerfBuffer>()?;
    m.add_class::<RingBuffer>()
}
