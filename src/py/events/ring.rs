//! `RingBuffer`: ring buffer maps whose records go to Python callbacks, per record or packed.

use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use super::{wait_ready, Handler};
use crate::events::{self, pack, RingDrain, RingSink};
use crate::py::map::Map;

enum Delivery {
    /// `callback(ctx, address, size)` per record, during the drain.
    PerRecord { handler: Handler, ctx: Py<PyAny> },
    /// The records of the current drain at this stride, for `callback(records)` after it.
    Packed { stride: usize, records: Vec<u8>, callback: Py<PyAny> },
}

/// What libbpf's callback reaches during a drain: one per map.
struct Sink {
    delivery: Delivery,
    /// Records delivered in the current drain.
    delivered: usize,
    /// What ended the current drain (SystemExit, KeyboardInterrupt, ...); the records after it stay
    /// in the ring for the next poll.
    fatal: Option<PyErr>,
    /// The callback returned a negative number, which ends a drain in libbpf (and bcc) but is no error.
    stopped: bool,
}

/// What libbpf's drain stops at when the callback returns it (any negative number does).
const STOP: i32 = -libc::EINTR;

impl RingSink for Sink {
    fn sample(&mut self, data: &[u8]) -> i32 {
        let (handler, ctx) = match &mut self.delivery {
            Delivery::Packed { stride, records, .. } => {
                pack(records, data, *stride);
                return 0;
            }
            Delivery::PerRecord { handler, ctx } => (handler, ctx),
        };
        // SAFETY: a Sink lives only in a RingBuffer below, which drains with the GIL held: it is not
        // released around the drain.
        let py = unsafe { Python::assume_attached() };
        self.delivered += 1;
        match handler.call(py, (ctx.bind(py), data.as_ptr() as usize, data.len())) {
            Ok(Some(ret)) if !ret.is_none() => {
                // As bcc: the callback's int(return value) goes to libbpf, where a negative one ends
                // the drain; a value that is no number means 0.
                let code = ret.extract::<i64>().ok().or_else(|| {
                    let int = py.get_type::<PyInt>().call1((ret,)).ok()?;
                    int.extract::<i64>().ok()
                });
                if code.is_some_and(|c| c < 0) {
                    self.stopped = true;
                    return STOP;
                }
                0
            }
            Ok(_) => 0,
            Err(e) => {
                self.fatal = Some(e);
                STOP
            }
        }
    }

    fn panicked(&mut self, message: String) -> i32 {
        self.fatal = Some(PanicException::new_err(message));
        STOP
    }
}

#[pyclass(module = "rbcc._core")]
pub struct RingBuffer {
    inner: events::RingBuffer<Sink>,
}

impl RingBuffer {
    /// This thread's turn to drain, waiting for it without the GIL.
    fn drain(&self, py: Python<'_>) -> PyResult<RingDrain<'_, Sink>> {
        loop {
            if let Some(drain) = self.inner.try_drain()? {
                return Ok(drain);
            }
            py.detach(|| self.inner.wait_turn());
        }
    }
}

#[pymethods]
impl RingBuffer {
    #[new]
    fn new() -> Self {
        RingBuffer { inner: events::RingBuffer::default() }
    }

    /// Add a ring buffer map; its records go to `callback(ctx, address, size)` during the drain (the
    /// address valid during the call), or with `record_size`, to `callback(records)` once per drain,
    /// packed at that stride. `on_error(callback, exception)` handles an Exception from a per-record
    /// callback.
    #[pyo3(signature = (map, callback, record_size=None, ctx=None, on_error=None))]
    fn add(
        &mut self,
        py: Python<'_>,
        map: &Map,
        callback: Py<PyAny>,
        record_size: Option<usize>,
        ctx: Option<Py<PyAny>>,
        on_error: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        events::check_record_size(record_size)?;
        let delivery = match record_size {
            Some(stride) => Delivery::Packed { stride, records: Vec::new(), callback },
            None => {
                Delivery::PerRecord { handler: Handler { callback, on_error }, ctx: ctx.unwrap_or_else(|| py.None()) }
            }
        };
        Ok(self.inner.add(&map.inner, Sink { delivery, delivered: 0, fatal: None, stopped: false })?)
    }

    /// Wait up to `timeout_ms` (negative: until something arrives) and deliver what arrived.
    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        let Some(epoll_fd) = self.inner.epoll_fd() else {
            return Ok(0);
        };
        wait_ready(py, epoll_fd, timeout_ms)?;
        self.consume(py)
    }

    /// Deliver whatever is in the buffers now, without waiting.
    fn consume(&self, py: Python<'_>) -> PyResult<usize> {
        if self.inner.epoll_fd().is_none() {
            return Ok(0);
        }
        let mut drain = self.drain(py)?;
        let drained = drain.consume();
        let (mut n, mut fatal, mut stopped) = (0, None, false);
        for sink in drain.sinks() {
            n += std::mem::take(&mut sink.delivered);
            stopped |= std::mem::take(&mut sink.stopped);
            fatal = fatal.or(sink.fatal.take());
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        if !stopped {
            drained?;
        }
        for sink in drain.sinks() {
            if let Delivery::Packed { stride, records, callback } = &mut sink.delivery {
                let data = std::mem::take(records);
                if !data.is_empty() {
                    n += data.len() / *stride;
                    callback.call1(py, (PyBytes::new(py, &data),))?;
                }
            }
        }
        Ok(n)
    }
}
