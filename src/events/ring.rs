//! Ring buffers (BPF_RINGBUF_OUTPUT): one libbpf `ring_buffer` manager for all of a program's ring
//! buffer maps, as bcc has, so one poll waits on every one of them.

use std::os::fd::{AsFd, AsRawFd};
use std::os::raw::c_void;
use std::ptr::NonNull;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use libbpf_rs::MapHandle;

use super::{check_stride, no_unwind, pack, wait_ready, Exclusive, Handler};
use crate::error::Error;
use crate::maps::Map;

enum Delivery {
    /// `callback(ctx, address, size)` per record, during the drain.
    PerRecord { handler: Handler, ctx: Py<PyAny> },
    /// The records of the current drain at this stride, for `callback(records)` after it.
    Packed { stride: usize, records: Vec<u8>, callback: Py<PyAny> },
}

/// What libbpf's callback reaches through its context pointer during `ring_buffer__consume`: one per map.
struct RingSink {
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

impl RingSink {
    fn sample(&mut self, data: &[u8]) -> i32 {
        let (handler, ctx) = match &mut self.delivery {
            Delivery::Packed { stride, records, .. } => {
                pack(records, data, *stride);
                return 0;
            }
            Delivery::PerRecord { handler, ctx } => (handler, ctx),
        };
        // SAFETY: libbpf calls this only from ring_buffer__consume, which `consume` calls with the
        // GIL held (it is not released around the drain).
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
}

unsafe extern "C" fn ring_sample(ctx: *mut c_void, data: *mut c_void, size: u64) -> i32 {
    // SAFETY: ctx is a RingSink of a RingBuffer, alive as long as libbpf's manager and reached only by
    // the thread that holds the manager's Exclusive (it is in ring_buffer__consume, and `consume` keeps
    // no reference to a sink across it); data points to `size` bytes of the ring that stay valid
    // during the callback.
    let (sink, data) =
        unsafe { (&mut *(ctx as *mut RingSink), std::slice::from_raw_parts(data as *const u8, size as usize)) };
    no_unwind(
        sink,
        |sink| sink.sample(data),
        |sink, e| {
            sink.fatal = Some(e);
            STOP
        },
    )
}

#[pyclass(module = "rbcc._core")]
pub struct RingBuffer {
    buffer: Option<NonNull<libbpf_sys::ring_buffer>>,
    /// One per map, in the order added; boxed once and freed in drop, after the manager.
    sinks: Vec<NonNull<RingSink>>,
    maps: Vec<MapHandle>,
    draining: Exclusive,
}

// SAFETY: libbpf's ring buffer manager is not tied to the thread that made it. `add` has `&mut self`
// (Python-side borrow checking keeps it apart from drains); everything else but the epoll fd is
// touched only while holding `draining`, so one thread at a time.
unsafe impl Send for RingBuffer {}
// SAFETY: as for Send.
unsafe impl Sync for RingBuffer {}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            // SAFETY: buffer came from ring_buffer__new and is freed once, here, before the sinks.
            unsafe { libbpf_sys::ring_buffer__free(buffer.as_ptr()) }
        }
        for sink in self.sinks.drain(..) {
            // SAFETY: each sink came from Box::into_raw; the manager that pointed to it is gone.
            drop(unsafe { Box::from_raw(sink.as_ptr()) });
        }
    }
}

#[pymethods]
impl RingBuffer {
    #[new]
    fn new() -> Self {
        RingBuffer { buffer: None, sinks: Vec::new(), maps: Vec::new(), draining: Exclusive::default() }
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
        check_stride(record_size)?;
        let handle = map.dup_handle()?;
        let delivery = match record_size {
            Some(stride) => Delivery::Packed { stride, records: Vec::new(), callback },
            None => {
                Delivery::PerRecord { handler: Handler { callback, on_error }, ctx: ctx.unwrap_or_else(|| py.None()) }
            }
        };
        let sink = NonNull::from(Box::leak(Box::new(RingSink { delivery, delivered: 0, fatal: None, stopped: false })));
        let fd = handle.as_fd().as_raw_fd();
        let ctx: *mut c_void = sink.as_ptr().cast();
        let ok = match self.buffer {
            None => {
                // SAFETY: fd is a live ring buffer map (handle is kept); the sink outlives the manager.
                let raw = unsafe { libbpf_sys::ring_buffer__new(fd, Some(ring_sample), ctx, std::ptr::null()) };
                self.buffer = NonNull::new(raw);
                self.buffer.is_some()
            }
            Some(buffer) => {
                // SAFETY: as above; the manager is live and, with `&mut self`, not being drained.
                let rc = unsafe { libbpf_sys::ring_buffer__add(buffer.as_ptr(), fd, Some(ring_sample), ctx) };
                rc == 0
            }
        };
        if !ok {
            let err = std::io::Error::last_os_error();
            // SAFETY: libbpf kept no pointer to the sink, as it failed to add the map.
            drop(unsafe { Box::from_raw(sink.as_ptr()) });
            return Err(Error::io("adding a ring buffer", err).into());
        }
        self.sinks.push(sink);
        self.maps.push(handle);
        Ok(())
    }

    /// Wait up to `timeout_ms` (negative: until something arrives) and deliver what arrived.
    #[pyo3(signature = (timeout_ms=-1))]
    fn poll(&self, py: Python<'_>, timeout_ms: i32) -> PyResult<usize> {
        let Some(buffer) = self.buffer else {
            return Ok(0);
        };
        // SAFETY: the manager is live until drop; its epoll fd is fixed.
        let epoll_fd = unsafe { libbpf_sys::ring_buffer__epoll_fd(buffer.as_ptr()) };
        wait_ready(py, epoll_fd, timeout_ms)?;
        self.consume(py)
    }

    /// Deliver whatever is in the buffers now, without waiting.
    fn consume(&self, py: Python<'_>) -> PyResult<usize> {
        let Some(buffer) = self.buffer else {
            return Ok(0);
        };
        let _draining = self.draining.enter(py)?;
        // SAFETY: the manager is live; its callbacks run here, on this thread, with the GIL held, and
        // the sinks are ours while draining is held (no reference to one lives across this call).
        let rc = unsafe { libbpf_sys::ring_buffer__consume(buffer.as_ptr()) };
        let (mut n, mut fatal, mut stopped) = (0, None, false);
        for sink in &self.sinks {
            // SAFETY: as above; the drain is over.
            let sink = unsafe { &mut *sink.as_ptr() };
            n += std::mem::take(&mut sink.delivered);
            stopped |= std::mem::take(&mut sink.stopped);
            fatal = fatal.or(sink.fatal.take());
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        if rc < 0 && !stopped {
            return Err(Error::io("reading the ring buffer", std::io::Error::from_raw_os_error(-rc)).into());
        }
        for sink in &self.sinks {
            // SAFETY: as above.
            let sink = unsafe { &mut *sink.as_ptr() };
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
