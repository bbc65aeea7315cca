//! The one error type of the core (src/py/errors.rs maps it onto `rbcc.errors`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// clang or the rewriter rejected the program; the text holds diagnostics at the user's lines.
    #[error("{0}")]
    Compile(String),
    /// The verifier rejected a program; the text ends with the verifier log.
    #[error("{0}")]
    Verifier(String),
    #[error("{0}")]
    Attach(String),
    /// The running kernel lacks something (kprobes, fentry, ...); the text names it and an alternative.
    #[error("{0}")]
    KernelFeature(String),
    #[error("{0}")]
    Permission(String),
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
