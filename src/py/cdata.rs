//! ctypes objects made straight from a batch buffer: what `Type.from_buffer_copy(data, offset)` does
//! for each entry, without a Python call (and its argument parsing) per entry.
//!
//! A table read returns bcc's types (a `c_uint` key, a Structure value, ...), so a 100k-entry map
//! means 200k ctypes objects. Each is made as from_buffer_copy makes it, by the type's own `tp_new`
//! (a zeroed instance that owns its memory, no `__init__`), then filled through the buffer protocol,
//! which hands out the instance's memory and its size.

use std::os::raw::c_void;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

/// The buffer protocol, declared here: the core is built for the stable ABI of CPython 3.10 (one wheel
/// for 3.10 and later), whose headers leave it out; it joined the stable ABI in 3.11 unchanged, and
/// every CPython 3 exports these functions with this struct's layout (PEP 3118), which 3.11 froze.
mod buffer {
    use pyo3::ffi::{PyObject, Py_ssize_t};
    use std::os::raw::{c_char, c_int, c_void};

    pub const PYBUF_WRITABLE: c_int = 0x0001;

    #[repr(C)]
    pub struct PyBuffer {
        pub buf: *mut c_void,
        pub obj: *mut PyObject,
        pub len: Py_ssize_t,
        pub itemsize: Py_ssize_t,
        pub readonly: c_int,
        pub ndim: c_int,
        pub format: *mut c_char,
        pub shape: *mut Py_ssize_t,
        pub strides: *mut Py_ssize_t,
        pub suboffsets: *mut Py_ssize_t,
        pub internal: *mut c_void,
    }

    extern "C" {
        pub fn PyObject_GetBuffer(obj: *mut PyObject, view: *mut PyBuffer, flags: c_int) -> c_int;
        pub fn PyBuffer_Release(view: *mut PyBuffer);
    }
}

/// Where each object's bytes are in a batch buffer, as Python passes it: `(stride, part_size, parts,
/// part_stride)`. Entry i starts at `i * stride`; it is `parts` pieces of `part_size` bytes,
/// `part_stride` apart (a per-CPU value: one piece per CPU, each 8-byte aligned in the buffer), laid
/// end to end in the object, whose bytes past them stay zero.
#[derive(Clone, Copy)]
struct Layout {
    stride: usize,
    part_size: usize,
    parts: usize,
    part_stride: usize,
}

impl Layout {
    fn new((stride, part_size, parts, part_stride): (usize, usize, usize, usize)) -> PyResult<Self> {
        let end = parts.checked_sub(1).and_then(|p| p.checked_mul(part_stride)).and_then(|s| s.checked_add(part_size));
        if stride == 0 || end.is_none_or(|end| end > stride) {
            return Err(PyValueError::new_err(format!(
                "{parts} pieces of {part_size} bytes, {part_stride} apart, do not fit entries of {stride} bytes"
            )));
        }
        Ok(Layout { stride, part_size, parts, part_stride })
    }

    /// The number of whole entries in `len` bytes.
    fn entries(&self, len: usize) -> usize {
        len / self.stride
    }
}

/// A ctypes class and its constructor slot, looked up once per call.
struct Maker<'py> {
    ctype: Bound<'py, PyType>,
    new: ffi::newfunc,
    empty: Bound<'py, PyTuple>,
}

impl<'py> Maker<'py> {
    fn new(ctype: &Bound<'py, PyType>) -> PyResult<Self> {
        let py = ctype.py();
        // SAFETY: ctype is a live type object; PyType_GetSlot only reads it (ctypes classes are heap
        // types, which it supports on every Python version).
        let slot = unsafe { ffi::PyType_GetSlot(ctype.as_type_ptr(), ffi::Py_tp_new) };
        if slot.is_null() {
            return Err(PyValueError::new_err(format!("{} cannot be instantiated", ctype.name()?)));
        }
        // SAFETY: the Py_tp_new slot holds a newfunc.
        let new = unsafe { std::mem::transmute::<*mut c_void, ffi::newfunc>(slot) };
        Ok(Maker { ctype: ctype.clone(), new, empty: PyTuple::empty(py) })
    }

    /// A new instance holding entry `index` of `data`, laid out as `layout` says.
    fn make(&self, data: &[u8], index: usize, layout: &Layout) -> PyResult<Bound<'py, PyAny>> {
        let py = self.ctype.py();
        // SAFETY: tp_new of the class with an empty argument tuple, as ctypes' from_buffer_copy makes
        // its instance; the result is a new reference or NULL with an exception set.
        let obj = unsafe {
            let raw = (self.new)(self.ctype.as_type_ptr(), self.empty.as_ptr(), std::ptr::null_mut());
            Bound::from_owned_ptr_or_err(py, raw)?
        };
        let mut view = std::mem::MaybeUninit::<buffer::PyBuffer>::uninit();
        // SAFETY: obj is live; on success the view describes its memory until released below.
        if unsafe { buffer::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), buffer::PYBUF_WRITABLE) } != 0 {
            return Err(PyErr::fetch(py));
        }
        // SAFETY: PyObject_GetBuffer succeeded, so the view is initialised.
        let mut view = unsafe { view.assume_init() };
        let size = view.len.max(0) as usize;
        let fits = size >= layout.parts * layout.part_size;
        if fits {
            let start = index * layout.stride;
            for part in 0..layout.parts {
                let from = start + part * layout.part_stride;
                let piece = &data[from..from + layout.part_size];
                // SAFETY: the view is the object's own writable memory of `size` bytes, within which
                // this piece's slot lies (checked above); `piece` is in a different allocation.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        piece.as_ptr(),
                        (view.buf as *mut u8).add(part * layout.part_size),
                        layout.part_size,
                    )
                };
            }
        }
        // SAFETY: releases the view taken above, once.
        unsafe { buffer::PyBuffer_Release(&mut view) };
        if !fits {
            return Err(PyValueError::new_err(format!(
                "{} is {size} bytes, too small for entries of {} bytes",
                self.ctype.name()?,
                layout.parts * layout.part_size
            )));
        }
        Ok(obj)
    }
}

/// Python's cyclic collector paused while a batch of objects is made. Fresh ctypes objects refer to
/// nothing, so a collection would find no garbage among them; but collections run every few hundred
/// allocations, and the later ones walk the growing result: for 200k objects that costs twice as much
/// as making them. The objects are tracked as usual, and collected as usual once the pause ends.
struct GcPaused(bool);

impl GcPaused {
    fn new(_py: Python<'_>) -> Self {
        // SAFETY: the GIL is held (the token proves it); PyGC_Disable returns the previous state.
        GcPaused(unsafe { ffi::PyGC_Disable() } != 0)
    }
}

impl Drop for GcPaused {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: made with the GIL held and dropped in the same scope, still holding it.
            unsafe { ffi::PyGC_Enable() };
        }
    }
}

/// Every entry of `data` as an instance of `ctype`, its bytes where `layout` says.
#[pyfunction]
pub fn cdata_list<'py>(
    ctype: &Bound<'py, PyType>,
    data: &[u8],
    layout: (usize, usize, usize, usize),
) -> PyResult<Bound<'py, PyList>> {
    let py = ctype.py();
    let layout = Layout::new(layout)?;
    let maker = Maker::new(ctype)?;
    let _paused = GcPaused::new(py);
    let objects =
        (0..layout.entries(data.len())).map(|i| maker.make(data, i, &layout)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, objects)
}

/// Every entry as a `(key, value)` pair of instances of `key_type` and `value_type`, made as
/// `cdata_list` makes each side, in one list.
#[pyfunction]
pub fn cdata_items<'py>(
    key_type: &Bound<'py, PyType>,
    keys: &[u8],
    key_layout: (usize, usize, usize, usize),
    value_type: &Bound<'py, PyType>,
    values: &[u8],
    value_layout: (usize, usize, usize, usize),
) -> PyResult<Bound<'py, PyList>> {
    let py = key_type.py();
    let (key_layout, value_layout) = (Layout::new(key_layout)?, Layout::new(value_layout)?);
    let count = key_layout.entries(keys.len());
    if value_layout.entries(values.len()) != count {
        let msg = format!("{count} keys but {} values in a batch", value_layout.entries(values.len()));
        return Err(PyValueError::new_err(msg));
    }
    let (key_maker, value_maker) = (Maker::new(key_type)?, Maker::new(value_type)?);
    let _paused = GcPaused::new(py);
    let pairs = (0..count)
        .map(|i| {
            let key = key_maker.make(keys, i, &key_layout)?;
            let value = value_maker.make(values, i, &value_layout)?;
            PyTuple::new(py, [key, value])
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, pairs)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cdata_list, m)?)?;
    m.add_function(wrap_pyfunction!(cdata_items, m)?)
}
