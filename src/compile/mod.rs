//! bcc-dialect C → BPF object: include shim, libclang parse and rewrite, clang compile, cache.

pub mod cache;
pub mod clang;
pub mod decls;
pub mod driver;
pub mod headers;
pub mod isolate;
pub mod rewrite;
pub mod shim;

use std::fmt::Write as _;
use std::fs;

use crate::error::{Error, Result};
use crate::kernel::{btf, tracefs};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A hash of the rewriter's and headers' sources, set by build.rs: part of every cache key.
pub const COMPILER_ID: &str = env!("RBCC_COMPILER_ID");

/// A compiled program.
pub struct Output {
    pub object: Vec<u8>,
    /// The C that clang compiled (the user's program after rewriting).
    pub rewritten: String,
    pub cache_hit: bool,
}

/// Compile `text` (bcc-dialect BPF C) into a BPF object, or take it from the cache.
///
/// The cache key covers everything the object depends on: the program, the generated tracepoint
/// structs, the flags, the kernel's BTF, rbcc's headers and version. A hit neither loads libclang
/// nor runs clang.
pub fn compile(text: &str, cflags: &[String], filename: &str) -> Result<Output> {
    let prep = Prepared::new(text, cflags)?;
    let obj_dir = cache::subdir(&prep.root, &["obj", &prep.key[..2]])?;
    let obj_path = obj_dir.join(format!("{}.o", prep.key));
    let c_path = obj_dir.join(format!("{}.c", prep.key));
    if let (Ok(object), Ok(rewritten)) = (fs::read(&obj_path), fs::read_to_string(&c_path)) {
        return Ok(Output { object, rewritten, cache_hit: true });
    }
    let (object, rewritten) = prep.in_workdir(|work| {
        let (rewritten, flags) = prep.rewrite(work, filename)?;
        let main_path = work.join("main.c");
        fs::write(&main_path, &rewritten.text).map_err(|e| Error::io("writing the rewritten program", e))?;
        let obj_path = work.join("main.o");
        driver::compile(&main_path, &obj_path, &flags, filename)?;
        let object = fs::read(&obj_path).map_err(|e| Error::io("reading the compiled object", e))?;
        Ok((object, rewritten.text))
    })?;
    cache::write_atomic(&obj_path, &object)?;
    cache::write_atomic(&c_path, rewritten.as_bytes())?;
    Ok(Output { object, rewritten, cache_hit: false })
}

/// Only the rewrite step (no clang compile, no cache): what `BPF(debug=DEBUG_PREPROCESSOR)` shows.
pub fn rewrite_only(text: &str, cflags: &[String], filename: &str) -> Result<rewrite::Rewritten> {
    let prep = Prepared::new(text, cflags)?;
    prep.in_workdir(|work| Ok(prep.rewrite(work, filename)?.0))
}

/// A program made ready to parse: includes shimmed, tracepoint structs generated, cache key known.
struct Prepared {
    source: String,
    tp_header: String,
    cflags: Vec<String>,
    root: std::path::PathBuf,
    kernel_dir: std::path::PathBuf,
    include_dir: std::path::PathBuf,
    key: String,
}

impl Prepared {
    fn new(text: &str, cflags: &[String]) -> Result<Prepared> {
        let source = shim::shim_includes(text);
        let mut tp_header = String::from("/* tracepoint argument structs, from tracefs formats */\n");
        for (category, event) in shim::tracepoints(&source) {
            let fields = tracefs::tracepoint_fields(&category, &event)?;
            tp_header.push_str(&tracefs::tracepoint_struct(&category, &event, &fields));
        }
        let root = cache::root()?;
        let btf_hash = btf::btf_hash()?;
        let kernel_dir = cache::subdir(&root, &["kernel", btf_hash])?;
        let include_dir = headers::include_dir(&root)?;
        let flags_joined = cflags.join("\0");
        let key = cache::key(&[
            VERSION.as_bytes(),
            COMPILER_ID.as_bytes(),
            btf_hash.as_bytes(),
            headers::headers_hash().as_bytes(),
            source.as_bytes(),
            tp_header.as_bytes(),
            flags_joined.as_bytes(),
        ]);
        Ok(Prepared { source, tp_header, cflags: cflags.to_vec(), root, kernel_dir, include_dir, key })
    }

    /// Run `f` in a private scratch directory that is removed afterwards.
    fn in_workdir<T>(&self, f: impl FnOnce(&std::path::Path) -> Result<T>) -> Result<T> {
        let name = format!("{}-{}-{:?}", &self.key[..16], std::process::id(), std::thread::current().id());
        let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let work = cache::subdir(&self.root, &["work", &name])?;
        let out = f(&work);
        let _ = fs::remove_dir_all(&work);
        out
    }

    /// Parse with libclang and rewrite; returns the rewritten program and the flags to compile it with.
    fn rewrite(&self, work: &std::path::Path, filename: &str) -> Result<(rewrite::Rewritten, Vec<String>)> {
        btf::vmlinux_h(&self.kernel_dir)?;
        let tp_path = work.join("tracepoints.h");
        fs::write(&tp_path, &self.tp_header).map_err(|e| Error::io("writing tracepoints.h", e))?;
        let main_path = work.join("main.c");
        let mut flags = driver::common_flags(&self.kernel_dir, &self.include_dir, &tp_path);
        flags.extend(self.cflags.iter().cloned());
        let mut parse_flags = flags.clone();
        parse_flags.push("-D__RBCC_PARSE__".into());
        let rewritten = isolate::in_child(|| {
            let parsed = clang::parse(&main_path.display().to_string(), &self.source, &parse_flags)?;
            check_diagnostics(&parsed, &self.source, filename)?;
            rewrite::rewrite(filename, &self.source, &parsed)
        })?;
        Ok((rewritten, flags))
    }
}

/// Errors from the parse become a CompileError at the user's own lines.
fn check_diagnostics(parsed: &clang::Parsed, source: &str, filename: &str) -> Result<()> {
    let errors: Vec<_> = parsed.diagnostics.iter().filter(|d| d.error).collect();
    if errors.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for d in errors.iter().take(20) {
        let file = if d.in_main { filename } else { d.file.as_str() };
        let _ = writeln!(msg, "{file}:{}:{}: error: {}", d.line, d.column, d.message);
        if d.in_main {
            if let Some(line) = source.lines().nth(d.line.saturating_sub(1) as usize) {
                let _ = writeln!(msg, "    {}", line.trim_end());
            }
        }
    }
    Err(Error::Compile(msg.trim_end().to_string()))
}

#[cfg(test)]
mod tests;
