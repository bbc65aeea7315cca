//! Perf and ring buffers, drained in Rust. The wait happens with the GIL released, in short slices so
//! Ctrl-C raises KeyboardInterrupt promptly. A buffer delivers its records one of two ways:
//!
//! - per record, bcc's way: the user's callback is called from inside libbpf's drain with the record's
//!   address (an int, valid during the call, as bcc's ctypes callbacks get it) and its size, so a
//!   record crosses into Python once and is never copied;
//! - packed, for a buffer opened with a record size: every record of a drain laid at that stride in
//!   one bytes object, which numpy reads as an array without a Python object per record.

mod perf;
mod ring;

pub use perf::PerfBuffer;
pub use ring::RingBuffer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyException;
use pyo3::panic::PanicException;
use pyo3::prelude::*;

use crate::error::Error;

const SLICE: Duration = Duration::from_millis(100);

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

/// Run the body of one of libbpf's C callbacks on its sink. A panic must not unwind into C (pyo3
/// resumes one when a Python callback lets a PanicException through): `on_panic` gets it as the
/// error that ends the poll, a PanicException, as a panic anywhere else in the core becomes.
fn no_unwind<S, R>(sink: &mut S, body: impl FnOnce(&mut S) -> R, on_panic: impl FnOnce(&mut S, PyErr) -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut *sink))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic from Rust code".into());
            on_panic(sink, PanicException::new_err(msg))
        }
    }
}

/// Lets one thread at a time drain a buffer: libbpf's buffers, and the sinks their callbacks write
/// to, are not reentrant. Another thread waits its turn without the GIL (the drainer may need it for
/// its callbacks); a callback that drains its own buffer again gets an error instead of a deadlock.
#[derive(Default)]
struct Exclusive {
    lock: Mutex<()>,
    /// The thread that holds `lock` (see `thread_tag`), 0 when none does.
    owner: AtomicUsize,
}

/// Proof that the current thread is the one draining the buffer.
struct Draining<'a> {
    _guard: MutexGuard<'a, ()>,
    owner: &'a AtomicUsize,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

/// A number no other live thread has: the address of a thread-local.
fn thread_tag() -> usize {
    thread_local!(static TAG: u8 = const { 0 });
    TAG.with(|t| t as *const u8 as usize)
}

impl Exclusive {
    fn enter(&self, py: Python<'_>) -> PyResult<Draining<'_>> {
        let me = thread_tag();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(Error::Busy(
                "this buffer is being drained by the poll that called this callback: a callback must not \
                 poll or consume its own buffer"
                    .into(),
            )
            .into());
        }
        let guard = loop {
            match self.lock.try_lock() {
                Ok(guard) => break guard,
                // A panic cannot happen while the lock is held (nothing in a drain panics), and the
                // lock guards no data: a poisoned lock is as good as a free one.
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) => py.detach(|| drop(self.lock.lock())),
            }
        };
        self.owner.store(me, Ordering::Release);
        Ok(Draining { _guard: guard, owner: &self.owner })
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
