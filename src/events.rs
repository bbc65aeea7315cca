//! Perf and ring buffers, drained in Rust. The wait happens with the GIL released, in short slices so
//! Ctrl-C raises KeyboardInterrupt promptly. Python is entered once per record, for its callback (bcc's
//! way), or, for a buffer opened with a record size, once per drain with every record packed at that
//! stride into one bytes object, which numpy reads as an array without a Python object per record.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd};
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;
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

/// Where a perf buffer's records go until the drain hands them to Python. libbpf calls into it
/// through a raw pointer during `perf_buffer__consume`.
struct PerfSink {
    queue: RefCell<VecDeque<Record>>,
    /// Packed mode: the record size, and the records of the current drain.
    packed: Option<(usize, RefCell<Vec<u8>>)>,
}

unsafe extern "C" fn perf_sample(ctx: *mut c_void, cpu: c_int, data: *mut c_void, size: u32) {
    // SAFETY: ctx is the PerfSink boxed in PerfBuffer, alive as long as libbpf's buffer; data points to
    // `size` bytes that libbpf keeps valid during the callback.
    let (sink, data) =
        unsafe { (&*(ctx as *const PerfSink), std::slice::from_raw_parts(data as *const u8, size as usize)) };
    match &sink.packed {
        Some((stride, records)) => pack(&mut records.borrow_mut(), data, *stride),
        None => sink.queue.borrow_mut().push_back(Record::Sample(cpu, data.to_vec())),
    }
}

unsafe extern "C" fn perf_lost(ctx: *mut c_void, cpu: c_int, count: u64) {
    // SAFETY: as in perf_sample.
    let sink = unsafe { &*(ctx as *const PerfSink) };
    sink.queue.borrow_mut().push_back(Record::Lost(cpu, count));
}

/// A perf buffer opened with libbpf's `perf_buffer__new` directly, because libbpf-rs's builder cannot
/// set the wakeup count (bcc's `wakeup_events`).
#[pyclass(unsendable, module = "rbcc._core")]
pub struct PerfBuffer {
    buffer: NonNull<libbpf_sys::perf_buffer>,
    sink: Box<PerfSink>,
    callback: Py<PyAny>,
    lost_callback: Option<Py<PyAny>>,
    _map: MapHandle,
}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        // SAFETY: buffer came from perf_buffer__new and is freed once, here; the sink it points into
        // is dropped after this.
        unsafe { libbpf_sys::perf_buffer__free(self.buffer.as_ptr()) }
    }
}

impl PerfBuffer {
    fn epoll_fd(&self) -> i32 {
        // SAFETY: buffer is live until drop.
        unsafe { libbpf_sys::perf_buffer__epoll_fd(self.buffer.as_ptr()) }
    }
}

#[pymethods]
impl PerfBuffer {
    /// `callback(cpu, record)` per record, or with `record_size`, `callback(records)` per drain. The
    /// kernel wakes a poller after every `wakeup_events` records of one CPU.
    #[new]
    #[pyo3(signature = (map, callback, lost_callback=None, page_cnt=8, record_size=None, wakeup_events=1))]
    fn new(
        map: &Map,
        callback: Py<PyAny>,
        lost_callback: Option<Py<PyAny>>,
        page_cnt: usize,
        record_size: Option<usize>,
        wakeup_events: u32,
    ) -> PyResult<Self> {
        if !page_cnt.is_power_of_two() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "page_cnt must be a power of two, not {page_cnt}"
            )));
        }
        if wakeup_events == 0 {
            return Err(pyo3::exceptions::PyValueError::new_err("wakeup_events must be at least 1"));
        }
        check_stride(record_size)?;
        let handle = map.dup_handle()?;
        let sink = Box::new(PerfSink {
            queue: RefCell::default(),
            packed: record_size.map(|stride| (stride, RefCell::default())),
        });
        let opts = libbpf_sys::perf_buffer_opts {
            sz: std::mem::size_of::<libbpf_sys::perf_buffer_opts>() as _,
            sample_period: wakeup_events,
            ..Default::default()
        };
        // SAFETY: the map fd is valid (handle is kept); the callbacks get the boxed sink, whose address
        // stays fixed and which outlives the buffer (freed first, in drop).
        let raw = unsafe {
            libbpf_sys::perf_buffer__new(
                handle.as_fd().as_raw_fd(),
                page_cnt as _,
                Some(perf_sample),
                Some(perf_lost),
                &*sink as *const PerfSink as *mut c_void,
                &opts,
            )
        };
        let Some(buffer) = NonNull::new(raw) else {
            return Err(Error::io("opening the perf buffer", std::io::Error::last_os_error()).into());
        };
        Ok(PerfBuffer { buffer, sink, callback, lost_callback, _map: handle })
    }

    /// Wait up to `timeout_ms` (negative: until something arrives) and deliver what arrived.
    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        if self.sink.queue.borrow().is_empty() {
            wait_ready(py, self.epoll_fd(), timeout_ms)?;
        }
        self.consume(py)
    }

    /// The epoll fd that becomes readable when records arrive (to wait on several buffers at once).
    fn fileno(&self) -> i32 {
        self.epoll_fd()
    }

    /// Deliver whatever is in the buffers now, without waiting.
    fn consume(&self, py: Python<'_>) -> PyResult<usize> {
        // SAFETY: buffer is live; the callbacks only touch the sink, not Python.
        let rc = unsafe { libbpf_sys::perf_buffer__consume(self.buffer.as_ptr()) };
        if rc < 0 {
            return Err(Error::io("reading the perf buffer", std::io::Error::from_raw_os_error(-rc)).into());
        }
        let mut n = 0;
        if let Some((stride, records)) = &self.sink.packed {
            let data = std::mem::take(&mut *records.borrow_mut());
            if !data.is_empty() {
                n = data.len() / stride;
                self.callback.call1(py, (PyBytes::new(py, &data),))?;
            }
        }
        loop {
            let next = self.sink.queue.borrow_mut().pop_front();
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
