//! Reading a whole map with the batch commands: one walk, or for a large hash map two at once.
//!
//! A hash map's batch token is the index of the next bucket to visit (kernel/bpf/hashtab.c), and the
//! kernel's walk of a large hash map costs more than all the rest of `for k in table`. So a large hash
//! map is read as two halves of its bucket array, one per thread: the first from bucket 0 until its
//! token reaches the middle, the second from the middle to the end. The first walk's last call may
//! run past the middle; a key lives in one bucket only, so whatever both walks returned is that
//! overlap, and it is kept once. The halves are a guess at the kernel's bucket count: a wrong guess
//! costs only the speed-up, never an entry.

use std::collections::HashSet;

/// Entries asked for per batch syscall; the buffers grow past it as the map yields more.
const BATCH_CHUNK: usize = 16384;

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;

/// Below this many buckets one walk is as fast: a thread costs about what a short walk does.
const SPLIT_MIN_BUCKETS: u64 = 1 << 16;

/// How to read a map: its fd, sizes and whether the walk deletes what it returns.
#[derive(Clone, Copy)]
pub struct Walk {
    pub fd: i32,
    pub map_type: u32,
    pub key_size: usize,
    /// Bytes one value takes in the batch buffer (per-CPU maps: one copy per CPU).
    pub stride: usize,
    pub max_entries: usize,
    pub delete: bool,
}

/// The entries one walk returned, and after each of its calls how many it had and the token then.
struct Part {
    keys: Vec<u8>,
    values: Vec<u8>,
    calls: Vec<(usize, u32)>,
}

impl Walk {
    /// Every entry as (keys, values), the entries laid end to end; the error is an errno.
    pub fn read_all(&self) -> std::result::Result<(Vec<u8>, Vec<u8>), i32> {
        match self.split_point() {
            Some(middle) => self.read_halves(middle),
            None => self.walk(None, None).map(|part| (part.keys, part.values)),
        }
    }

    /// The entries below bucket `middle` and from it on, read at once on two threads.
    fn read_halves(&self, middle: u32) -> std::result::Result<(Vec<u8>, Vec<u8>), i32> {
        let (first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| self.walk(Some(middle), None));
            let first = self.walk(None, Some(middle));
            (first, second.join())
        });
        let mut first = first?;
        match second {
            Ok(Ok(second)) => Ok(self.join(first, second, middle)),
            // The second half could not be read from the middle: read on from where the first ended.
            _ => match first.calls.last() {
                Some(&(_, token)) if token != u32::MAX => {
                    let rest = self.walk(Some(token), None)?;
                    first.keys.extend_from_slice(&rest.keys);
                    first.values.extend_from_slice(&rest.values);
                    Ok((first.keys, first.values))
                }
                _ => Ok((first.keys, first.values)),
            },
        }
    }

    /// The bucket to start a second walk at, for a hash map large enough to be worth two.
    fn split_point(&self) -> Option<u32> {
        let hash = matches!(
            self.map_type,
            BPF_MAP_TYPE_HASH | BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_LRU_HASH | BPF_MAP_TYPE_LRU_PERCPU_HASH
        );
        // The kernel makes a hash map's bucket count the power of two at or above max_entries.
        let buckets = (self.max_entries as u64).next_power_of_two();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if !hash || buckets < SPLIT_MIN_BUCKETS || cpus < 2 || buckets > u64::from(u32::MAX) {
            return None;
        }
        Some((buckets / 2) as u32)
    }

    /// The first part's entries, then the second part's less the ones the first returned too.
    fn join(&self, first: Part, second: Part, middle: u32) -> (Vec<u8>, Vec<u8>) {
        let (ks, stride) = (self.key_size, self.stride);
        // The first walk passed the middle in its last call only (it asks for little near the middle,
        // so that call returned few entries).
        let last_call_start = match first.calls.len() {
            0 | 1 => 0,
            n => first.calls[n - 2].0,
        };
        let first_end = first.calls.last().map_or(middle, |&(_, token)| token);
        let tail: HashSet<Vec<u8>> = first.keys[last_call_start * ks..].chunks_exact(ks).map(<[u8]>::to_vec).collect();
        // The second walk's entries that may be in buckets the first also read: those of its calls
        // that started below where the first walk ended.
        let mut shared = 0;
        let mut start = middle;
        for &(count, token) in &second.calls {
            if start >= first_end {
                break;
            }
            shared = count;
            start = token;
        }
        let (mut keys, mut values) = (first.keys, first.values);
        let pairs = second.keys.chunks_exact(ks).zip(second.values.chunks_exact(stride));
        let mut copied = 0;
        for (i, (key, _)) in pairs.take(shared).enumerate() {
            if tail.contains(key) {
                keys.extend_from_slice(&second.keys[copied * ks..i * ks]);
                values.extend_from_slice(&second.values[copied * stride..i * stride]);
                copied = i + 1;
            }
        }
        keys.extend_from_slice(&second.keys[copied * ks..]);
        values.extend_from_slice(&second.values[copied * stride..]);
        (keys, values)
    }

    /// One walk from `start` (a hash map's bucket; None: the beginning) to the end, or until the token
    /// reaches `stop`.
    fn walk(&self, start: Option<u32>, stop: Option<u32>) -> std::result::Result<Part, i32> {
        // Hash maps pass a bucket index (u32) as the batch token, the other maps a key.
        let token_len = self.key_size.max(8);
        let mut in_token = vec![0u8; token_len];
        let mut out_token = vec![0u8; token_len];
        if let Some(bucket) = start {
            in_token[..4].copy_from_slice(&bucket.to_ne_bytes());
        }
        let mut part = Part { keys: Vec::new(), values: Vec::new(), calls: Vec::new() };
        let mut first = start.is_none();
        // A walk that stops at a bucket starts small, to learn how full the buckets are.
        let mut chunk = if stop.is_some() { BATCH_CHUNK / 8 } else { BATCH_CHUNK };
        let opts = batch_opts(0);
        let (ks, stride) = (self.key_size, self.stride);
        loop {
            let (kstart, vstart) = (part.keys.len(), part.values.len());
            part.keys.resize(kstart + chunk * ks, 0);
            part.values.resize(vstart + chunk * stride, 0);
            let mut count = chunk as u32;
            let in_ptr = if first { std::ptr::null_mut() } else { in_token.as_mut_ptr().cast() };
            // SAFETY: the token buffers hold token_len bytes (at least a key or a u32 bucket index), and
            // keys/values have room for `count` entries of key_size/stride bytes past their starts;
            // opts is a fully initialised bpf_map_batch_opts with its size set.
            let ret = unsafe {
                let call = if self.delete {
                    libbpf_sys::bpf_map_lookup_and_delete_batch
                } else {
                    libbpf_sys::bpf_map_lookup_batch
                };
                call(
                    self.fd,
                    in_ptr,
                    out_token.as_mut_ptr().cast(),
                    part.keys[kstart..].as_mut_ptr().cast(),
                    part.values[vstart..].as_mut_ptr().cast(),
                    &mut count,
                    &opts,
                )
            };
            let got = (count as usize).min(chunk);
            part.keys.truncate(kstart + got * ks);
            part.values.truncate(vstart + got * stride);
            let token = u32::from_ne_bytes(out_token[..4].try_into().expect("a token holds 4 bytes"));
            match -ret.min(0) {
                0 => {}
                libc::ENOENT => {
                    part.calls.push((part.keys.len() / ks, u32::MAX));
                    return Ok(part);
                }
                // One hash bucket holds more entries than the chunk: ask again, for more at once (a
                // bucket can't hold more than the whole map).
                libc::ENOSPC if got == 0 && chunk < self.max_entries => {
                    chunk = (chunk * 2).min(self.max_entries.max(1));
                    continue;
                }
                libc::EINTR | libc::EAGAIN if got == 0 => continue,
                errno => return Err(errno),
            }
            part.calls.push((part.keys.len() / ks, token));
            if got == 0 {
                // No progress (the program keeps refilling a bucket): what we have is the answer.
                return Ok(part);
            }
            if let Some(stop) = stop {
                if token >= stop {
                    return Ok(part);
                }
                chunk = next_chunk(part.keys.len() / ks, token, stop);
            }
            in_token.copy_from_slice(&out_token);
            first = false;
        }
    }
}

/// Entries to ask for next, when the walk is to stop at bucket `stop`: a little less than the buckets
/// left before it hold at the density seen so far, so that the call that passes it is a short one
/// (what it returns past the middle, the other walk reads too).
fn next_chunk(entries: usize, token: u32, stop: u32) -> usize {
    let remaining = u64::from(stop.saturating_sub(token));
    let expected = remaining * entries as u64 / u64::from(token.max(1));
    (expected - expected / 8).clamp(16, BATCH_CHUNK as u64) as usize
}

// The struct update covers the padding bpf_map_batch_opts has on some targets (none on x86-64).
#[allow(clippy::needless_update)]
pub fn batch_opts(elem_flags: u64) -> libbpf_sys::bpf_map_batch_opts {
    libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
        elem_flags,
        flags: 0,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{next_chunk, Walk};

    /// A hash map of `buckets` buckets holding keys 1..=entries, each with the value key * 3.
    fn filled_hash(buckets: u32, entries: u32) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: a plain map creation; the name is NUL-terminated and no options are passed.
        let fd = unsafe { libbpf_sys::bpf_map_create(1, c"walk_test".as_ptr(), 4, 8, buckets, std::ptr::null()) };
        if fd < 0 {
            return None; // not root: the map tests of tests/python cover the same walk there
        }
        for key in 1..=entries {
            let value = u64::from(key) * 3;
            // SAFETY: key and value are live locals of the map's key and value sizes.
            let ret = unsafe {
                libbpf_sys::bpf_map_update_elem(fd, (&key as *const u32).cast(), (&value as *const u64).cast(), 0)
            };
            assert_eq!(ret, 0);
        }
        // SAFETY: fd was just created and is owned by no one else.
        Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    #[test]
    fn two_halves_return_every_entry_once() {
        use std::os::fd::AsRawFd;
        let cases = [(1024, 1000, 512), (1024, 1000, 1), (1024, 1000, 1023), (1024, 1000, 5000), (1024, 3, 512)];
        let more = [(1024, 0, 512), (1 << 15, 20000, 1 << 14), (1 << 15, 30000, 1 << 14)];
        for (buckets, entries, middle) in cases.into_iter().chain(more) {
            let Some(map) = filled_hash(buckets, entries) else {
                eprintln!("skipped: creating a BPF map needs root");
                return;
            };
            let walk = Walk {
                fd: map.as_raw_fd(),
                map_type: 1,
                key_size: 4,
                stride: 8,
                max_entries: buckets as usize,
                delete: false,
            };
            let (keys, values) = walk.read_halves(middle).expect("the walk");
            let mut seen: Vec<u32> = keys.chunks_exact(4).map(|k| u32::from_ne_bytes(k.try_into().unwrap())).collect();
            for (key, value) in seen.iter().zip(values.chunks_exact(8)) {
                assert_eq!(u64::from_ne_bytes(value.try_into().unwrap()), u64::from(*key) * 3);
            }
            seen.sort_unstable();
            assert_eq!(seen, (1..=entries).collect::<Vec<_>>(), "{entries} entries split at {middle}");
        }
    }

    #[test]
    fn the_last_chunk_asks_for_about_what_is_left_before_the_middle() {
        // 1000 entries seen in 2000 buckets, 100 buckets left: a little under 50 entries.
        let n = next_chunk(1000, 2000, 2100);
        assert!((40..50).contains(&n), "{n}");
        // Far from the middle it asks for whole chunks; at the start it still asks for some.
        assert_eq!(next_chunk(100_000, 1000, u32::MAX), super::BATCH_CHUNK);
        assert!(next_chunk(0, 0, 10) > 0);
    }
}
