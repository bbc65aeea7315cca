//! Perf buffers (BPF_PERF_OUTPUT): one ring per CPU, opened with libbpf's `perf_buffer__new` directly,
//! because libbpf-rs's builder cannot set the wakeup count (bcc's `wakeup_events`).

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd};
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use libbpf_rs::MapHandle;

use super::{check_stride, no_unwind, pack, wait_ready, Exclusive, Handler};
use crate::error::Error;
use crate::maps::Map;

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

/// What libbpf's callbacks reach through their context pointer during `perf_buffer__consume`.
struct PerfSink {
    delivery: Delivery,
    lost_callback: Option<Py<PyAny>>,
    /// Records delivered in the current drain.
    delivered: usize,
    /// What ended the current drain's poll (SystemExit, KeyboardInterrupt, ...). libbpf's perf drain
    /// cannot be stopped, so the records after it wait in `pending` for the next poll.
    fatal: Option<PyErr>,
    pending: VecDeque<Record>,
}

impl PerfSink {
    fn sample(&mut self, cpu: i32, data: &[u8]) {
        let handler = match &mut self.delivery {
            Delivery::Packed { stride, records, .. } => return pack(records, data, *stride),
            Delivery::PerRecord(handler) => handler,
        };
        if self.fatal.is_some() {
            self.pending.push_back(Record::Sample(cpu, data.to_vec()));
            return;
        }
        // SAFETY: libbpf calls this only from perf_buffer__consume, which `consume` calls with the
        // GIL held (it is not released around the drain).
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

unsafe extern "C" fn perf_sample(ctx: *mut c_void, cpu: c_int, data: *mut c_void, size: u32) {
    // SAFETY: ctx is the PerfSink of a PerfBuffer, alive as long as libbpf's buffer and reached only
    // by the thread that holds the buffer's Exclusive (it is in perf_buffer__consume, and `consume`
    // keeps no reference to the sink across it); data points to `size` bytes that libbpf keeps valid
    // during the callback.
    let (sink, data) =
        unsafe { (&mut *(ctx as *mut PerfSink), std::slice::from_raw_parts(data as *const u8, size as usize)) };
    no_unwind(sink, |sink| sink.sample(cpu, data), |sink, e| sink.fatal = Some(e))
}

unsafe extern "C" fn perf_lost(ctx: *mut c_void, cpu: c_int, count: u64) {
    // SAFETY: as in perf_sample.
    let sink = unsafe { &mut *(ctx as *mut PerfSink) };
    no_unwind(sink, |sink| sink.lost(cpu, count), |sink, e| sink.fatal = Some(e))
}

#[pyclass(module = "rbcc._core")]
pub struct PerfBuffer {
    buffer: NonNull<libbpf_sys::perf_buffer>,
    /// Boxed once and freed in drop, after the buffer; libbpf holds the pointer.
    sink: NonNull<PerfSink>,
    draining: Exclusive,
    _map: MapHandle,
}

// SAFETY: libbpf's perf buffer is not tied to the thread that made it. Everything but the epoll fd
// (fixed at creation) is touched only while holding `draining`, so one thread at a time.
unsafe impl Send for PerfBuffer {}
// SAFETY: as for Send; `&self` methods take `draining` before touching the buffer or the sink.
unsafe impl Sync for PerfBuffer {}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        // SAFETY: buffer came from perf_buffer__new and is freed once, here, before the sink its
        // callbacks point into; the sink came from Box::into_raw and nothing refers to it after.
        unsafe {
            libbpf_sys::perf_buffer__free(self.buffer.as_ptr());
            drop(Box::from_raw(self.sink.as_ptr()));
        }
    }
}

impl PerfBuffer {
    fn epoll_fd(&self) -> i32 {
        // SAFETY: buffer is live until drop; the epoll fd is fixed at creation.
        unsafe { libbpf_sys::perf_buffer__epoll_fd(self.buffer.as_ptr()) }
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
        let delivery = match record_size {
            Some(stride) => Delivery::Packed { stride, records: Vec::new(), callback },
            None => Delivery::PerRecord(Handler { callback, on_error }),
        };
        let sink = Box::new(PerfSink { delivery, lost_callback, delivered: 0, fatal: None, pending: VecDeque::new() });
        let sink = NonNull::from(Box::leak(sink));
        let opts = libbpf_sys::perf_buffer_opts {
            sz: std::mem::size_of::<libbpf_sys::perf_buffer_opts>() as _,
            sample_period: wakeup_events,
            ..Default::default()
        };
        // SAFETY: the map fd is valid (handle is kept); the callbacks get the sink, whose address
        // stays fixed and which outlives the buffer (freed after it, in drop).
        let raw = unsafe {
            libbpf_sys::perf_buffer__new(
                handle.as_fd().as_raw_fd(),
                page_cnt as _,
                Some(perf_sample),
                Some(perf_lost),
                sink.as_ptr().cast(),
                &opts,
            )
        };
        let Some(buffer) = NonNull::new(raw) else {
            let err = std::io::Error::last_os_error();
            // SAFETY: libbpf kept no pointer to the sink, as it made no buffer.
            drop(unsafe { Box::from_raw(sink.as_ptr()) });
            return Err(Error::io("opening the perf buffer", err).into());
        };
        Ok(PerfBuffer { buffer, sink, draining: Exclusive::default(), _map: handle })
    }

    /// Wait up to `timeout_ms` (negative: until something arrives) and deliver what arrived.
    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        let pending = {
            let _draining = self.draining.enter(py)?;
            // SAFETY: the sink is ours while draining is held.
            unsafe { !self.sink.as_ref().pending.is_empty() }
        };
        if !pending {
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
        let _draining = self.draining.enter(py)?;
        let sink = self.sink.as_ptr();
        // SAFETY (the blocks below): the sink is ours while draining is held, and no reference to it
        // lives across perf_buffer__consume, whose callbacks make their own.
        unsafe {
            (*sink).delivered = 0;
            (*sink).replay();
            if let Some(e) = (*sink).fatal.take() {
                return Err(e);
            }
        }
        // SAFETY: buffer is live; its callbacks run here, on this thread, with the GIL held.
        let rc = unsafe { libbpf_sys::perf_buffer__consume(self.buffer.as_ptr()) };
        // SAFETY: as above; the drain is over.
        let sink = unsafe { &mut *sink };
        if let Some(e) = sink.fatal.take() {
            return Err(e);
        }
        if rc < 0 {
            return Err(Error::io("reading the perf buffer", std::io::Error::from_raw_os_error(-rc)).into());
        }
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
