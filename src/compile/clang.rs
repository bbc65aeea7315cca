//! libclang, loaded at run time: parse the bcc dialect and copy what the rewriter needs out of the AST
#![allow(non_upper_case_globals)] // libclang constants keep their C names
//! into plain Rust data (`Node`), so the rewriter itself never touches libclang.
//!
//! libclang is loaded for one parse, in a forked child (see isolate.rs): LLVM cannot be unloaded.

use std::ffi::{c_uint, c_void, CStr, CString};
use std::ptr;

use clang_sys::*;

use crate::error::{Error, Result};

/// A cursor of the AST with the facts the rewriter uses, and its children.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub kind: CXCursorKind,
    pub name: String,
    /// Byte range in the main file; meaningful when `in_main`.
    pub start: usize,
    pub end: usize,
    /// Both ends are spelled in the main file, in order: the range can be edited.
    pub in_main: bool,
    /// The node's text was produced by a macro expansion (its expansion point differs from its spelling).
    pub from_macro: bool,
    /// Where the expansion that produced this node starts (the macro name), in the main file.
    pub expansion_start: Option<usize>,
    pub ty: TypeInfo,
    /// Identity of the declaration this node is or refers to (0 when none).
    pub decl: u32,
    pub referenced: u32,
    pub is_definition: bool,
    pub is_static: bool,
    pub annotation: Option<String>,
    /// For a unary operator: `"&"` or `"*"` when its operand's and its own types can only mean that
    /// operator, else `""`. It holds where the operator's token cannot be seen (spelled in a macro).
    pub unary_by_type: &'static str,
    /// For a struct-typed variable: its fields (name, type, array length or -1).
    pub fields: Vec<(String, TypeInfo)>,
    /// For a member access into a packet header struct (bcc's proto.h, marked `deprecated("packet")`):
    /// the field's bit offset in the struct and its width in bits, which the rewriter turns into a
    /// read or write of the packet in network order.
    pub packet_field: Option<(u64, u64)>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, Default)]
pub struct TypeInfo {
    pub spelling: String,
    pub kind: CXTypeKind,
    pub pointee: Option<Box<TypeInfo>>,
    pub array_len: i64,
    /// For a struct: its padding, as (offset, length) byte ranges (see `holes`).
    pub holes: Vec<(u64, u64)>,
    /// For a struct or union without a tag (a map's `struct { u64 a; }` value), filled in for a map's key
    /// and leaf: where its definition is spelled in the main file, since libclang names it by that place.
    pub anonymous_at: Option<(usize, usize)>,
}

impl TypeInfo {
    pub fn is_pointer(&self) -> bool {
        self.kind == CXType_Pointer
    }
    pub fn is_array(&self) -> bool {
        matches!(self.kind, CXType_ConstantArray | CXType_IncompleteArray | CXType_VariableArray)
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub error: bool,
    pub in_main: bool,
    pub line: u32,
    pub column: u32,
    pub file: String,
    pub message: String,
}

pub struct Parsed {
    pub root: Vec<Node>,
    pub tokens: Vec<Token>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Keeps libclang loaded for one parse; unloads it when dropped.
struct Loaded;

impl Loaded {
    fn new() -> Result<Self> {
        if !is_loaded() {
            point_clang_sys_at_libclang();
            load().map_err(|e| {
                Error::Setup(format!(
                    "cannot load libclang ({e}); install it (Debian: apt-get install libclang-dev) or set LIBCLANG_PATH"
                ))
            })?;
            // a libclang whose path did not tell its version says it now, before it parses anything
            // SAFETY: libclang is loaded (just above); the string is disposed of by cx_string.
            let banner = cx_string(unsafe { clang_getClangVersion() });
            if let Err(e) = super::toolchain::check_loaded_libclang(&banner) {
                let _ = unload();
                return Err(e);
            }
        }
        Ok(Loaded)
    }
}

/// Name the toolchain's libclang in `LIBCLANG_PATH`, where clang-sys looks first: otherwise it runs
/// `llvm-config` and searches a dozen directories (~40 ms) for a file already known.
fn point_clang_sys_at_libclang() {
    // checked(): the parent ran it before forking (a miss), so this reads what it found
    let Ok(super::toolchain::Toolchain { libclang: Some(lib), .. }) = super::toolchain::checked() else {
        return;
    };
    let Ok(value) = CString::new(lib.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: this runs in the forked parse child, which has one thread, so nothing reads the
    // environment concurrently; libc's setenv is used rather than std's set_var because std's
    // environment lock may have been held by another thread of the parent at the fork, and would
    // never be released here.
    unsafe {
        libc::setenv(c"LIBCLANG_PATH".as_ptr(), value.as_ptr(), 1);
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = unload();
    }
}

fn cx_string(s: CXString) -> String {
    // SAFETY: s is a CXString returned by libclang; it is read once and disposed of here.
    unsafe {
        let p = clang_getCString(s);
        let out = if p.is_null() { String::new() } else { CStr::from_ptr(p).to_string_lossy().into_owned() };
        clang_disposeString(s);
        out
    }
}

/// clang-sys (runtime loading) exposes libclang functions as plain Rust `unsafe fn`s.
type LocationGetter = unsafe fn(CXSourceLocation, *mut CXFile, *mut c_uint, *mut c_uint, *mut c_uint);

struct Walker {
    tu: CXTranslationUnit,
    main: CXFile,
    holes_of: std::cell::RefCell<std::collections::HashMap<u32, Vec<(u64, u64)>>>,
    /// Whether a record (by its cursor's hash) is a packet header struct.
    packet_records: std::cell::RefCell<std::collections::HashMap<u32, bool>>,
}

impl Walker {
    /// (file, offset) of a location's spelling, and whether it is in the main file.
    fn file_offset(&self, loc: CXSourceLocation) -> (bool, usize) {
        self.offset_by(clang_getFileLocation, loc)
    }

    fn expansion_offset(&self, loc: CXSourceLocation) -> (bool, usize) {
        self.offset_by(clang_getExpansionLocation, loc)
    }

    /// (in the main file?, byte offset) of `loc`, resolved by one of libclang's location getters.
    fn offset_by(&self, getter: LocationGetter, loc: CXSourceLocation) -> (bool, usize) {
        let mut file: CXFile = ptr::null_mut();
        let mut offset: c_uint = 0;
        // SAFETY: loc comes from this translation unit; out-pointers are valid locals.
        unsafe {
            getter(loc, &mut file, ptr::null_mut(), ptr::null_mut(), &mut offset);
            (!file.is_null() && clang_File_isEqual(file, self.main) != 0, offset as usize)
        }
    }

    /// A struct's padding, worked out once per type.
    fn holes(&self, canon: CXType) -> Vec<(u64, u64)> {
        // SAFETY: canon is a type of this translation unit.
        let id = unsafe { clang_hashCursor(clang_getTypeDeclaration(canon)) };
        self.holes_of.borrow_mut().entry(id).or_insert_with(|| super::holes::holes(canon)).clone()
    }

    fn type_info(&self, t: CXType, depth: u32) -> TypeInfo {
        // SAFETY: t is a type from this translation unit.
        unsafe {
            let canon = clang_getCanonicalType(t);
            let mut info = TypeInfo {
                spelling: cx_string(clang_getTypeSpelling(t)),
                kind: canon.kind,
                pointee: None,
                array_len: -1,
                holes: Vec::new(),
                anonymous_at: None,
            };
            if canon.kind == CXType_Pointer && depth < 2 {
                info.pointee = Some(Box::new(self.type_info(clang_getPointeeType(t), depth + 1)));
            }
            if info.is_array() {
                info.array_len = clang_getArraySize(canon);
            }
            info
        }
    }

    fn node(&self, c: CXCursor) -> Node {
        // SAFETY: c is a live cursor of this translation unit for the whole call.
        unsafe {
            let extent = clang_getCursorExtent(c);
            let (s_main, start) = self.file_offset(clang_getRangeStart(extent));
            let (e_main, end) = self.file_offset(clang_getRangeEnd(extent));
            let (x_main, xstart) = self.expansion_offset(clang_getRangeStart(extent));
            let kind = clang_getCursorKind(c);
            let referenced = clang_getCursorReferenced(c);
            let mut node = Node {
                kind,
                name: cx_string(clang_getCursorSpelling(c)),
                start,
                end,
                in_main: s_main && e_main && start <= end,
                from_macro: !(x_main && s_main && xstart == start),
                expansion_start: x_main.then_some(xstart),
                ty: self.type_info(clang_getCursorType(c), 0),
                decl: clang_hashCursor(clang_getCanonicalCursor(c)),
                referenced: if clang_Cursor_isNull(referenced) != 0 {
                    0
                } else {
                    clang_hashCursor(clang_getCanonicalCursor(referenced))
                },
                is_definition: clang_isCursorDefinition(c) != 0,
                is_static: clang_Cursor_getStorageClass(c) == CX_SC_Static,
                ..Node::default()
            };
            if kind == CXCursor_UnaryOperator {
                node.unary_by_type = unary_by_type(c);
            }
            // Only a variable named as a map key has its padding zeroed (rewrite::method_call). Working
            // it out for every struct-typed node walked each nested struct again and again: quadratic.
            if kind == CXCursor_DeclRefExpr {
                let canon = clang_getCanonicalType(clang_getCursorType(c));
                if canon.kind == CXType_Record {
                    node.ty.holes = self.holes(canon);
                }
            }
            if kind == CXCursor_MemberRefExpr && clang_Cursor_isNull(referenced) == 0 {
                node.packet_field = self.packet_field(referenced);
            }
            if kind == CXCursor_VarDecl && node.ty.spelling.contains("__rbcc_map_") {
                node.fields = self.fields(clang_getCursorType(c));
            }
            let mut children: Vec<Node> = Vec::new();
            let data = (self as *const Walker, &mut children as *mut Vec<Node>);
            clang_visitChildren(c, visit_child, &data as *const _ as *mut c_void);
            for child in &children {
                if child.kind == CXCursor_AnnotateAttr {
                    node.annotation = Some(child.name.clone());
                }
            }
            node.children = children;
            node
        }
    }

    /// (bit offset, bit width) of `field` when it belongs to a packet header struct: one whose
    /// definition carries bcc's `deprecated("packet")` mark (BPF_PACKET_HEADER).
    fn packet_field(&self, field: CXCursor) -> Option<(u64, u64)> {
        // SAFETY: field is a live cursor of this translation unit; the CXStrings libclang fills in are
        // disposed of by cx_string.
        unsafe {
            if clang_getCursorKind(field) != CXCursor_FieldDecl {
                return None;
            }
            let record = clang_getCursorSemanticParent(field);
            let id = clang_hashCursor(clang_getCanonicalCursor(record));
            let packet = *self.packet_records.borrow_mut().entry(id).or_insert_with(|| {
                let (mut deprecated, mut unavailable) = (0, 0);
                let mut message = std::mem::zeroed::<CXString>();
                let mut unavailable_message = std::mem::zeroed::<CXString>();
                clang_getCursorPlatformAvailability(
                    clang_getCursorDefinition(record),
                    &mut deprecated,
                    &mut message,
                    &mut unavailable,
                    &mut unavailable_message,
                    ptr::null_mut(),
                    0,
                );
                let _ = cx_string(unavailable_message);
                deprecated != 0 && cx_string(message) == "packet"
            });
            if !packet {
                return None;
            }
            let offset = clang_Cursor_getOffsetOfField(field);
            let width = match clang_getFieldDeclBitWidth(field) {
                w if w > 0 => w as i64,
                _ => clang_Type_getSizeOf(clang_getCursorType(field)) * 8,
            };
            (offset >= 0 && width > 0).then_some((offset as u64, width as u64))
        }
    }

    /// Where the definition of an untagged struct or union type is spelled in the main file.
    fn anonymous_definition(&self, t: CXType) -> Option<(usize, usize)> {
        // SAFETY: t is a type of this translation unit.
        unsafe {
            let canon = clang_getCanonicalType(t);
            if canon.kind != CXType_Record {
                return None;
            }
            let decl = clang_getTypeDeclaration(canon);
            if clang_Cursor_isAnonymous(decl) == 0 {
                return None;
            }
            let extent = clang_getCursorExtent(decl);
            let (s_main, start) = self.file_offset(clang_getRangeStart(extent));
            let (e_main, end) = self.file_offset(clang_getRangeEnd(extent));
            (s_main && e_main && start < end).then_some((start, end))
        }
    }

    fn fields(&self, t: CXType) -> Vec<(String, TypeInfo)> {
        let mut out: Vec<(String, TypeInfo)> = Vec::new();
        let data = (self as *const Walker, &mut out as *mut Vec<(String, TypeInfo)>);
        // SAFETY: the visitor only runs during this call, while `data` is alive.
        unsafe {
            clang_Type_visitFields(t, visit_field, &data as *const _ as *mut c_void);
        }
        out
    }
}

/// `&x` has type pointer-to-typeof(x), `*p` has typeof(*p); no other unary operator relates the two
/// types like either, except `!p` on an `int *` (an `int`, as `*p` would be), which is left undecided.
fn unary_by_type(c: CXCursor) -> &'static str {
    let mut operand: Option<CXCursor> = None;
    // SAFETY: c is a live cursor; the visitor writes the first child into `operand`, alive during the call.
    unsafe {
        clang_visitChildren(c, first_child, &mut operand as *mut Option<CXCursor> as *mut c_void);
        let Some(operand) = operand else {
            return "";
        };
        let own = clang_getCanonicalType(clang_getCursorType(c));
        let inner = clang_getCanonicalType(clang_getCursorType(operand));
        let pointee = |t: CXType| clang_getCanonicalType(clang_getPointeeType(t));
        if own.kind == CXType_Pointer && clang_equalTypes(pointee(own), inner) != 0 {
            "&"
        } else if inner.kind == CXType_Pointer && clang_equalTypes(pointee(inner), own) != 0 && own.kind != CXType_Int {
            "*"
        } else {
            ""
        }
    }
}

extern "C" fn first_child(c: CXCursor, _parent: CXCursor, data: CXClientData) -> CXChildVisitResult {
    // SAFETY: data is the Option<CXCursor> of unary_by_type, alive during the visit.
    unsafe {
        *(data as *mut Option<CXCursor>) = Some(c);
    }
    CXChildVisit_Break
}

extern "C" fn visit_child(c: CXCursor, _parent: CXCursor, data: CXClientData) -> CXChildVisitResult {
    // SAFETY: data is the (walker, children) pair built in Walker::node, alive during the visit.
    unsafe {
        let (walker, children) = *(data as *const (*const Walker, *mut Vec<Node>));
        (*children).push((*walker).node(c));
    }
    CXChildVisit_Continue
}

extern "C" fn visit_field(c: CXCursor, data: CXClientData) -> CXVisitorResult {
    // SAFETY: data is the (walker, fields) pair built in Walker::fields, alive during the visit.
    unsafe {
        let (walker, fields) = *(data as *const (*const Walker, *mut Vec<(String, TypeInfo)>));
        let name = cx_string(clang_getCursorSpelling(c));
        let mut ty = (*walker).type_info(clang_getCursorType(c), 0);
        if name == "key" || name == "leaf" {
            ty.anonymous_at = (*walker).anonymous_definition(clang_getCursorType(c));
        }
        (*fields).push((name, ty));
    }
    CXVisit_Continue
}

/// Parse `source` (the main file, named `filename`) with `args`, and copy out the main file's AST.
pub fn parse(filename: &str, source: &str, args: &[String]) -> Result<Parsed> {
    let _loaded = Loaded::new()?;
    let c_filename = CString::new(filename).map_err(|_| Error::compile("file name contains NUL"))?;
    let c_source = CString::new(source).map_err(|_| Error::compile("program text contains a NUL byte"))?;
    // cflags::check refused the user's flags with a NUL before; this covers the ones rbcc adds too
    let c_args = args
        .iter()
        .map(|a| {
            CString::new(a.as_str())
                .map_err(|_| Error::InvalidArgument(format!("cflag {a:?} is not accepted: it holds a NUL byte")))
        })
        .collect::<Result<Vec<CString>>>()?;
    let arg_ptrs: Vec<*const i8> = c_args.iter().map(|a| a.as_ptr()).collect();
    let mut unsaved =
        CXUnsavedFile { Filename: c_filename.as_ptr(), Contents: c_source.as_ptr(), Length: source.len() as _ };
    // SAFETY: every pointer handed to libclang points into locals that outlive the translation unit,
    // which is disposed of (with the index) before returning.
    unsafe {
        // Only the program's own declarations: the rewriter edits the main file alone, and visiting the
        // PCH's (all of vmlinux.h) would deserialize every one of them (~50 ms) to be skipped.
        let index = clang_createIndex(1, 0);
        let mut tu: CXTranslationUnit = ptr::null_mut();
        let rc = clang_parseTranslationUnit2(
            index,
            c_filename.as_ptr(),
            arg_ptrs.as_ptr(),
            arg_ptrs.len() as i32,
            &mut unsaved,
            1,
            CXTranslationUnit_DetailedPreprocessingRecord | CXTranslationUnit_KeepGoing,
            &mut tu,
        );
        if rc != CXError_Success || tu.is_null() {
            clang_disposeIndex(index);
            if rc == CXError_ASTReadError {
                return Err(Error::compile("libclang could not read the precompiled header it was given"));
            }
            return Err(Error::compile(format!("libclang could not parse the program (error {rc})")));
        }
        let main = clang_getFile(tu, c_filename.as_ptr());
        let walker = Walker { tu, main, holes_of: Default::default(), packet_records: Default::default() };
        let diagnostics = diagnostics(&walker);
        let root = if diagnostics.iter().any(|d| d.error) { Vec::new() } else { top_level(&walker) };
        let tokens = tokens(&walker, source.len());
        clang_disposeTranslationUnit(tu);
        clang_disposeIndex(index);
        Ok(Parsed { root, tokens, diagnostics })
    }
}

/// The top-level cursors spelled or expanded in the main file.
fn top_level(w: &Walker) -> Vec<Node> {
    let mut out = Vec::new();
    // SAFETY: the translation unit is alive; the visitor runs only during this call.
    unsafe {
        let cursor = clang_getTranslationUnitCursor(w.tu);
        let data = (w as *const Walker, &mut out as *mut Vec<Node>);
        clang_visitChildren(cursor, visit_top, &data as *const _ as *mut c_void);
    }
    out
}

extern "C" fn visit_top(c: CXCursor, _parent: CXCursor, data: CXClientData) -> CXChildVisitResult {
    // SAFETY: data is the (walker, out) pair from top_level, alive during the visit.
    unsafe {
        let (walker, out) = *(data as *const (*const Walker, *mut Vec<Node>));
        let loc = clang_getCursorLocation(c);
        let (main, _) = (*walker).expansion_offset(loc);
        if main {
            (*out).push((*walker).node(c));
        }
    }
    CXChildVisit_Continue
}

fn tokens(w: &Walker, len: usize) -> Vec<Token> {
    let mut out = Vec::new();
    // SAFETY: the range lies in the main file of a live translation unit; tokens are disposed of.
    unsafe {
        let begin = clang_getLocationForOffset(w.tu, w.main, 0);
        let end = clang_getLocationForOffset(w.tu, w.main, len as c_uint);
        let range = clang_getRange(begin, end);
        let mut toks: *mut CXToken = ptr::null_mut();
        let mut n: c_uint = 0;
        clang_tokenize(w.tu, range, &mut toks, &mut n);
        for i in 0..n as usize {
            let t = *toks.add(i);
            let extent = clang_getTokenExtent(w.tu, t);
            let (_, start) = w.file_offset(clang_getRangeStart(extent));
            let (_, end) = w.file_offset(clang_getRangeEnd(extent));
            out.push(Token { start, end, text: cx_string(clang_getTokenSpelling(w.tu, t)) });
        }
        if !toks.is_null() {
            clang_disposeTokens(w.tu, toks, n);
        }
    }
    out
}

fn diagnostics(w: &Walker) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // SAFETY: diagnostics belong to the live translation unit and are disposed of after reading.
    unsafe {
        for i in 0..clang_getNumDiagnostics(w.tu) {
            let d = clang_getDiagnostic(w.tu, i);
            let severity = clang_getDiagnosticSeverity(d);
            if severity >= CXDiagnostic_Warning {
                let loc = clang_getDiagnosticLocation(d);
                let mut file: CXFile = ptr::null_mut();
                let (mut line, mut column) = (0, 0);
                clang_getFileLocation(loc, &mut file, &mut line, &mut column, ptr::null_mut());
                let in_main = !file.is_null() && clang_File_isEqual(file, w.main) != 0;
                let file_name = if file.is_null() { String::new() } else { cx_string(clang_getFileName(file)) };
                out.push(Diagnostic {
                    error: severity >= CXDiagnostic_Error,
                    in_main,
                    line,
                    column,
                    file: file_name,
                    message: cx_string(clang_getDiagnosticSpelling(d)),
                });
            }
            clang_disposeDiagnostic(d);
        }
    }
    out
}
