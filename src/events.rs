//! Perf and ring buffers, drained in Rust. The wait happens with the GIL released, in short slices so
//! Ctrl-C raises KeyboardInterrupt promptly; Python is entered once per record, for its callback.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use libbpf_rs::MapHandle;

use crate::error::Error;
use crate::maps::Map;

const SLICE: Duration = Duration::from_millis(100);

/// A ring buffer record with the index of the map it came from.
type Tagged = (usize, Vec<u8>);

enum Record {
    Sample(i32, Vec<u8>),
    Lost(i32, u64),
}

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
        let ready = py.detach(move || {
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: epoll_fd belongs to a live libbpf buffer; ev is a valid one-element array.
            unsafe { libc::epoll_wait(epoll_fd, &mut ev, 1, ms) }
        });
        if ready > 0 {
            return Ok(true);
        }
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(Error::io("waiting for events", err).into());
            }
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

#[pyclass(unsendable, module = "rbcc._core")]
pub struct PerfBuffer {
    buffer: libbpf_rs::PerfBuffer<'static>,
    queue: Rc<RefCell<VecDeque<Record>>>,
    callback: Py<PyAny>,
    lost_callback: Option<Py<PyAny>>,
    _map: MapHandle,
}

#[pymethods]
impl PerfBuffer {
    #[new]
    #[pyo3(signature = (map, callback, lost_callback=None, page_cnt=8))]
    fn new(map: &Map, callback: Py<PyAny>, lost_callback: Option<Py<PyAny>>, page_cnt: usize) -> PyResult<Self> {
        if !page_cnt.is_power_of_two() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "page_cnt must be a power of two, not {page_cnt}"
            )));
        }
        let handle = map.dup_handle()?;
        let queue: Rc<RefCell<VecDeque<Record>>> = Rc::default();
        let (q1, q2) = (queue.clone(), queue.clone());
        let buffer = libbpf_rs::PerfBufferBuilder::new(&handle)
            .sample_cb(move |cpu: i32, data: &[u8]| q1.borrow_mut().push_back(Record::Sample(cpu, data.to_vec())))
            .lost_cb(move |cpu: i32, count: u64| q2.borrow_mut().push_back(Record::Lost(cpu, count)))
            .pages(page_cnt)
            .build()
            .map_err(|e| Error::libbpf("opening the perf buffer", e))?;
        Ok(PerfBuffer { buffer, queue, callback, lost_callback, _map: handle })
    }

    /// Wait up to `timeout_ms` (negative: until something arrives) and deliver what arrived.
    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        if self.queue.borrow().is_empty() {
            wait_ready(py, self.buffer.epoll_fd(), timeout_ms)?;
        }
        self.consume(py)
    }

    /// The epoll fd that becomes readable when records arrive (to wait on several buffers at once).
    fn fileno(&self) -> i32 {
        self.buffer.epoll_fd()
    }

    /// Deliver whatever is in the buffers now, without waiting.
    fn consume(&self, py: Python<'_>) -> PyResult<usize> {
        self.buffer.consume().map_err(|e| Error::libbpf("reading the perf buffer", e))?;
        let mut n = 0;
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(Record::Sample(cpu, data)) => {
                    n += 1;
                    self.callback.call1(py, (cpu, PyBytes::new(py, &data)))?;
                }
                Some(Record::Lost(cpu, count)) => {
                    if let Some(cb) = &self.lost_callback {
                        cb.call1(py, (cpu, count))?;
                    } else {
                        eprintln!("Possibly lost {count} samples");
                    }
                }
                None => return Ok(n),
            }
        }
    }
}

#[pyclass(unsendable, module = "rbcc._core")]
pub struct RingBuffer {
    buffer: Option<libbpf_rs::RingBuffer<'static>>,
    maps: Vec<MapHandle>,
    callbacks: Vec<Py<PyAny>>,
    queue: Rc<RefCell<VecDeque<Tagged>>>,
}

#[pymethods]
impl RingBuffer {
    #[new]
    fn new() -> Self {
        RingBuffer { buffer: None, maps: Vec::new(), callbacks: Vec::new(), queue: Rc::default() }
    }

    /// Add a ring buffer map; records from it go to `callback(data: bytes)`.
    fn add(&mut self, map: &Map, callback: Py<PyAny>) -> PyResult<()> {
        self.maps.push(map.dup_handle()?);
        self.callbacks.push(callback);
        // libbpf's ring buffer manager takes all its maps at build time: rebuild it with the new one.
        self.buffer = None;
        let mut builder = libbpf_rs::RingBufferBuilder::new();
        for (i, m) in self.maps.iter().enumerate() {
            let q = self.queue.clone();
            builder
                .add(m, move |data: &[u8]| {
                    q.borrow_mut().push_back((i, data.to_vec()));
                    0
                })
                .map_err(|e| Error::libbpf("adding a ring buffer", e))?;
        }
        self.buffer = Some(builder.build().map_err(|e| Error::libbpf("opening the ring buffer", e))?);
        Ok(())
    }

    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        let Some(buffer) = &self.buffer else {
            return Ok(0);
        };
        if self.queue.borrow().is_empty() {
            wait_ready(py, buffer.epoll_fd(), timeout_ms)?;
        }
        self.consume(py)
    }

    fn consume(&self, py: Python<'_>) -> PyResult<usize> {
        let Some(buffer) = &self.buffer else {
            return Ok(0);
        };
        buffer.consume().map_err(|e| Error::libbpf("reading the ring buffer", e))?;
        let mut n = 0;
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some((i, data)) = next else { return Ok(n) };
            n += 1;
            self.callbacks[i].call1(py, (PyBytes::new(py, &data),))?;
        }
    }
}
