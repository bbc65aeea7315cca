//! A BTF type of a loaded object as the plain dict rbcc.types builds ctypes from (the shape is
//! documented in _core.pyi, `TypeDesc`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::btf::TypeDesc;

pub fn type_desc<'py>(py: Python<'py>, desc: &TypeDesc) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match desc {
        TypeDesc::Int { name, size, signed } | TypeDesc::Enum { name, size, signed } => {
            d.set_item("kind", if matches!(desc, TypeDesc::Int { .. }) { "int" } else { "enum" })?;
            d.set_item("name", name)?;
            d.set_item("size", size)?;
            d.set_item("signed", signed)?;
        }
        TypeDesc::Float { name, size } => {
            d.set_item("kind", "float")?;
            d.set_item("name", name)?;
            d.set_item("size", size)?;
        }
        TypeDesc::Ptr => {
            d.set_item("kind", "ptr")?;
            d.set_item("size", 8)?;
        }
        TypeDesc::Void => {
            d.set_item("kind", "void")?;
            d.set_item("size", 0)?;
        }
        TypeDesc::Array { elem, len } => {
            d.set_item("kind", "array")?;
            d.set_item("elem", type_desc(py, elem)?)?;
            d.set_item("len", len)?;
        }
        TypeDesc::Record { union, name, size, members } => {
            d.set_item("kind", if *union { "union" } else { "struct" })?;
            d.set_item("name", name)?;
            d.set_item("size", size)?;
            let list = PyList::empty(py);
            for m in members {
                let md = PyDict::new(py);
                md.set_item("name", &m.name)?;
                md.set_item("offset", m.offset)?;
                md.set_item("bits", m.bits)?;
                md.set_item("bit_offset", m.bit_offset)?;
                md.set_item("type", type_desc(py, &m.ty)?)?;
                list.append(md)?;
            }
            d.set_item("members", list)?;
        }
    }
    Ok(d)
}
