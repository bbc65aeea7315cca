//! Perf buffers (BPF_PERF_OUTPUT): one ring per CPU, opened with libbpf's `perf_buffer__new` directly,
//! because libbpf-rs's builder cannot set the wakeup count (bcc's `wakeup_events`).

use std::os::fd::{AsFd, AsRawFd};
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

use libbpf_rs::MapHandle;

use super::{no_unwind, Draining, Exclusive};
use crate::error::{Error, Result};
use crate::maps::Map;

/// Where a perf buffer's records go, during `PerfDrain::consume`.
pub trait PerfSink: Send {
    /// A record from `cpu`; `data` is valid during the call only.
    fn sample(&mut self, cpu: i32, data: &[u8]);
    /// The kernel dropped `count` records of `cpu` (its ring was full).
    fn lost(&mut self, cpu: i32, count: u64);
    /// `sample` or `lost` panicked; the panic was caught before it reached libbpf.
    fn panicked(&mut self, message: String);
}

unsafe extern "C" fn perf_sample<S: PerfSink>(ctx: *mut c_void, cpu: c_int, data: *mut c_void, size: u32) {
    // SAFETY: ctx is the sink of a PerfBuffer<S>, alive as long as libbpf's buffer and reached only by
    // the thread that holds the buffer's Exclusive (it is in perf_buffer__consume, and PerfDrain keeps
    // no reference to the sink across it); data points to `size` bytes that libbpf keeps valid
    // during the callback.
    let (sink, data) = unsafe { (&mut *(ctx as *mut S), std::slice::from_raw_parts(data as *const u8, size as usize)) };
    no_unwind(sink, |sink| sink.sample(cpu, data), |sink, msg| sink.panicked(msg))
}

unsafe extern "C" fn perf_lost<S: PerfSink>(ctx: *mut c_void, cpu: c_int, count: u64) {
    // SAFETY: as in perf_sample.
    let sink = unsafe { &mut *(ctx as *mut S) };
    no_unwind(sink, |sink| sink.lost(cpu, count), |sink, msg| sink.panicked(msg))
}

pub struct PerfBuffer<S: PerfSink> {
    buffer: NonNull<libbpf_sys::perf_buffer>,
    /// Boxed once and freed in drop, after the buffer; libbpf holds the pointer.
    sink: NonNull<S>,
    draining: Exclusive,
    _map: MapHandle,
}

// SAFETY: libbpf's perf buffer is not tied to the thread that made it, and the sink is Send. Everything
// but the epoll fd (fixed at creation) is touched only while holding `draining`, so by one thread at a
// time.
unsafe impl<S: PerfSink> Send for PerfBuffer<S> {}
// SAFETY: as for Send; `&self` methods take `draining` before touching the buffer or the sink.
unsafe impl<S: PerfSink> Sync for PerfBuffer<S> {}

impl<S: PerfSink> Drop for PerfBuffer<S> {
    fn drop(&mut self) {
        // SAFETY: buffer came from perf_buffer__new and is freed once, here, before the sink its
        // callbacks point into; the sink came from Box::leak and nothing refers to it after.
        unsafe {
            libbpf_sys::perf_buffer__free(self.buffer.as_ptr());
            drop(Box::from_raw(self.sink.as_ptr()));
        }
    }
}

impl<S: PerfSink> PerfBuffer<S> {
    /// A perf buffer of `page_cnt` pages per CPU on `map`, its records to `sink`. The kernel wakes a
    /// poller after every `wakeup_events` records of one CPU.
    pub fn new(map: &Map, page_cnt: usize, wakeup_events: u32, sink: S) -> Result<Self> {
        if !page_cnt.is_power_of_two() {
            return Err(Error::InvalidArgument(format!("page_cnt must be a power of two, not {page_cnt}")));
        }
        if wakeup_events == 0 {
            return Err(Error::InvalidArgument("wakeup_events must be at least 1".into()));
        }
        let handle = map.dup_handle()?;
        let sink = NonNull::from(Box::leak(Box::new(sink)));
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
                Some(perf_sample::<S>),
                Some(perf_lost::<S>),
                sink.as_ptr().cast(),
                &opts,
            )
        };
        let Some(buffer) = NonNull::new(raw) else {
            let err = std::io::Error::last_os_error();
            // SAFETY: libbpf kept no pointer to the sink, as it made no buffer.
            drop(unsafe { Box::from_raw(sink.as_ptr()) });
            return Err(Error::io("opening the perf buffer", err));
        };
        Ok(PerfBuffer { buffer, sink, draining: Exclusive::default(), _map: handle })
    }

    /// The epoll fd that becomes readable when records arrive.
    pub fn epoll_fd(&self) -> i32 {
        // SAFETY: buffer is live until drop; the epoll fd is fixed at creation.
        unsafe { libbpf_sys::perf_buffer__epoll_fd(self.buffer.as_ptr()) }
    }

    /// The turn to drain this buffer, or None while another thread drains it (`wait_turn`, then try
    /// again); an error on the thread that drains it already (from one of its callbacks).
    pub fn try_drain(&self) -> Result<Option<PerfDrain<'_, S>>> {
        Ok(self.draining.try_enter()?.map(|turn| PerfDrain { _turn: turn, buffer: self }))
    }

    /// Block until the thread draining this buffer now is done.
    pub fn wait_turn(&self) {
        self.draining.wait_turn()
    }
}

/// One thread's turn at a perf buffer: its sink, and its drain.
pub struct PerfDrain<'a, S: PerfSink> {
    _turn: Draining<'a>,
    buffer: &'a PerfBuffer<S>,
}

impl<S: PerfSink> PerfDrain<'_, S> {
    pub fn sink(&mut self) -> &mut S {
        // SAFETY: the sink is reached only by the thread holding the turn, and not during `consume`
        // (both need `&mut self`).
        unsafe { &mut *self.buffer.sink.as_ptr() }
    }

    /// Hand whatever the rings hold now to the sink.
    pub fn consume(&mut self) -> Result<()> {
        // SAFETY: buffer is live; its callbacks run here, on this thread, which holds the turn, and no
        // reference to the sink lives across the call.
        let rc = unsafe { libbpf_sys::perf_buffer__consume(self.buffer.buffer.as_ptr()) };
        if rc < 0 {
            return Err(Error::io("reading the perf buffer", std::io::Error::from_raw_os_error(-rc)));
        }
        Ok(())
    }
}
