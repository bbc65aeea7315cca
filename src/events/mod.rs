//! Perf and ring buffers, drained in Rust: libbpf's buffers owned here, their C callbacks handing each
//! record to a sink (a `PerfSink` or `RingSink`) that the caller supplies. The Python binding's sinks
//! (src/py/events/) call the user's callback per record, or pack the records of a drain for numpy:
//!
//! - per record, bcc's way: the callback gets the record's address (valid during the call) and size,
//!   so a record crosses into Python once and is never copied;
//! - packed, for a buffer opened with a record size: every record of a drain laid at that stride in
//!   one buffer (see `pack`).
//!
//! One thread drains a buffer at a time (`Exclusive`): libbpf's buffers, and the sinks their callbacks
//! write to, are not reentrant.

mod perf;
mod ring;

pub use perf::{PerfBuffer, PerfDrain, PerfSink};
pub use ring::{RingBuffer, RingDrain, RingSink};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::error::{Error, Result};

/// Append `data` to `packed` as one record of exactly `stride` bytes: a longer record (perf pads its
/// samples to 8 bytes) is cut, a shorter one zero-filled.
pub fn pack(packed: &mut Vec<u8>, data: &[u8], stride: usize) {
    let n = data.len().min(stride);
    packed.extend_from_slice(&data[..n]);
    packed.resize(packed.len() + stride - n, 0);
}

/// A record size for packed delivery is refused when it is 0 (every record would vanish).
pub fn check_record_size(record_size: Option<usize>) -> Result<()> {
    if record_size == Some(0) {
        return Err(Error::InvalidArgument("record_size must be positive".into()));
    }
    Ok(())
}

/// Wait up to `timeout_ms` on a buffer's epoll fd: whether it became ready. An interrupted wait
/// (EINTR) is an error the caller checks for, as signals are its business.
pub fn epoll_ready(epoll_fd: i32, timeout_ms: i32) -> std::io::Result<bool> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: epoll_fd belongs to a live libbpf buffer; ev is a valid one-element array.
    match unsafe { libc::epoll_wait(epoll_fd, &mut ev, 1, timeout_ms) } {
        n if n < 0 => Err(std::io::Error::last_os_error()),
        n => Ok(n > 0),
    }
}

/// Run the body of one of libbpf's C callbacks on its sink. A panic must not unwind into C: `on_panic`
/// gets its message instead, for the sink to end the drain with.
fn no_unwind<S, R>(sink: &mut S, body: impl FnOnce(&mut S) -> R, on_panic: impl FnOnce(&mut S, String) -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut *sink))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic from Rust code".into());
            on_panic(sink, msg)
        }
    }
}

/// Lets one thread at a time drain a buffer. Another thread waits its turn (`wait_turn`, which the
/// Python binding calls without the GIL, as the drainer may need it for its callbacks); a callback
/// that drains its own buffer again gets an error instead of a deadlock.
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
    /// The turn to drain, or None when another thread has it (wait with `wait_turn`, then try again).
    fn try_enter(&self) -> Result<Option<Draining<'_>>> {
        let me = thread_tag();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(Error::Busy(
                "this buffer is being drained by the poll that called this callback: a callback must not \
                 poll or consume its own buffer"
                    .into(),
            ));
        }
        let guard = match self.lock.try_lock() {
            Ok(guard) => guard,
            // A panic cannot happen while the lock is held (nothing in a drain panics), and the lock
            // guards no data: a poisoned lock is as good as a free one.
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(None),
        };
        self.owner.store(me, Ordering::Release);
        Ok(Some(Draining { _guard: guard, owner: &self.owner }))
    }

    /// Block until the thread draining now is done.
    fn wait_turn(&self) {
        drop(self.lock.lock());
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
