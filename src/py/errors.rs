//! `crate::error::Error` → the exception of rbcc.errors that carries it (ValueError for refused
//! arguments, KeyError for missing keys).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error::Error;

/// The name of the class in `rbcc.errors` that carries `err`.
fn class_name(err: &Error) -> &'static str {
    match err {
        e if e.is_permission() => "PermissionError",
        Error::Compile(_) => "CompileError",
        Error::Verifier(_) => "VerifierError",
        Error::Attach(_) => "AttachError",
        Error::KernelFeature(_) => "KernelFeatureError",
        Error::Lookup(_) => "KeyError",
        Error::InvalidArgument(_) => "ValueError",
        _ => "BPFError",
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let name = class_name(&err);
        let mut msg = err.to_string();
        if name == "PermissionError" && !msg.contains("CAP_") {
            msg.push_str(" (BPF needs root, or CAP_BPF with CAP_PERFMON for tracing and CAP_SYS_ADMIN for some maps)");
        }
        Python::attach(|py| {
            if name == "KeyError" {
                return pyo3::exceptions::PyKeyError::new_err(msg);
            }
            if name == "ValueError" {
                return pyo3::exceptions::PyValueError::new_err(msg);
            }
            let class = py.import("rbcc.errors").and_then(|m| m.getattr(name)).and_then(|c| c.call1((msg.clone(),)));
            match class {
                Ok(instance) => PyErr::from_value(instance),
                Err(_) => PyRuntimeError::new_err(msg),
            }
        })
    }
}
