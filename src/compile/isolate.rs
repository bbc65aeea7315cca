//! Parsing in a forked child, so libclang (which cannot be unloaded: LLVM marks itself NODELETE) is
//! only ever mapped into that short-lived child, never into the user's process.

use std::io::Read;
use std::os::fd::FromRawFd;

use super::rewrite::Rewritten;
use crate::error::{Error, Result};

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
                .unwrap_or_else(|_| Err(Error::Compile("the rewriter crashed (a bug in rbcc)".into())));
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
        Error::Compile(if libc::WIFSIGNALED(status) {
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

// Wire format: 'O' text \0 (map \t type \n)*   or   'E' kind-letter message.
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
        Err(e) => {
            out.push(b'E');
            out.push(if matches!(e, Error::Compile(_)) { b'C' } else { b'S' });
            out.extend_from_slice(e.to_string().as_bytes());
        }
    }
    out
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
            let (&kind, msg) = rest.split_first()?;
            let msg = String::from_utf8_lossy(msg).into_owned();
            Some(Err(if kind == b'C' { Error::Compile(msg) } else { Error::Setup(msg) }))
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
        let err = in_child(|| Err(Error::Compile("prog.c:3: error: nope".into()))).unwrap_err();
        assert!(matches!(err, Error::Compile(ref m) if m == "prog.c:3: error: nope"));
    }
}
