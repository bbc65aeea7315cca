//! Padding inside a struct: the bytes no member covers. A map key with padding that a program
//! never writes (`struct key_t k = {.pid = pid, .ts = ts};` leaves it as the stack found it) hashes
//! differently each time, so one logical key becomes many entries; the rewriter zeroes these bytes
//! before a map method reads the key (see `rewrite::Rewriter::method_call`).

use clang_sys::*;
use std::os::raw::{c_longlong, c_void};

/// Arrays of structs longer than this are taken as fully covered rather than walked element by element.
const MAX_ELEMENTS: i64 = 64;

/// The padding of `t` (a struct, or an array of them) as (offset, length) byte ranges, in order.
/// Unions, bit-fields and anything libclang cannot lay out count as covered.
pub fn holes(t: CXType) -> Vec<(u64, u64)> {
    // SAFETY: t is a type of a live translation unit (the caller's parse).
    let size = unsafe { clang_Type_getSizeOf(t) };
    if size <= 0 {
        return Vec::new();
    }
    let mut covered = Vec::new();
    occupied(t, 0, &mut covered);
    complement(&mut covered, size as u64)
}

/// Push the byte ranges of `t`, placed at `base`, that members occupy.
fn occupied(t: CXType, base: u64, out: &mut Vec<(u64, u64)>) {
    // SAFETY: t belongs to the live translation unit; the visitor's data outlives the visit.
    unsafe {
        let canon = clang_getCanonicalType(t);
        let size = clang_Type_getSizeOf(canon).max(0) as u64;
        let is_struct =
            canon.kind == CXType_Record && clang_getCursorKind(clang_getTypeDeclaration(canon)) == CXCursor_StructDecl;
        if is_struct {
            let mut data = (base, &mut *out as *mut Vec<(u64, u64)>);
            clang_Type_visitFields(canon, visit_field, &mut data as *mut _ as *mut c_void);
            return;
        }
        if canon.kind == CXType_ConstantArray {
            let elem = clang_getArrayElementType(canon);
            let n = clang_getArraySize(canon);
            let esize = clang_Type_getSizeOf(elem);
            if n <= MAX_ELEMENTS && esize > 0 && !holes(elem).is_empty() {
                for i in 0..n as u64 {
                    occupied(elem, base + i * esize as u64, out);
                }
                return;
            }
        }
        out.push((base, size));
    }
}

extern "C" fn visit_field(c: CXCursor, data: CXClientData) -> CXVisitorResult {
    // SAFETY: data is the (base, ranges) pair of `occupied`, alive during the visit; c is a field.
    unsafe {
        let (base, out) = *(data as *mut (u64, *mut Vec<(u64, u64)>));
        let bits: c_longlong = clang_Cursor_getOffsetOfField(c);
        if bits < 0 {
            return CXVisit_Continue;
        }
        let bits = bits as u64;
        if clang_Cursor_isBitField(c) != 0 {
            let width = clang_getFieldDeclBitWidth(c).max(0) as u64;
            let (first, end) = (bits / 8, (bits + width).div_ceil(8));
            (*out).push((base + first, end - first));
        } else {
            occupied(clang_getCursorType(c), base + bits / 8, &mut *out);
        }
    }
    CXVisit_Continue
}

/// The gaps in [0, size) that no range covers.
fn complement(ranges: &mut [(u64, u64)], size: u64) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut gaps = Vec::new();
    let mut at = 0;
    for &(start, len) in ranges.iter() {
        if start > at {
            gaps.push((at, start - at));
        }
        at = at.max(start + len);
    }
    if at < size {
        gaps.push((at, size - at));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::complement;

    #[test]
    fn gaps_between_overlapping_and_unordered_ranges() {
        assert_eq!(complement(&mut [(8, 8), (0, 4)], 24), vec![(4, 4), (16, 8)]);
        assert_eq!(complement(&mut [(0, 4), (2, 6)], 8), vec![]);
        assert_eq!(complement(&mut [], 3), vec![(0, 3)]);
    }
}
