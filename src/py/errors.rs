//! `crate::error::Error` → the exception of rbcc.errors that carries it, with its structured fields
//! (`CompileError.diagnostics`, `VerifierError.log`/`insn`, `AttachError.target`,
//! `KernelFeatureError.feature`/`alternative`, `ToolchainError.clang`/`libclang`); ValueError for refused arguments, KeyError for missing
//! keys. rbcc.errors stays the one hierarchy users import; the classes are bound here by type, and
//! checked once when the module loads, so a raise cannot fall back to something else.

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::error::Error;

pyo3::import_exception!(rbcc.errors, BPFError);
pyo3::import_exception!(rbcc.errors, CompileError);
pyo3::import_exception!(rbcc.errors, VerifierError);
pyo3::import_exception!(rbcc.errors, AttachError);
pyo3::import_exception!(rbcc.errors, KernelFeatureError);
pyo3::import_exception!(rbcc.errors, PermissionError);
pyo3::import_exception!(rbcc.errors, ToolchainError);

const CLASSES: [&str; 7] = [
    "BPFError",
    "CompileError",
    "VerifierError",
    "AttachError",
    "KernelFeatureError",
    "PermissionError",
    "ToolchainError",
];

/// What a user lacking privileges is told when the error itself names no capability.
const PRIVILEGES: &str = " (BPF needs root, or CAP_BPF with CAP_PERFMON for tracing and CAP_SYS_ADMIN for some maps)";

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        if err.is_permission() {
            let mut message = err.to_string();
            if !message.contains("CAP_") {
                message.push_str(PRIVILEGES);
            }
            return PermissionError::new_err(message);
        }
        match err {
            Error::Compile { message, diagnostics } => {
                let records: Vec<_> =
                    diagnostics.into_iter().map(|d| (d.file, d.line, d.column, d.severity, d.message)).collect();
                CompileError::new_err((message, records))
            }
            Error::Verifier { message, log, insn } => VerifierError::new_err((message, log, insn)),
            Error::Attach { target, message } => AttachError::new_err((message, target)),
            Error::KernelFeature { feature, alternative, target, message } => {
                KernelFeatureError::new_err((message, feature, alternative, target))
            }
            Error::Toolchain { clang, libclang, message } => ToolchainError::new_err((message, clang, libclang)),
            Error::Lookup(message) => PyKeyError::new_err(message),
            Error::InvalidArgument(message) => PyValueError::new_err(message),
            other => BPFError::new_err(other.to_string()),
        }
    }
}

/// Check that rbcc.errors has every class raised here, each an exception class: `import rbcc._core`
/// fails, naming what is missing, rather than a later raise.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let errors = m.py().import("rbcc.errors")?;
    for name in CLASSES {
        let class = errors.getattr(name)?;
        let is_exception =
            class.cast::<PyType>().is_ok_and(|t| t.is_subclass_of::<pyo3::exceptions::PyException>().unwrap_or(false));
        if !is_exception {
            return Err(pyo3::exceptions::PyImportError::new_err(format!(
                "rbcc.errors.{name} is not an exception class"
            )));
        }
    }
    Ok(())
}
