//! bcc-dialect C → BPF object: include shim, libclang parse and rewrite, clang compile, cache.

pub mod cache;
pub mod cflags;
pub mod clang;
pub mod decls;
pub mod driver;
pub mod headers;
pub mod hints;
pub mod holes;
pub mod isolate;
pub mod license;
pub mod llvm;
pub mod owntypes;
pub mod pch;
pub mod pending;
pub mod rewrite;
pub mod shim;
pub mod toolchain;
pub mod userheaders;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Diagnostic, Error, Result};
use crate::kernel::{btf, kconfig, tracefs, version};
use pch::Stage;

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
/// structs, the flags, the user's own headers, the file name, the kernel's BTF, rbcc's headers and
/// version, the toolchain. A hit neither loads libclang nor runs clang.
pub fn compile(text: &str, cflags: &[String], filename: &str) -> Result<Output> {
    let prep = Prepared::new(text, cflags, filename)?;
    let obj_dir = cache::subdir(&prep.root, &["obj", &prep.key[..2]])?;
    let entry_path = obj_dir.join(format!("{}.entry", prep.key));
    match cache::load(&entry_path) {
        cache::Found::Entry(e) => return Ok(Output { object: e.object, rewritten: e.rewritten, cache_hit: true }),
        cache::Found::Damaged(why) => {
            eprintln!("rbcc: discarding a damaged cache entry ({why}): {}; compiling again", entry_path.display());
            cache::discard(&entry_path);
        }
        cache::Found::Missing => {}
    }
    // a miss: refuse a mismatched clang and libclang here, before the parse child and clang start
    toolchain::checked()?;
    let _notice = (!prep.kernel_dir.join("vmlinux.h").exists()).then(|| {
        SlowNotice::after(
            Duration::from_secs(1),
            "rbcc: first compile on this kernel: its types are being read and cached (once)...",
        )
    });
    let (object, rewritten) = prep.in_workdir(|work| {
        prep.kernel_headers()?;
        // clang starts and reads the prelude while the parse child parses (see pending.rs)
        let compile = prep.start_compile(work, filename, None)?;
        let rewritten = prep.rewrite(work, filename)?;
        let object = prep.finish_compile(work, compile, &rewritten.text, filename)?;
        license::check(&object, &scratch_name(filename), filename)?;
        Ok((object, rewritten.text))
    })?;
    let entry = cache::Entry { object, rewritten };
    cache::store(&entry_path, &entry)?;
    Ok(Output { object: entry.object, rewritten: entry.rewritten, cache_hit: false })
}

/// A line on stderr should the work it guards take longer than a user waits without being told why.
/// Dropping it closes the channel, which wakes the thread before its delay and it prints nothing.
struct SlowNotice(#[allow(dead_code)] Option<mpsc::Sender<()>>);

impl SlowNotice {
    fn after(delay: Duration, message: &'static str) -> SlowNotice {
        let (done, wait) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("rbcc-notice".into()).spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(delay) {
                eprintln!("{message}");
            }
        });
        SlowNotice(spawned.is_ok().then_some(done))
    }
}

/// Only the rewrite step (no clang compile, no cache): what `BPF(debug=DEBUG_PREPROCESSOR)` shows.
pub fn rewrite_only(text: &str, cflags: &[String], filename: &str) -> Result<rewrite::Rewritten> {
    let prep = Prepared::new(text, cflags, filename)?;
    prep.in_workdir(|work| prep.rewrite(work, filename))
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
    fn new(text: &str, cflags: &[String], filename: &str) -> Result<Prepared> {
        cflags::check(cflags)?;
        let source = shim::shim_includes(text);
        let mut tp_header = shim::include_macros(text, cflags);
        tp_header.push_str("/* tracepoint argument structs, from tracefs formats */\n");
        for (category, event) in shim::tracepoints(&source) {
            let fields = tracefs::tracepoint_fields(&category, &event)?;
            tp_header.push_str(&tracefs::tracepoint_struct(&category, &event, &fields));
        }
        let root = cache::root()?;
        let btf_hash = cache::kernel_btf_hash(&root)?;
        let kernel_dir = cache::subdir(&root, &["kernel", &btf_hash])?;
        let include_dir = headers::include_dir(&root)?;
        let flags_joined = cflags.join("\0");
        let mut headers_read = Vec::new();
        for (path, text) in userheaders::user_headers(text, cflags, filename)? {
            headers_read.extend_from_slice(path.as_os_str().as_encoded_bytes());
            headers_read.push(0);
            headers_read.extend_from_slice(&(text.len() as u64).to_le_bytes());
            headers_read.extend_from_slice(&text);
        }
        // a kernel update can leave the BTF as it was and change only the version programs test
        let linux_version = version::linux_version_code().to_string();
        let key = cache::key(&[
            VERSION.as_bytes(),
            COMPILER_ID.as_bytes(),
            btf_hash.as_bytes(),
            linux_version.as_bytes(),
            headers::headers_hash().as_bytes(),
            toolchain::identity().as_bytes(),
            source.as_bytes(),
            tp_header.as_bytes(),
            flags_joined.as_bytes(),
            &headers_read,
            filename.as_bytes(), // the object's line info names it
        ]);
        Ok(Prepared { source, tp_header, cflags: cflags.to_vec(), root, kernel_dir, include_dir, key })
    }

    /// Run `f` in a private scratch directory, removed afterwards, that holds the program's own header
    /// (tracepoints.h: what goes between the prelude and the program) for every stage.
    fn in_workdir<T>(&self, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let name = format!("{}-{}-{:?}", &self.key[..16], std::process::id(), std::thread::current().id());
        let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        reap_abandoned(&self.root.join("work"));
        let work = cache::subdir(&self.root, &["work", &name])?;
        let out = fs::write(work.join("tracepoints.h"), &self.tp_header)
            .map_err(|e| Error::io("writing tracepoints.h", e))
            .and_then(|()| f(&work));
        let _ = fs::remove_dir_all(&work);
        out
    }

    /// This kernel's headers (vmlinux.h and its configuration), made on first use.
    fn kernel_headers(&self) -> Result<PathBuf> {
        let vmlinux = btf::vmlinux_h(&self.kernel_dir)?;
        kconfig::kconfig_h(&self.kernel_dir)?;
        Ok(vmlinux)
    }

    /// Parse with libclang and rewrite into libbpf-style C.
    fn rewrite(&self, work: &Path, filename: &str) -> Result<rewrite::Rewritten> {
        let vmlinux = self.kernel_headers()?;
        let source = self.own_types(&vmlinux)?;
        let main_path = work.join("main.c").display().to_string();
        self.with_prelude(work, Stage::Parse, |flags| {
            isolate::in_child(|| {
                let parsed = clang::parse(&main_path, &source, flags)?;
                check_diagnostics(&parsed, &self.source, filename)?;
                rewrite::rewrite(filename, &source, &parsed)
            })
        })
    }

    /// The program with its own definitions of kernel types renamed apart from the headers' (see
    /// owntypes.rs).
    fn own_types(&self, vmlinux: &Path) -> Result<String> {
        let defined = owntypes::definitions(&self.source);
        if defined.is_empty() {
            return Ok(self.source.clone());
        }
        let vmlinux = fs::read_to_string(vmlinux).map_err(|e| Error::io("reading vmlinux.h", e))?;
        let texts = std::iter::once(vmlinux.as_str()).chain(headers::HEADERS.iter().map(|(_, text)| *text));
        let in_headers: std::collections::HashSet<String> =
            texts.flat_map(owntypes::header_definitions).map(|(_, name)| name).collect();
        // A tag names one type whichever keyword: `union x` clashes with a `struct x` too.
        let in_headers = |(_, name): &owntypes::Tag| in_headers.contains(name);
        let clashing = defined.into_iter().filter(in_headers).collect();
        Ok(owntypes::rename(&self.source, &clashing))
    }

    /// Start the clang compile of the program (which comes later, through `finish_compile`), with the
    /// prelude's PCH when there is one, or with `pch` = Some(None) the plain prelude.
    fn start_compile(&self, work: &Path, filename: &str, pch: Option<Option<PathBuf>>) -> Result<Started> {
        let (flags, found, tail) = self.stage_flags(work, Stage::Compile);
        let pch = pch.unwrap_or(found);
        let flags = [flags, pch::prelude_flags(pch.as_deref()), tail].concat();
        let pending = pending::start(work, &scratch_name(filename), &work.join("main.o"), &flags)?;
        Ok(Started { pending, pch })
    }

    /// Give the started compile the rewritten C and take the BPF object it makes. Should clang refuse
    /// the PCH (another clang built it, or its inputs changed), drop it and compile on the plain header.
    fn finish_compile(&self, work: &Path, started: Started, rewritten: &str, filename: &str) -> Result<Vec<u8>> {
        let source = started.pending.source.clone();
        match (started.pending.finish(rewritten)?, started.pch) {
            (Ok(()), _) => fs::read(work.join("main.o")).map_err(|e| Error::io("reading the compiled object", e)),
            (Err(msg), Some(pch)) if pch::is_pch_complaint(&msg) => {
                pch::discard(&pch);
                let _ = fs::remove_dir_all(work.join("src"));
                let again = self.start_compile(work, filename, Some(None))?;
                self.finish_compile(work, again, rewritten, filename)
            }
            (Err(msg), _) => Err(match driver::compile_error(&msg, &source, filename) {
                Error::Compile { message, mut diagnostics } => {
                    for d in &mut diagnostics {
                        d.message = owntypes::user_names(&d.message);
                    }
                    Error::Compile { message: owntypes::user_names(&message), diagnostics }
                }
                e => e,
            }),
        }
    }

    /// A stage's flags: those before the prelude, the prelude's PCH if built, those after it.
    fn stage_flags(&self, work: &Path, stage: Stage) -> (Vec<String>, Option<PathBuf>, Vec<String>) {
        let tp_path = work.join("tracepoints.h");
        let (shared, own) = pch::split_user_flags(&self.cflags);
        let mut flags = driver::common_flags(&self.kernel_dir, &self.include_dir);
        flags.extend(stage.flags().iter().map(|f| f.to_string()));
        flags.extend(shared);
        let pch = pch::prelude_pch(&self.kernel_dir, &self.include_dir, &flags);
        let tail = [own, vec!["-include".to_string(), tp_path.display().to_string()]].concat();
        (flags, pch, tail)
    }

    /// Run one stage with the prelude precompiled; should clang refuse the PCH (another clang built
    /// it, or its inputs changed), drop it and run the stage once more on the plain header.
    fn with_prelude<T>(&self, work: &Path, stage: Stage, run: impl Fn(&[String]) -> Result<T>) -> Result<T> {
        let (flags, pch, tail) = self.stage_flags(work, stage);
        let with = |pch: Option<&Path>| [flags.clone(), pch::prelude_flags(pch), tail.clone()].concat();
        match (run(&with(pch.as_deref())), pch) {
            (Err(Error::Compile { message, .. }), Some(pch)) if pch::is_pch_complaint(&message) => {
                pch::discard(&pch);
                run(&with(None))
            }
            (result, _) => result,
        }
    }
}

/// Remove the scratch directories of compiles whose process is gone (killed midway): each is named
/// `<key>-<pid>-<thread>`.
fn reap_abandoned(work_root: &Path) {
    let Ok(entries) = fs::read_dir(work_root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.split('-').nth(1)).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A compile under way, and the PCH it was started with.
struct Started {
    pending: pending::Pending,
    pch: Option<PathBuf>,
}

/// The name the rewritten C is compiled under. The object's line info keeps it, and the verifier log
/// quotes it (`; x = y; @ biolatency.c:12`), so it is the user's file name where there is one, and
/// bcc's `main.c` for text. The rewriter keeps the user's line numbers.
fn scratch_name(filename: &str) -> String {
    if filename.starts_with('<') {
        return "main.c".into(); // `<bpf text>`: not a file
    }
    let base = Path::new(filename).file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base: String = base.chars().filter(|c| c.is_ascii_alphanumeric() || "._-+".contains(*c)).collect();
    match base.as_str() {
        "" | "." | ".." => "main.c".into(),
        b if b.ends_with(".c") => base,
        _ => format!("{base}.c"),
    }
}

/// Errors from the parse become a CompileError at the user's own lines.
fn check_diagnostics(parsed: &clang::Parsed, source: &str, filename: &str) -> Result<()> {
    let errors: Vec<_> = parsed.diagnostics.iter().filter(|d| d.error).collect();
    if errors.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    let mut diagnostics = Vec::new();
    for d in errors.iter().take(20) {
        let file = if d.in_main { filename } else { d.file.as_str() };
        let message = owntypes::user_names(&d.message);
        let _ = writeln!(msg, "{file}:{}:{}: error: {message}", d.line, d.column);
        if d.in_main {
            if let Some(line) = source.lines().nth(d.line.saturating_sub(1) as usize) {
                let _ = writeln!(msg, "    {}", line.trim_end());
            }
        }
        let (line, column) = (d.line, Some(d.column));
        diagnostics.push(Diagnostic { file: file.to_string(), line, column, severity: "error".into(), message });
    }
    Err(Error::Compile { message: hints::explain(msg.trim_end().to_string()), diagnostics })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dialect;
