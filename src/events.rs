//! Perf and ring buffers, drained in Rust. The wait happens with the GIL released, in short slices so
//! Ctrl-C raises KeyboardInterrupt promptly. Python is entered once per record, for its callback (bcc's
//! way), or, for a buffer opened with a record size, once per drain with every record packed at that
//! stride into one bytes object, which numpy reads as an array without a Python object per record.

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

/// Append `data` to `packed` as one record of exactly `stride` bytes: a longer record (perf pads its
/// samples to 8 bytes) is cut, a shorter one zero-filled.
fn pack(packed: &mut Vec<u8>, data: &[u8], stride: usize) {
    let n = data.len().min(stride);
    packed.extend_from_slice(&data[..n]);
    packed.resize(packed.len() + stride - n, 0);
}

fn check_stride(record_size: Option<usize>) -> PyResult<()> {
    if record_size == Some(0) {
        return Err(pyo3::exceptions::PyValueError::new_err("record_size must be positive"));
    }
    Ok(())
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
    /// Packed mode: the record size, and the records of the current drain.
    packed: Option<(usize, Rc<RefCell<Vec<u8>>>)>,
    callback: Py<PyAny>,
    lost_callback: Option<Py<PyAny>>,
    _map: MapHandle,
}

#[pymethods]
impl PerfBuffer {
    #[new]
    /// `callback(cpu, record)` per record, or with `record_size`, `callback(records)` per drain.
    #[pyo3(signature = (map, callback, lost_callback=None, page_cnt=8, record_size=None))]
    fn new(
        map: &Map,
        callback: Py<PyAny>,
        lost_callback: Option<Py<PyAny>>,
        page_cnt: usize,
        record_size: Option<usize>,
    ) -> PyResult<Self> {
        if !page_cnt.is_power_of_two() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "page_cnt must be a power of two, not {page_cnt}"
            )));
        }
        check_stride(record_size)?;
        let handle = map.dup_handle()?;
        let queue: Rc<RefCell<VecDeque<Record>>> = Rc::default();
        let packed = record_size.map(|stride| (stride, Rc::new(RefCell::new(Vec::new()))));
        let (q1, q2, into) = (queue.clone(), queue.clone(), packed.clone());
        let buffer = libbpf_rs::PerfBufferBuilder::new(&handle)
            .sample_cb(move |cpu: i32, data: &[u8]| match &into {
                Some((stride, records)) => pack(&mut records.borrow_mut(), data, *stride),
                None => q1.borrow_mut().push_back(Record::Sample(cpu, data.to_vec())),
            })
            .lost_cb(move |cpu: i32, count: u64| q2.borrow_mut().push_back(Record::Lost(cpu, count)))
            .pages(page_cnt)
            .build()
            .map_err(|e| Error::libbpf("opening the perf buffer", e))?;
        Ok(PerfBuffer { buffer, queue, packed, callback, lost_callback, _map: handle })
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
        if let Some((stride, records)) = &self.packed {
            let data = std::mem::take(&mut *records.borrow_mut());
            if !data.is_empty() {
                n = data.len() / stride;
                self.callback.call1(py, (PyBytes::new(py, &data),))?;
            }
        }
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
    /// Per map: its record size in packed mode.
    strides: Vec<Option<usize>>,
    queue: Rc<RefCell<VecDeque<Tagged>>>,
    /// Per map: the packed records of the current drain.
    packed: Rc<RefCell<Vec<Vec<u8>>>>,
}

#[pymethods]
impl RingBuffer {
    #[new]
    fn new() -> Self {
        RingBuffer {
            buffer: None,
            maps: Vec::new(),
            callbacks: Vec::new(),
            strides: Vec::new(),
            queue: Rc::default(),
            packed: Rc::default(),
        }
    }

    /// Add a ring buffer map; records from it go to `callback(data: bytes)`, or with `record_size`,
    /// to `callback(records: bytes)` once per drain, packed at that stride.
    #[pyo3(signature = (map, callback, record_size=None))]
    fn add(&mut self, map: &Map, callback: Py<PyAny>, record_size: Option<usize>) -> PyResult<()> {
        check_stride(record_size)?;
        self.maps.push(map.dup_handle()?);
        self.callbacks.push(callback);
        self.strides.push(record_size);
        self.packed.borrow_mut().push(Vec::new());
        // libbpf's ring buffer manager takes all its maps at build time: rebuild it with the new one.
        self.buffer = None;
        let mut builder = libbpf_rs::RingBufferBuilder::new();
        for (i, m) in self.maps.iter().enumerate() {
            let (q, packed, stride) = (self.queue.clone(), self.packed.clone(), self.strides[i]);
            builder
                .add(m, move |data: &[u8]| {
                    match stride {
                        Some(stride) => pack(&mut packed.borrow_mut()[i], data, stride),
                        None => q.borrow_mut().push_back((i, data.to_vec())),
                    }
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
        for (i, stride) in self.strides.iter().enumerate() {
            let Some(stride) = stride else { continue };
            let data = std::mem::take(&mut self.packed.borrow_mut()[i]);
            if !data.is_empty() {
                n += data.len() / stride;
                self.callbacks[i].call1(py, (PyBytes::new(py, &data),))?;
            }
        }
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some((i, data)) = next else { return Ok(n) };
            n += 1;
            self.callbacks[i].call1(py, (PyBytes::new(py, &data),))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn records_are_cut_or_zero_filled_to_the_stride() {
        let mut packed = Vec::new();
        pack(&mut packed, &[1, 2, 3, 4, 5, 6], 4);
        pack(&mut packed, &[7, 8], 4);
        pack(&mut packed, &[9, 9, 9, 9], 4);
        assert_eq!(packed, [1, 2, 3, 4, 7, 8, 0, 0, 9, 9, 9, 9]);
    }
}
