//! A process's addresses → symbols, the way bcc's ProcSyms names them, through blazesym.
//!
//! Each thread keeps one blazesym `Symbolizer` per kind of lookup (`Mode`): it caches every file's
//! parsed symbols, and here also each process's memory map, so a stack of twenty frames reads
//! `/proc/PID/maps` once rather than twenty times. A cached map is reread when the process is no
//! longer the one it was (its `/proc/PID` or its executable changed: the PID was reused, or it ran
//! exec), and when an address falls outside it (a library or JIT code mapped since).
//!
//! Names come from the symbol tables first, as bcc's do (`foo.isra.0`, not DWARF's `foo`), including
//! MiniDebugInfo; only an address they do not cover is looked up again with debug information
//! (a `.gnu_debuglink`ed file, DWARF), which is where bcc finds `__libc_start_call_main`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use blazesym::helper::is_procmap_query_supported;
use blazesym::inspect::Inspector;
use blazesym::normalize::{NormalizeOpts, Normalizer, UserMeta};
use blazesym::symbolize::cache::{Cache, Process as CachedProcess};
use blazesym::symbolize::evict::{Evict, Process as EvictedProcess};
use blazesym::symbolize::source::{Elf, Process, Source};
use blazesym::symbolize::{Input, Reason, Sym, Symbolized, Symbolizer};
use blazesym::Pid;

use super::{byname, debug_dirs, splitdebug, Symbol};

/// An address outside a process's cached map rereads the map, but not more often than this: the
/// garbage addresses a frame-pointer walk through code without frame pointers yields are outside
/// every map, and one stack can hold several.
const REREAD_AFTER: Duration = Duration::from_millis(50);

/// A process checked to be the one its cached map is of is not checked again for this long.
const RECHECK_AFTER: Duration = Duration::from_millis(20);

/// Past this many processes with cached maps, those that have exited are forgotten.
const MANY_PROCESSES: usize = 512;

/// The kinds of lookup, each with its own symbolizer (blazesym fixes these options per symbolizer).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// bcc's names: demangled, without source information.
    Plain,
    /// Names as the symbol tables spell them: bcc's `resolve(addr, demangle=False)`.
    Mangled,
    /// With source lines and the functions inlined at the address, from DWARF; only when asked, as
    /// reading line tables costs.
    Inlined,
}

/// A symbol found for an address, and the functions inlined there (outermost first, `Mode::Inlined`).
pub(super) struct Found {
    pub symbol: Symbol,
    pub inlined: Vec<String>,
}

/// What identifies a process beyond its PID: a reused PID has a new `/proc/PID` inode, an exec a new
/// executable (bcc checks only the latter).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    proc_inode: u64,
    exe: (u64, u64),
}

fn stamp(pid: u32) -> Option<Stamp> {
    let dir = fs::metadata(format!("/proc/{pid}")).ok()?;
    // a kernel thread has no executable; it still has a PID to tell apart
    let exe = fs::metadata(format!("/proc/{pid}/exe")).map(|m| (m.dev(), m.ino())).unwrap_or_default();
    Some(Stamp { proc_inode: dir.ino(), exe })
}

struct CachedMap {
    stamp: Stamp,
    read: Instant,
    /// When the stamp was last found unchanged.
    checked: Instant,
}

pub(super) struct Lookups {
    mode: Mode,
    symbolizer: Symbolizer,
    maps: HashMap<u32, CachedMap>,
    sweep_at: usize,
}

thread_local! {
    static PLAIN: RefCell<Lookups> = RefCell::new(Lookups::new(Mode::Plain));
    static MANGLED: RefCell<Lookups> = RefCell::new(Lookups::new(Mode::Mangled));
    static INLINED: RefCell<Lookups> = RefCell::new(Lookups::new(Mode::Inlined));
}

/// Runs `f` with this thread's lookups of kind `mode` (made on first use).
pub(super) fn with<R>(mode: Mode, f: impl FnOnce(&mut Lookups) -> R) -> R {
    let key: &'static LocalKey<RefCell<Lookups>> = match mode {
        Mode::Plain => &PLAIN,
        Mode::Mangled => &MANGLED,
        Mode::Inlined => &INLINED,
    };
    key.with(|lookups| f(&mut lookups.borrow_mut()))
}

impl Lookups {
    fn new(mode: Mode) -> Self {
        let symbolizer = Symbolizer::builder()
            .enable_demangling(mode != Mode::Mangled)
            .enable_code_info(mode == Mode::Inlined)
            .enable_inlined_fns(mode == Mode::Inlined)
            .set_debug_dirs(Some(debug_dirs()))
            .set_process_dispatcher(splitdebug::dispatch)
            .build();
        Lookups { mode, symbolizer, maps: HashMap::new(), sweep_at: MANY_PROCESSES }
    }

    /// Address `addr` in process `pid`.
    pub(super) fn user(&mut self, pid: u32, addr: u64) -> Option<Found> {
        if pid == 0 {
            // blazesym's PID 0 is the calling process; bcc's is the idle task, which has no user space
            return None;
        }
        self.prepare(pid);
        match self.user_once(pid, addr, true) {
            Err(Reason::Unmapped) if self.reread(pid) => self.user_once(pid, addr, true).ok(),
            // A process that exited (or is a zombie) keeps its cached map, but its /proc/PID/map_files
            // links are gone: its files are opened by the paths the map names instead (bcc names
            // symbols of exited processes too, which tools that print at the end rely on).
            Err(_) if self.maps.contains_key(&pid) && fs::metadata(format!("/proc/{pid}/exe")).is_err() => {
                self.user_once(pid, addr, false).ok()
            }
            found => found.ok(),
        }
    }

    fn user_once(&self, pid: u32, addr: u64, map_files: bool) -> Result<Found, Reason> {
        if self.mode == Mode::Inlined {
            return self.in_process(pid, addr, true, map_files);
        }
        match self.in_process(pid, addr, false, map_files) {
            Err(Reason::MissingSyms | Reason::UnknownAddr) => self.in_process(pid, addr, true, map_files),
            found => found,
        }
    }

    fn in_process(&self, pid: u32, addr: u64, debug_syms: bool, map_files: bool) -> Result<Found, Reason> {
        let mut process = Process::new(Pid::from(pid));
        process.debug_syms = debug_syms;
        process.map_files = map_files;
        match self.symbolizer.symbolize_single(&Source::Process(process), Input::AbsAddr(addr)) {
            Ok(Symbolized::Sym(sym)) if !covers(&sym) => Err(Reason::UnknownAddr),
            // a perf map's symbols have no module: bcc names the map file
            Ok(Symbolized::Sym(sym)) => Ok(found(sym, || format!("/tmp/perf-{pid}.map"))),
            Ok(Symbolized::Unknown(reason)) => Err(reason),
            Err(_) => Err(Reason::IgnoredError),
        }
    }

    /// Caches the process's map unless the cached one is still its own.
    fn prepare(&mut self, pid: u32) {
        // the stamp's two stats of /proc cost more than the lookup itself: the frames of a stack, read
        // one after the other, share one check
        if self.maps.get(&pid).is_some_and(|cached| cached.checked.elapsed() < RECHECK_AFTER) {
            return;
        }
        // a process that is gone keeps whatever map was cached for it; so does a zombie, whose /proc
        // entry stays without an executable or mappings (reread, its map would be empty)
        let Some(now) = stamp(pid) else { return };
        if now.exe == (0, 0) && self.maps.contains_key(&pid) {
            return;
        }
        if let Some(cached) = self.maps.get_mut(&pid).filter(|cached| cached.stamp == now) {
            cached.checked = Instant::now();
            return;
        }
        if self.maps.len() >= self.sweep_at {
            self.forget_exited();
        }
        self.cache_map(pid, now);
    }

    /// Rereads the map of a process an address was outside of, unless it was read just now.
    fn reread(&mut self, pid: u32) -> bool {
        match (self.maps.get(&pid), stamp(pid)) {
            (Some(cached), Some(now)) if cached.read.elapsed() >= REREAD_AFTER => self.cache_map(pid, now),
            _ => false,
        }
    }

    fn cache_map(&mut self, pid: u32, stamp: Stamp) -> bool {
        let mut what = CachedProcess::new(Pid::from(pid));
        // a JIT appends to its perf map: left uncached, blazesym rereads the file when it changes
        what.cache_perf_map = false;
        let cached = self.symbolizer.cache(&Cache::Process(what)).is_ok();
        if cached {
            let now = Instant::now();
            self.maps.insert(pid, CachedMap { stamp, read: now, checked: now });
        }
        cached
    }

    fn forget_exited(&mut self) {
        let exited: Vec<u32> =
            self.maps.iter().filter(|(pid, cached)| stamp(**pid) != Some(cached.stamp)).map(|(pid, _)| *pid).collect();
        for pid in exited {
            self.maps.remove(&pid);
            let _ = self.symbolizer.evict(&Evict::Process(EvictedProcess::new(Pid::from(pid))));
        }
        self.sweep_at = (2 * self.maps.len()).max(MANY_PROCESSES);
    }

    /// The symbol at file offset `offset` of ELF file `path`: its symbol tables first, then its debug
    /// information, as for a process.
    pub(super) fn file_offset(&self, path: &Path, offset: u64) -> Option<Found> {
        for debug_syms in [false, true] {
            let mut elf = Elf::new(path);
            elf.debug_syms = debug_syms;
            match self.symbolizer.symbolize_single(&Source::Elf(elf), Input::FileOffset(offset)) {
                Ok(Symbolized::Sym(sym)) if covers(&sym) => return Some(found(sym, || path.display().to_string())),
                Ok(Symbolized::Sym(_) | Symbolized::Unknown(Reason::MissingSyms | Reason::UnknownAddr)) => continue,
                _ => return None,
            }
        }
        None
    }
}

/// Whether a symbol covers the address it was found for: bcc knows a symbol's extent only from its
/// size, so a sizeless one (a version definition such as GLIBC_2.3.2, an assembler label) names only
/// its own address, where blazesym would stretch it to the next symbol.
fn covers(sym: &Sym<'_>) -> bool {
    sym.size.is_some() || sym.offset == 0
}

fn found(sym: Sym<'_>, no_module: impl FnOnce() -> String) -> Found {
    let module = sym.module.map(|m| m.to_string_lossy().into_owned()).unwrap_or_else(no_module);
    Found {
        symbol: Symbol { name: sym.name.into_owned(), offset: sym.offset as u64, module },
        inlined: sym.inlined.iter().map(|f| f.name.to_string()).collect(),
    }
}

/// Address `addr` in process `pid` → its symbol; `demangle` as bcc's (C++ and Rust names).
pub fn usym(pid: u32, addr: u64, demangle: bool) -> Option<Symbol> {
    let mode = if demangle { Mode::Plain } else { Mode::Mangled };
    with(mode, |lookups| lookups.user(pid, addr)).map(|found| found.symbol)
}

/// The functions DWARF says are inlined at `addr` in process `pid`, outermost first: the frames a
/// stack trace does not show between the function that `usym` names and the code at `addr`. Empty
/// where there are none, or no DWARF.
pub fn usym_inlined(pid: u32, addr: u64) -> Vec<String> {
    with(Mode::Inlined, |lookups| lookups.user(pid, addr)).map(|found| found.inlined).unwrap_or_default()
}

/// The file mapped at `addr` in process `pid`, and the address's offset in it: what bcc reports for
/// an address no symbol covers.
pub fn user_module(pid: u32, addr: u64) -> Option<(String, u64)> {
    if pid == 0 {
        return None;
    }
    // one address: the kernel's PROCMAP_QUERY answers it without reading the whole map, where it has it
    let normalizer = Normalizer::builder()
        .enable_procmap_query(is_procmap_query_supported().unwrap_or(false))
        .enable_build_ids(false)
        .build();
    let opts = NormalizeOpts { map_files: false, ..Default::default() };
    let out = normalizer.normalize_user_addrs_opts(Pid::from(pid), &[addr], &opts).ok()?;
    let (offset, meta) = *out.outputs.first()?;
    match out.meta.get(meta)? {
        UserMeta::Elf(elf) => Some((elf.path.display().to_string(), offset)),
        _ => None,
    }
}

/// The address of symbol `name` of `module` (a path as `/proc/PID/maps` names it) in process `pid`,
/// as bcc's `SymbolCache(pid).resolve_name(module, name)` gives it.
pub fn resolve_name(pid: u32, module: &str, name: &str) -> Option<u64> {
    if pid == 0 {
        return None;
    }
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    // (start, end, file offset) of each mapping the loader made of the module: private ones (a shared
    // one is someone reading the file, such as blazesym in this very process)
    let mappings: Vec<(u64, u64, u64)> = maps
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (range, perms, offset) = (fields.next()?, fields.next()?, fields.next()?);
            let path = fields.nth(2)?;
            let (start, end) = range.split_once('-')?;
            (path == module && perms.ends_with('p')).then_some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
                u64::from_str_radix(offset, 16).ok()?,
            ))
        })
        .collect();
    if mappings.is_empty() {
        return None;
    }
    // through the process's root, as bcc reads it: the module may live in another mount namespace
    let file = format!("/proc/{pid}/root{module}");
    let file = if Path::new(&file).exists() { file } else { module.to_string() };
    // the symbol tables first, then the debug information (bcc finds libc's local functions there)
    let at = byname::file_offset_of(&Inspector::new(), Path::new(&file), name)?;
    // the mapping that holds the symbol's bytes says where they are
    mappings
        .iter()
        .find(|(start, end, offset)| *offset <= at && at < offset + (end - start))
        .map(|(start, _, offset)| start + (at - offset))
}
