//! `PerfBuffer`: a perf buffer whose records go to a Python callback, per record or packed.

use std::collections::VecDeque;

use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{wait_ready, Handler};
use crate::events::{self, pack, PerfDrain, PerfSink};
use crate::py::map::Map;

/// A record kept for the next drain, because a callback of this one ended the poll.
enum Record {
    Sample(i32, Vec<u8>),
    Lost(i32, u64),
}

enum Delivery {
    /// `callback(cpu, address, size)` per record, during the drain.
    PerRecord(Handler),
    /// The records of the current drain at this stride, for `callback(records)` after it.
    Packed { stride: usize, records: Vec<u8>, callback: Py<PyAny> },
}

/// What libbpf's callbacks reach during a drain.
struct Sink {
    delivery: Delivery,
    lost_callback: Option<Py<PyAny>>,
    /// Records delivered in the current drain.
    delivered: usize,
    /// What ended the current drain's poll (SystemExit, KeyboardInterrupt, ...). libbpf's perf drain
    /// cannot be stopped, so the records after it wait in `pending` for the next poll.
    fatal: Option<PyErr>,
    pending: VecDeque<Record>,
}

impl PerfSink for Sink {
    fn sample(&mut self, cpu: i32, data: &[u8]) {
        let handler = match &mut self.delivery {
            Delivery::Packed { stride, records, .. } => return pack(records, data, *stride),
            Delivery::PerRecord(handler) => handler,
        };
        if self.fatal.is_some() {
            self.pending.push_back(Record::Sample(cpu, data.to_vec()));
            return;
        }
        // SAFETY: a Sink lives only in a PerfBuffer below, which drains (and replays) with the GIL
        // held: it is not released around the drain.
        let py = unsafe { Python::assume_attached() };
        self.delivered += 1;
        if let Err(e) = handler.call(py, (cpu, data.as_ptr() as usize, data.len())) {
            self.fatal = Some(e);
        }
    }

    fn lost(&mut self, cpu: i32, count: u64) {
        if self.fatal.is_some() {
            self.pending.push_back(Record::Lost(cpu, count));
            return;
        }
        let Some(cb) = &self.lost_callback else {
            eprintln!("Possibly lost {count} samples");
            return;
        };
        // SAFETY: as in sample: only called during a drain, which holds the GIL.
        let py = unsafe { Python::assume_attached() };
        if let Err(e) = cb.call1(py, (cpu, count)) {
            self.fatal = Some(e);
        }
    }

    fn panicked(&mut self, message: String) {
        self.fatal = Some(PanicException::new_err(message));
    }
}

impl Sink {
    /// Deliver the records a previous poll left, until they are all out or one ends this poll too.
    fn replay(&mut self) {
        while self.fatal.is_none() {
            match self.pending.pop_front() {
                Some(Record::Sample(cpu, data)) => self.sample(cpu, &data),
                Some(Record::Lost(cpu, count)) => self.lost(cpu, count),
                None => return,
            }
        }
    }
}

#[pyclass(module = "rbcc._core")]
pub struct PerfBuffer {
    inner: events::PerfBuffer<Sink>,
}

impl PerfBuffer {
    /// This thread's turn to drain, waiting for it without the GIL.
    fn drain(&self, py: Python<'_>) -> PyResult<PerfDrain<'_, Sink>> {
        loop {
            if let Some(drain) = self.inner.try_drain()? {
                return Ok(drain);
            }
            py.detach(|| self.inner.wait_turn());
        }
    }
}

#[pymethods]
impl PerfBuffer {
    /// `callback(cpu, address, size)` per record during the drain, or with `record_size`,
    /// `callback(records)` once per drain. The kernel wakes a poller after every `wakeup_events` records
    /// of one CPU. `on_error(callback, exception)` handles an Exception from a per-record callback.
    #[new]
    #[pyo3(signature = (map, callback, lost_callback=None, page_cnt=8, record_size=None, wakeup_events=1, on_error=None))]
    fn new(
        map: &Map,
        callback: Py<PyAny>,
        lost_callback: Option<Py<PyAny>>,
        page_cnt: usize,
        record_size: Option<usize>,
        wakeup_events: u32,
        on_error: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        events::check_record_size(record_size)?;
        let delivery = match record_size {
            Some(stride) => Delivery::Packed { stride, records: Vec::new(), callback },
            None => Delivery::PerRecord(Handler { callback, on_error }),
        };
        let sink = Sink { delivery, lost_callback, delivered: 0, fatal: None, pending: VecDeque::new() };
        Ok(PerfBuffer { inner: events::PerfBuffer::new(&map.inner, page_cnt, wakeup_events, sink)? })
    }

    /// Wait up to `timeout_ms` (negative: until something arrives) and deliver what arrived.
    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        let pending = !self.drain(py)?.sink().pending.is_empty();
        if !pending {
            wait_ready(py, self.inner.epoll_fd(), timeout_ms)?;
        }
        self.consume(py)
    }

    /// The epoll fd that becomes readable when records arrive (to wait on several buffers at once).
    fn fileno(&self) -> i32 {
        self.inner.epoll_fd()
    }

    /// Deliver whatever is in the buffers now, without waiting.
    fn consume(&self, py: Python<'_>) -> PyResult<usize> {
        let mut drain = self.drain(py)?;
        let sink = drain.sink();
        sink.delivered = 0;
        sink.replay();
        if let Some(e) = sink.fatal.take() {
            return Err(e);
        }
        let drained = drain.consume();
        let sink = drain.sink();
        if let Some(e) = sink.fatal.take() {
            return Err(e);
        }
        drained?;
        let mut n = sink.delivered;
        if let Delivery::Packed { stride, records, callback } = &mut sink.delivery {
            let data = std::mem::take(records);
            if !data.is_empty() {
                n = data.len() / *stride;
                callback.call1(py, (PyBytes::new(py, &data),))?;
            }
        }
        Ok(n)
    }
}
