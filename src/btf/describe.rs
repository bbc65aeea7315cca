//! A type of a BPF object's BTF described as plain data, resolved through typedefs and qualifiers:
//! what the Python binding hands rbcc.types, which builds ctypes from it.

use super::{kind, vlen, Btf};
use super::{
    BTF_KIND_ARRAY, BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_FLOAT, BTF_KIND_FUNC_PROTO, BTF_KIND_FWD, BTF_KIND_INT,
    BTF_KIND_PTR, BTF_KIND_STRUCT, BTF_KIND_UNION,
};

/// A BTF type, resolved through typedefs and qualifiers where they do not change the layout.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDesc {
    Int { name: String, size: u32, signed: bool },
    Enum { name: String, size: u32, signed: bool },
    Float { name: String, size: u32 },
    Ptr,
    Void,
    Array { elem: Box<TypeDesc>, len: u32 },
    Record { union: bool, name: String, size: u32, members: Vec<Member> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub offset: u32,
    pub bits: u32,
    pub bit_offset: u32,
    pub ty: TypeDesc,
}

impl Btf {
    pub fn describe(&self, id: u32) -> TypeDesc {
        self.describe_depth(id, 0)
    }

    fn describe_depth(&self, id: u32, depth: u32) -> TypeDesc {
        if depth > 16 {
            return TypeDesc::Void;
        }
        // Keep the typedef's name for ints ("u32"), but lay out the underlying type.
        let named = self.ty(id).map(|t| self.name(t.name_off)).unwrap_or_default();
        let id = self.skip_mods(id);
        let Some(t) = self.ty(id) else {
            return TypeDesc::Void;
        };
        // SAFETY: for sized kinds (INT, STRUCT, UNION, ENUM, FLOAT) the union holds the size.
        let size = unsafe { t.__bindgen_anon_1.size };
        let own_name = self.name(t.name_off);
        match kind(t) {
            BTF_KIND_INT => {
                // SAFETY: an INT is followed by one u32 of encoding data.
                let enc = unsafe { *((t as *const libbpf_sys::btf_type).add(1) as *const u32) };
                let name = if named.is_empty() { own_name } else { named };
                TypeDesc::Int { name, size, signed: (enc >> 24) & 1 == 1 }
            }
            BTF_KIND_ENUM | BTF_KIND_ENUM64 => TypeDesc::Enum { name: own_name, size, signed: t.info >> 31 == 1 },
            BTF_KIND_FLOAT => TypeDesc::Float { name: own_name, size },
            BTF_KIND_PTR | BTF_KIND_FUNC_PROTO => TypeDesc::Ptr,
            BTF_KIND_ARRAY => {
                // SAFETY: an ARRAY is followed by one btf_array.
                let a = unsafe { &*((t as *const libbpf_sys::btf_type).add(1) as *const libbpf_sys::btf_array) };
                TypeDesc::Array { elem: Box::new(self.describe_depth(a.type_, depth + 1)), len: a.nelems }
            }
            BTF_KIND_STRUCT | BTF_KIND_UNION => {
                let kflag = t.info >> 31 == 1;
                let mut members = Vec::new();
                for i in 0..vlen(t) as usize {
                    // SAFETY: a STRUCT/UNION is followed by vlen btf_member records.
                    let m = unsafe {
                        &*((t as *const libbpf_sys::btf_type).add(1) as *const libbpf_sys::btf_member).add(i)
                    };
                    let (bit_offset, bits) = if kflag { (m.offset & 0xff_ffff, m.offset >> 24) } else { (m.offset, 0) };
                    let mut bits = bits;
                    if !kflag {
                        // Old-style bitfields keep the width in the INT's encoding.
                        if let Some(mt) = self.ty(self.skip_mods(m.type_)) {
                            if kind(mt) == BTF_KIND_INT {
                                // SAFETY: INT is followed by its encoding u32.
                                let enc = unsafe { *((mt as *const libbpf_sys::btf_type).add(1) as *const u32) };
                                // SAFETY: INT's union holds its size.
                                let width = enc & 0xff;
                                if width != unsafe { mt.__bindgen_anon_1.size } * 8 {
                                    bits = width;
                                }
                            }
                        }
                    }
                    let offset = if bits > 0 { 0 } else { bit_offset / 8 };
                    members.push(Member {
                        name: self.name(m.name_off),
                        offset,
                        bits,
                        bit_offset,
                        ty: self.describe_depth(m.type_, depth + 1),
                    });
                }
                TypeDesc::Record { union: kind(t) == BTF_KIND_UNION, name: own_name, size, members }
            }
            BTF_KIND_FWD => TypeDesc::Void,
            _ => TypeDesc::Void,
        }
    }
}
