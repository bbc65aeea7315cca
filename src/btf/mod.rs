//! BTF, read through libbpf: `Btf` views any `struct btf` (a loaded object's, to describe its maps' and
//! events' types; the running kernel's, through kernel::btf, to answer questions about its types).
//! describe.rs turns one of its types into plain data, from which rbcc.types builds ctypes.

mod describe;

pub use describe::{Member, TypeDesc};

use std::ffi::CStr;

const BTF_KIND_INT: u32 = 1;
const BTF_KIND_PTR: u32 = 2;
const BTF_KIND_ARRAY: u32 = 3;
const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_UNION: u32 = 5;
const BTF_KIND_ENUM: u32 = 6;
const BTF_KIND_FWD: u32 = 7;
const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_VOLATILE: u32 = 9;
const BTF_KIND_CONST: u32 = 10;
const BTF_KIND_RESTRICT: u32 = 11;
const BTF_KIND_FUNC: u32 = 12;
const BTF_KIND_FUNC_PROTO: u32 = 13;
const BTF_KIND_VAR: u32 = 14;
const BTF_KIND_FLOAT: u32 = 16;
const BTF_KIND_TYPE_TAG: u32 = 18;
const BTF_KIND_ENUM64: u32 = 19;

/// A borrowed view of a libbpf `struct btf`.
pub struct Btf {
    ptr: *const libbpf_sys::btf,
}

impl Btf {
    /// # Safety
    /// `ptr` must be a valid `struct btf` that outlives the returned value.
    pub unsafe fn from_raw(ptr: *const libbpf_sys::btf) -> Option<Self> {
        (!ptr.is_null()).then_some(Btf { ptr })
    }

    pub(super) fn ty(&self, id: u32) -> Option<&libbpf_sys::btf_type> {
        // SAFETY: libbpf returns NULL or a pointer into the btf's type data, which lives as long as self.
        unsafe { libbpf_sys::btf__type_by_id(self.ptr, id).as_ref() }
    }

    /// The string at `off` of this BTF's string section (a type's name, a line info's text).
    pub(crate) fn name(&self, off: u32) -> String {
        // SAFETY: the offset comes from this btf's own type records; libbpf bounds-checks it.
        unsafe {
            let p = libbpf_sys::btf__name_by_offset(self.ptr, off);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// The id of the type named `name` of BTF kind FUNC, if any.
    pub fn find_func(&self, name: &str) -> Option<u32> {
        self.find(name, BTF_KIND_FUNC)
    }

    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: valid btf and NUL-terminated name.
        let id = unsafe { libbpf_sys::btf__find_by_name_kind(self.ptr, c.as_ptr(), kind) };
        (id > 0).then_some(id as u32)
    }

    /// Whether this BTF defines struct `name` (or union `name`): a forward declaration does not count.
    pub fn defines_record(&self, name: &str, union: bool) -> bool {
        self.find(name, if union { BTF_KIND_UNION } else { BTF_KIND_STRUCT }).is_some()
    }

    /// Whether struct or union `name` has a member `field` (members of its anonymous members count).
    pub fn record_has_member(&self, name: &str, field: &str) -> bool {
        let id = self.find(name, BTF_KIND_STRUCT).or_else(|| self.find(name, BTF_KIND_UNION));
        id.is_some_and(|id| self.has_member(id, field, 0))
    }

    fn has_member(&self, id: u32, field: &str, depth: u32) -> bool {
        let Some(t) = self.ty(id) else { return false };
        if depth > 8 || !matches!(kind(t), BTF_KIND_STRUCT | BTF_KIND_UNION) {
            return false;
        }
        // SAFETY: a STRUCT/UNION is followed in memory by vlen btf_member records.
        let members = unsafe {
            std::slice::from_raw_parts(
                (t as *const libbpf_sys::btf_type).add(1) as *const libbpf_sys::btf_member,
                vlen(t) as usize,
            )
        };
        members.iter().any(|m| match m.name_off {
            0 => self.has_member(self.skip_mods(m.type_), field, depth + 1),
            off => self.name(off) == field,
        })
    }

    /// Whether enum `name` has an enumerator `value`.
    pub fn enum_has_value(&self, name: &str, value: &str) -> bool {
        self.enum_values(name).iter().any(|(n, _)| n == value)
    }

    /// The enumerators of enum `name`, as (name, value), in their order; empty when there is no such enum.
    pub fn enum_values(&self, name: &str) -> Vec<(String, i64)> {
        let found = self.find(name, BTF_KIND_ENUM).or_else(|| self.find(name, BTF_KIND_ENUM64));
        let Some(t) = found.and_then(|id| self.ty(id)) else { return Vec::new() };
        let wide = kind(t) == BTF_KIND_ENUM64;
        let stride = if wide { 3 } else { 2 };
        // SAFETY: an ENUM/ENUM64 is followed in memory by vlen entries of `stride` u32s.
        let words = unsafe {
            std::slice::from_raw_parts(
                (t as *const libbpf_sys::btf_type).add(1) as *const u32,
                vlen(t) as usize * stride,
            )
        };
        words
            .chunks(stride)
            .map(|e| {
                let value = if wide { ((e[2] as u64) << 32 | e[1] as u64) as i64 } else { e[1] as i32 as i64 };
                (self.name(e[0]), value)
            })
            .collect()
    }

    /// The type a libbpf-style map definition names with `__type(field, T)`: in the object, the map
    /// `map` is a VAR of a struct whose member `field` points to T.
    pub fn map_def_type(&self, map: &str, field: &str) -> Option<u32> {
        let var = self.ty(self.find(map, BTF_KIND_VAR)?)?;
        // SAFETY: a VAR keeps its type id in the union.
        let def = self.ty(self.skip_mods(unsafe { var.__bindgen_anon_1.type_ }))?;
        if kind(def) != BTF_KIND_STRUCT {
            return None;
        }
        // SAFETY: a STRUCT is followed in memory by vlen btf_member records.
        let members = unsafe {
            std::slice::from_raw_parts(
                (def as *const libbpf_sys::btf_type).add(1) as *const libbpf_sys::btf_member,
                vlen(def) as usize,
            )
        };
        let member = members.iter().find(|m| self.name(m.name_off) == field)?;
        let ptr = self.ty(self.skip_mods(member.type_))?;
        if kind(ptr) != BTF_KIND_PTR {
            return None;
        }
        // SAFETY: PTR's union holds the pointee id.
        Some(unsafe { ptr.__bindgen_anon_1.type_ })
    }

    /// How many arguments raw tracepoint `name` passes (`ctx->args[0..n]`): its `btf_trace_<name>`
    /// typedef is a pointer to a prototype whose first parameter is the tracepoint's own data.
    pub fn raw_tracepoint_arity(&self, name: &str) -> Option<u32> {
        let ptr = self.ty(self.skip_mods(self.find(&format!("btf_trace_{name}"), BTF_KIND_TYPEDEF)?))?;
        if kind(ptr) != BTF_KIND_PTR {
            return None;
        }
        // SAFETY: PTR's union holds the pointee id.
        let proto = self.ty(unsafe { ptr.__bindgen_anon_1.type_ })?;
        (kind(proto) == BTF_KIND_FUNC_PROTO).then(|| vlen(proto).saturating_sub(1))
    }

    /// For a FUNC, the type its first parameter points to.
    pub fn first_param_pointee(&self, func: u32) -> Option<u32> {
        let f = self.ty(func)?;
        // SAFETY: for FUNC and FUNC_PROTO the union holds a type id.
        let proto_id = unsafe { f.__bindgen_anon_1.type_ };
        let proto = self.ty(proto_id)?;
        if kind(proto) != BTF_KIND_FUNC_PROTO || vlen(proto) == 0 {
            return None;
        }
        // SAFETY: a FUNC_PROTO is followed in memory by vlen btf_param records.
        let param = unsafe { &*((proto as *const libbpf_sys::btf_type).add(1) as *const libbpf_sys::btf_param) };
        let ptr = self.ty(self.skip_mods(param.type_))?;
        if kind(ptr) != BTF_KIND_PTR {
            return None;
        }
        // SAFETY: PTR's union holds the pointee id.
        Some(unsafe { ptr.__bindgen_anon_1.type_ })
    }

    pub(super) fn skip_mods(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.ty(id) {
                Some(t)
                    if matches!(
                        kind(t),
                        BTF_KIND_TYPEDEF | BTF_KIND_VOLATILE | BTF_KIND_CONST | BTF_KIND_RESTRICT | BTF_KIND_TYPE_TAG
                    ) =>
                {
                    // SAFETY: these kinds keep the referenced type id in the union.
                    id = unsafe { t.__bindgen_anon_1.type_ };
                }
                _ => break,
            }
        }
        id
    }
}

fn kind(t: &libbpf_sys::btf_type) -> u32 {
    (t.info >> 24) & 0x1f
}

fn vlen(t: &libbpf_sys::btf_type) -> u32 {
    t.info & 0xffff
}
