//! A clang compile started before its program exists, so that it overlaps the parse.
//!
//! What clang does before it reaches the program does not depend on it: starting (its LLVM libraries
//! load and relocate, ~20 ms) and reading the prelude (a PCH, or on a machine's first run all of
//! vmlinux.h, ~200 ms). So the compile starts with the parse: clang compiles a one-line unit that
//! includes the program from a FIFO and waits there, prelude read, while the parse child parses and
//! rewrites; the rewritten text then goes into the FIFO. On two cores the two run side by side.
//!
//! The program's file must stay the user's name (`biolatency.c`): diagnostics, the object's line info
//! and the verifier log quote it.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::driver;
use crate::error::{Error, Result};

/// A clang compile waiting for its program. Dropped unfinished, it kills clang.
pub struct Pending {
    child: Option<Child>,
    /// Where clang reads the program: a FIFO named as the program is named in diagnostics.
    pub source: PathBuf,
    unit: PathBuf,
    stderr: PathBuf,
}

/// Start compiling the program named `source_name` into `object`, in `work`, with `flags` (which put
/// the prelude in front).
pub fn start(work: &Path, source_name: &str, object: &Path, flags: &[String]) -> Result<Pending> {
    let dir = work.join("src");
    fs::create_dir_all(&dir).map_err(|e| Error::io("creating the compile's source directory", e))?;
    let source = dir.join(source_name);
    let c_source = CString::new(source.as_os_str().as_bytes())
        .map_err(|_| Error::Setup(format!("scratch path {} holds a NUL", source.display())))?;
    // SAFETY: c_source is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c_source.as_ptr(), 0o600) } != 0 {
        return Err(Error::io("creating the program's FIFO", std::io::Error::last_os_error()));
    }
    // a relative include: source_name is the scratch name, made of [A-Za-z0-9._+-] only
    let unit = work.join("unit.c");
    fs::write(&unit, format!("#include \"src/{source_name}\"\n")).map_err(|e| Error::io("writing unit.c", e))?;
    let stderr_path = work.join("clang.err");
    let stderr = fs::File::create(&stderr_path).map_err(|e| Error::io("creating clang's error file", e))?;
    // stderr goes to a file, not a pipe: clang may write before it reads the FIFO, and nobody reads a
    // pipe until the program is written.
    let mut cmd = driver::command(flags, &["-c"], &unit, object)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
    // SAFETY: the closure runs between fork and exec and calls only prctl, getppid and setrlimit, which
    // are async-signal-safe.
    // A clang waiting on the FIFO would wait forever if this process died (SIGKILL) before writing
    // it: it dies with the thread that started it, which waits for it.
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                // the parent died before prctl: no signal will come, so do not start at all
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            super::isolate::limit_resources();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Error::io("running clang", e))?;
    Ok(Pending { child: Some(child), source, unit, stderr: stderr_path })
}

impl Pending {
    /// Give clang the program and wait for it: Ok, or clang's diagnostics (about the program, not the
    /// unit that includes it).
    pub fn finish(mut self, text: &str) -> Result<std::result::Result<(), String>> {
        let mut child = self.child.take().expect("a pending compile has its clang");
        let fed = feed(&self.source, text, &mut child);
        let status = child.wait().map_err(|e| Error::io("waiting for clang", e))?;
        fed?;
        if status.success() {
            return Ok(Ok(()));
        }
        let err = fs::read_to_string(&self.stderr).unwrap_or_default();
        let unit = self.unit.display().to_string();
        let err: String = err
            .split_inclusive('\n')
            .filter(|l| !(l.starts_with("In file included from ") && l.contains(&unit)))
            .collect();
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Ok(Err(super::isolate::signal_meaning("clang", signal)));
        }
        Ok(Err(if err.trim().is_empty() { format!("clang failed ({status})") } else { err }))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Write `text` into the FIFO at `path` once clang opens it, unless clang ends first (then its error
/// file says why).
fn feed(path: &Path, text: &str, child: &mut Child) -> Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("checked when the FIFO was made");
    let fd = loop {
        // SAFETY: c_path is a valid path. Non-blocking, opening a FIFO for writing fails (ENXIO)
        // until a reader has it open, instead of waiting for a reader that may never come.
        let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if fd >= 0 {
            break fd;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENXIO) {
            return Err(Error::io("opening the program's FIFO", err));
        }
        if child.try_wait().map_err(|e| Error::io("checking on clang", e))?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_micros(300));
    };
    // SAFETY: fd is the FIFO just opened and owned here; it goes back to blocking writes (clang reads
    // it to the end), and is closed on every path below.
    let mut file = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
    };
    let written = without_sigpipe(|| std::io::Write::write_all(&mut file, text.as_bytes()));
    // clang opens the program a second time, after the parse: the BPF backend reads its lines into the
    // object's line info (what the verifier log quotes). A regular file takes the FIFO's place before
    // the FIFO ends (the writer is closed), so clang cannot have reached that second open yet.
    let regular = path.with_extension("regular");
    let replaced = fs::write(&regular, text).and_then(|()| fs::rename(&regular, path));
    drop(file);
    replaced.map_err(|e| Error::io("writing the program for clang", e))?;
    match written {
        // clang stopped reading (it failed): its error file says why
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("writing the program to clang", e)),
        Ok(()) => Ok(()),
    }
}

/// Run `f` with SIGPIPE blocked in this thread, dropping one it raised: a clang that dies mid-read
/// must give this write EPIPE, not kill a process that does not ignore SIGPIPE.
fn without_sigpipe<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: the signal sets are initialised by sigemptyset before use; the mask is this thread's and
    // is restored before returning; sigtimedwait with a zero timeout only takes a pending SIGPIPE.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let was_blocked =
            libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old) == 0 && libc::sigismember(&old, libc::SIGPIPE) == 1;
        let out = f();
        if !was_blocked {
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            while libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero) == libc::SIGPIPE {}
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
        out
    }
}
