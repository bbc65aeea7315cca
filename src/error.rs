//! The one error type of the core (src/py/errors.rs maps it onto `rbcc.errors`). The variants a user
//! acts on carry what they would otherwise have to parse out of the message: the diagnostics of a
//! compile, the verifier's log, the missing feature, the probe that would not attach.

/// What the compiler said about one place in the user's program, at the user's own file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    /// None where the compiler names only the line (clang's BPF backend).
    pub column: Option<u32>,
    /// clang's word for it: "error", "fatal error", "warning", "note".
    pub severity: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// clang or the rewriter rejected the program; the message holds the diagnostics at the user's
    /// lines (and hints), `diagnostics` the same as records (empty where no line is to blame).
    #[error("{message}")]
    Compile { message: String, diagnostics: Vec<Diagnostic> },
    /// The verifier rejected a program; the message ends with the verifier's `log`, which names the
    /// instruction it stopped at (`insn`) when it got that far.
    #[error("{message}")]
    Verifier { message: String, log: String, insn: Option<u32> },
    /// A probe would not attach; `target` names it as "<kind> <where>" ("tracepoint sched:sched_switch",
    /// "uprobe /usr/lib/libc.so.6:malloc") or the file whose probes could not be read.
    #[error("{message}")]
    Attach { target: String, message: String },
    /// The running kernel lacks `feature` (kprobes, fentry, ...); `alternative` says what to use
    /// instead, where something can be. The message says both. `target` is the probe that could not
    /// attach for want of it, as `Attach`'s, empty where no attach was being made.
    #[error("{message}")]
    KernelFeature { feature: String, alternative: String, target: String, message: String },
    #[error("{0}")]
    Permission(String),
    /// The clang binary and libclang found (or named by RBCC_CLANG and LIBCLANG_PATH) cannot be used
    /// together: their LLVM versions differ, or one is outside the supported range, or none is
    /// installed. `clang` and `libclang` name each as "path (LLVM N)", empty when not found.
    #[error("{message}")]
    Toolchain { clang: String, libclang: String, message: String },
    /// Something rbcc itself needs is missing or broken (libclang, clang, the cache directory).
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Libbpf {
        context: String,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("{0}")]
    Lookup(String),
    /// The object cannot be set up as declared (an extern map nobody exports, ...).
    #[error("{0}")]
    Load(String),
    /// An argument the caller gave is refused (a cflag that is not accepted, ...): a ValueError.
    #[error("{0}")]
    InvalidArgument(String),
    /// The object is in use in a way that excludes this call (a buffer drained from its own callback).
    #[error("{0}")]
    Busy(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A compile error no line of the program is to blame for.
    pub fn compile(message: impl Into<String>) -> Self {
        Error::Compile { message: message.into(), diagnostics: Vec::new() }
    }

    /// A compile error at `line` (and `column`) of the user's `file`, the message saying where as clang
    /// does, without the column: "file:line: error: what".
    pub fn compile_at(file: &str, line: u32, column: Option<u32>, what: &str) -> Self {
        let message = format!("{file}:{line}: error: {what}");
        let diagnostic = Diagnostic { file: file.into(), line, column, severity: "error".into(), message: what.into() };
        Error::Compile { message, diagnostics: vec![diagnostic] }
    }

    pub fn attach(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Attach { target: target.into(), message: message.into() }
    }

    pub fn kernel_feature(
        feature: impl Into<String>,
        alternative: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (feature, alternative, message) = (feature.into(), alternative.into(), message.into());
        Error::KernelFeature { feature, alternative, target: String::new(), message }
    }

    /// This error, naming `target` as the probe that could not attach (see `Attach`).
    pub fn at_target(self, target: impl Into<String>) -> Self {
        match self {
            Error::Attach { message, .. } => Error::Attach { target: target.into(), message },
            Error::KernelFeature { feature, alternative, message, .. } => {
                Error::KernelFeature { feature, alternative, target: target.into(), message }
            }
            other => other,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub fn libbpf(context: impl Into<String>, source: libbpf_rs::Error) -> Self {
        Error::Libbpf { context: context.into(), source }
    }
}

impl Error {
    /// Whether the process lacked a privilege (a PermissionError in Python): said so, or an errno
    /// that says so.
    pub fn is_permission(&self) -> bool {
        match self {
            Error::Permission(_) => true,
            Error::Io { source, .. } => is_eperm(source.raw_os_error()),
            Error::Libbpf { source, .. } => is_eperm(libbpf_errno(source)),
            _ => false,
        }
    }
}

fn is_eperm(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::EPERM) | Some(libc::EACCES))
}

/// The errno behind a libbpf-rs error, when it carries one.
pub fn libbpf_errno(e: &libbpf_rs::Error) -> Option<i32> {
    let kind = e.kind();
    match kind {
        libbpf_rs::ErrorKind::PermissionDenied => Some(libc::EPERM),
        libbpf_rs::ErrorKind::NotFound => Some(libc::ENOENT),
        libbpf_rs::ErrorKind::InvalidInput => Some(libc::EINVAL),
        libbpf_rs::ErrorKind::Unsupported => Some(libc::EOPNOTSUPP),
        _ => None,
    }
}
