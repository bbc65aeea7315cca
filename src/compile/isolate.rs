//! Parsing in a forked child, so libclang (which cannot be unloaded: LLVM marks itself NODELETE) is
//! only ever mapped into that short-lived child, never into the user's process.

use std::io::Read;
use std::os::fd::FromRawFd;

use super::rewrite::Rewritten;
use crate::error::{Diagnostic, Error, Result};

/// The address space a parse or compile may take, and its CPU time. vmlinux.h costs ~0.5 GiB and
/// under a second; what needs more is a program gone wrong (an include of a huge file, a macro
/// explosion), which should end in a clear error rather than fill the machine or never end.
pub const MEMORY_LIMIT: u64 = 4 << 30;
pub const CPU_SECONDS_LIMIT: u64 = 120;

/// Apply the limits to this process. Async-signal-safe (setrlimit only): it runs between fork and
/// exec too.
pub fn limit_resources() {
    for (resource, value) in [(libc::RLIMIT_AS, MEMORY_LIMIT), (libc::RLIMIT_CPU, CPU_SECONDS_LIMIT)] {
        let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
        // SAFETY: limit is a valid rlimit; lowering a limit cannot fail in a way that matters here.
        unsafe { libc::setrlimit(resource, &limit) };
    }
}

/// What a compile process's end by `signal` means for the user.
pub fn signal_meaning(what: &str, signal: i32) -> String {
    match signal {
        libc::SIGXCPU => format!("{what} took more than {CPU_SECONDS_LIMIT} s of CPU and was stopped"),
        libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS | libc::SIGKILL => format!(
            "{what} stopped (signal {signal}): it ran out of memory (its limit is {} GiB: does the program \
             include something huge?) or crashed",
            MEMORY_LIMIT >> 30
        ),
        _ => format!("{what} was stopped by signal {signal}"),
    }
}

/// Run `f` in a forked child and bring its result back over a pipe.
pub fn in_child(f: impl FnOnce() -> Result<Rewritten>) -> Result<Rewritten> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("creating a pipe for the parser", std::io::Error::last_os_error()));
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the child only runs Rust code that does not touch Python (no GIL, no interpreter state),
    // writes its answer to the pipe and leaves with _exit, never returning into the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        // SAFETY: both fds were just created and are owned here.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return Err(Error::io("forking the parser", err));
    }
    if pid == 0 {
        // SAFETY: in the child: close the read end, send the answer, exit without running destructors
        // or atexit handlers that belong to the parent's state. A parent killed mid-parse takes the
        // child with it (it would otherwise parse on, for nobody); should it have died before prctl,
        // the child is already orphaned and leaves at once.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::close(fds[0]);
            limit_resources();
            // libclang's own crash report (a stack dump) means nothing to the user; the parent says
            // what happened
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 2);
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(Error::compile("the rewriter crashed (a bug in rbcc)")));
            write_all(fds[1], &encode(&result));
            libc::_exit(0);
        }
    }
    // SAFETY: parent: the write end belongs to the child now; the read end becomes a File we own.
    let mut reader = unsafe {
        libc::close(fds[1]);
        std::fs::File::from_raw_fd(fds[0])
    };
    let mut bytes = Vec::new();
    let read = reader.read_to_end(&mut bytes);
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    read.map_err(|e| Error::io("reading the parser's answer", e))?;
    decode(&bytes).ok_or_else(|| {
        Error::compile(if libc::WIFSIGNALED(status) {
            signal_meaning("the parse", libc::WTERMSIG(status))
        } else {
            format!("the parser process failed (wait status {status})")
        })
    })?
}

fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: data is a valid slice; fd is the pipe's write end.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            return;
        }
        data = &data[n as usize..];
    }
}

// Wire format: 'O' text \0 (map \t type \n)*, or 'E' then an error: 'C' a compile error (its message and
// diagnostics), 'V' a refused argument's message, 'S' any other error's message. Strings and numbers
// in errors are length-prefixed or fixed-size (little-endian), so no text can break the framing.
fn encode(result: &Result<Rewritten>) -> Vec<u8> {
    let mut out = Vec::new();
    match result {
        Ok(r) => {
            out.push(b'O');
            out.extend_from_slice(r.text.as_bytes());
            out.push(0);
            for (map, ty) in &r.events {
                out.extend_from_slice(format!("{map}\t{ty}\n").as_bytes());
            }
        }
        Err(Error::Compile { message, diagnostics }) => {
            out.extend_from_slice(b"EC");
            put_str(&mut out, message);
            out.extend_from_slice(&(diagnostics.len() as u32).to_le_bytes());
            for d in diagnostics {
                put_str(&mut out, &d.file);
                out.extend_from_slice(&d.line.to_le_bytes());
                out.extend_from_slice(&d.column.map_or(-1, i64::from).to_le_bytes());
                put_str(&mut out, &d.severity);
                put_str(&mut out, &d.message);
            }
        }
        Err(Error::InvalidArgument(message)) => {
            out.extend_from_slice(b"EV");
            put_str(&mut out, message);
        }
        Err(e) => {
            out.extend_from_slice(b"ES");
            put_str(&mut out, &e.to_string());
        }
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads what `encode` wrote, front to back.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        Some(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
    fn diagnostic(&mut self) -> Option<Diagnostic> {
        let (file, line, column) = (self.string()?, self.u32()?, self.i64()?);
        let column = u32::try_from(column).ok();
        Some(Diagnostic { file, line, column, severity: self.string()?, message: self.string()? })
    }
}

fn decode(bytes: &[u8]) -> Option<Result<Rewritten>> {
    let (&tag, rest) = bytes.split_first()?;
    match tag {
        b'O' => {
            let nul = rest.iter().position(|&b| b == 0)?;
            let text = String::from_utf8_lossy(&rest[..nul]).into_owned();
            let events = String::from_utf8_lossy(&rest[nul + 1..])
                .lines()
                .filter_map(|l| l.split_once('\t').map(|(m, t)| (m.to_string(), t.to_string())))
                .collect();
            Some(Ok(Rewritten { text, events }))
        }
        b'E' => {
            let (&kind, rest) = rest.split_first()?;
            let mut r = Reader(rest);
            let message = r.string()?;
            Some(Err(match kind {
                b'C' => {
                    let count = r.u32()?;
                    let diagnostics = (0..count).map(|_| r.diagnostic()).collect::<Option<Vec<_>>>()?;
                    Error::Compile { message, diagnostics }
                }
                b'V' => Error::InvalidArgument(message),
                _ => Error::Setup(message),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_results() {
        let ok = in_child(|| Ok(Rewritten { text: "int x;\n".into(), events: vec![("ev".into(), "struct d".into())] }))
            .unwrap();
        assert_eq!(ok.text, "int x;\n");
        assert_eq!(ok.events, vec![("ev".to_string(), "struct d".to_string())]);
        let err = in_child(|| Err(Error::compile_at("prog.c", 3, Some(7), "nope"))).unwrap_err();
        let Error::Compile { message, diagnostics } = err else { panic!("{err:?}") };
        assert_eq!(message, "prog.c:3: error: nope");
        assert_eq!(
            diagnostics,
            [Diagnostic {
                file: "prog.c".into(),
                line: 3,
                column: Some(7),
                severity: "error".into(),
                message: "nope".into()
            }]
        );
        let err = in_child(|| Err(Error::InvalidArgument("cflag \"-DA=\\0\" is not accepted".into()))).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(ref m) if m.starts_with("cflag")), "{err:?}");
    }
}
