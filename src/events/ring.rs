//! Ring buffers (BPF_RINGBUF_OUTPUT): one libbpf `ring_buffer` manager for all of a program's ring
//! buffer maps, as bcc has, so one poll waits on every one of them.

use std::os::fd::{AsFd, AsRawFd};
use std::os::raw::c_void;
use std::ptr::NonNull;

use libbpf_rs::MapHandle;

use super::{no_unwind, Draining, Exclusive};
use crate::error::{Error, Result};
use crate::maps::Map;

/// Where one ring buffer map's records go, during `RingDrain::consume`.
pub trait RingSink: Send {
    /// A record; `data` is valid during the call only. A negative return ends the drain (libbpf's
    /// rule), the records after it staying in the ring.
    fn sample(&mut self, data: &[u8]) -> i32;
    /// `sample` panicked; the panic was caught before it reached libbpf. Returns as `sample` does.
    fn panicked(&mut self, message: String) -> i32;
}

unsafe extern "C" fn ring_sample<S: RingSink>(ctx: *mut c_void, data: *mut c_void, size: u64) -> i32 {
    // SAFETY: ctx is a sink of a RingBuffer<S>, alive as long as libbpf's manager and reached only by
    // the thread that holds the manager's Exclusive (it is in ring_buffer__consume, and RingDrain keeps
    // no reference to a sink across it); data points to `size` bytes of the ring that stay valid
    // during the callback.
    let (sink, data) = unsafe { (&mut *(ctx as *mut S), std::slice::from_raw_parts(data as *const u8, size as usize)) };
    no_unwind(sink, |sink| sink.sample(data), |sink, msg| sink.panicked(msg))
}

pub struct RingBuffer<S: RingSink> {
    buffer: Option<NonNull<libbpf_sys::ring_buffer>>,
    /// One per map, in the order added; boxed once and freed in drop, after the manager.
    sinks: Vec<NonNull<S>>,
    maps: Vec<MapHandle>,
    draining: Exclusive,
}

// SAFETY: libbpf's ring buffer manager is not tied to the thread that made it, and the sinks are Send.
// `add` has `&mut self`; everything else but the epoll fd is touched only while holding `draining`, so
// by one thread at a time.
unsafe impl<S: RingSink> Send for RingBuffer<S> {}
// SAFETY: as for Send.
unsafe impl<S: RingSink> Sync for RingBuffer<S> {}

impl<S: RingSink> Drop for RingBuffer<S> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            // SAFETY: buffer came from ring_buffer__new and is freed once, here, before the sinks.
            unsafe { libbpf_sys::ring_buffer__free(buffer.as_ptr()) }
        }
        for sink in self.sinks.drain(..) {
            // SAFETY: each sink came from Box::leak; the manager that pointed to it is gone.
            drop(unsafe { Box::from_raw(sink.as_ptr()) });
        }
    }
}

impl<S: RingSink> Default for RingBuffer<S> {
    fn default() -> Self {
        RingBuffer { buffer: None, sinks: Vec::new(), maps: Vec::new(), draining: Exclusive::default() }
    }
}

impl<S: RingSink> RingBuffer<S> {
    /// Add ring buffer map `map`, its records to `sink`.
    pub fn add(&mut self, map: &Map, sink: S) -> Result<()> {
        let handle = map.dup_handle()?;
        let sink = NonNull::from(Box::leak(Box::new(sink)));
        let fd = handle.as_fd().as_raw_fd();
        let ctx: *mut c_void = sink.as_ptr().cast();
        let ok = match self.buffer {
            None => {
                // SAFETY: fd is a live ring buffer map (handle is kept); the sink outlives the manager.
                let raw = unsafe { libbpf_sys::ring_buffer__new(fd, Some(ring_sample::<S>), ctx, std::ptr::null()) };
                self.buffer = NonNull::new(raw);
                self.buffer.is_some()
            }
            Some(buffer) => {
                // SAFETY: as above; the manager is live and, with `&mut self`, not being drained.
                let rc = unsafe { libbpf_sys::ring_buffer__add(buffer.as_ptr(), fd, Some(ring_sample::<S>), ctx) };
                rc == 0
            }
        };
        if !ok {
            let err = std::io::Error::last_os_error();
            // SAFETY: libbpf kept no pointer to the sink, as it failed to add the map.
            drop(unsafe { Box::from_raw(sink.as_ptr()) });
            return Err(Error::io("adding a ring buffer", err));
        }
        self.sinks.push(sink);
        self.maps.push(handle);
        Ok(())
    }

    /// The epoll fd that becomes readable when records arrive; None before the first `add`.
    pub fn epoll_fd(&self) -> Option<i32> {
        // SAFETY: the manager is live until drop; its epoll fd is fixed.
        self.buffer.map(|b| unsafe { libbpf_sys::ring_buffer__epoll_fd(b.as_ptr()) })
    }

    /// The turn to drain, or None while another thread drains (`wait_turn`, then try again); an
    /// error on the thread that drains already (from one of its callbacks).
    pub fn try_drain(&self) -> Result<Option<RingDrain<'_, S>>> {
        Ok(self.draining.try_enter()?.map(|turn| RingDrain { _turn: turn, buffer: self }))
    }

    /// Block until the thread draining now is done.
    pub fn wait_turn(&self) {
        self.draining.wait_turn()
    }
}

/// One thread's turn at a ring buffer manager: its sinks, and its drain.
pub struct RingDrain<'a, S: RingSink> {
    _turn: Draining<'a>,
    buffer: &'a RingBuffer<S>,
}

impl<S: RingSink> RingDrain<'_, S> {
    /// The sinks, in the order their maps were added.
    pub fn sinks(&mut self) -> impl Iterator<Item = &mut S> {
        // SAFETY: the sinks are reached only by the thread holding the turn, and not during `consume`
        // (both need `&mut self`); each is a distinct allocation.
        self.buffer.sinks.iter().map(|sink| unsafe { &mut *sink.as_ptr() })
    }

    /// Hand whatever the rings hold now to the sinks. A sink that returned a negative number ends
    /// the drain with that number as the error (the caller knows whether it was one).
    pub fn consume(&mut self) -> Result<()> {
        let Some(buffer) = self.buffer.buffer else {
            return Ok(());
        };
        // SAFETY: the manager is live; its callbacks run here, on this thread, which holds the turn,
        // and no reference to a sink lives across the call.
        let rc = unsafe { libbpf_sys::ring_buffer__consume(buffer.as_ptr()) };
        if rc < 0 {
            return Err(Error::io("reading the ring buffer", std::io::Error::from_raw_os_error(-rc)));
        }
        Ok(())
    }
}
