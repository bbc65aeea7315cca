//! Copies libbpf's BPF-side headers (bpf_helpers.h, bpf_tracing.h, ...) from libbpf-sys into OUT_DIR,
//! so the core embeds the very headers that match the libbpf it links.
use std::{env, fs, path::PathBuf};

const LIBBPF_HEADERS: [&str; 6] =
    ["bpf_helpers.h", "bpf_helper_defs.h", "bpf_tracing.h", "bpf_core_read.h", "bpf_endian.h", "usdt.bpf.h"];

fn main() {
    let include = PathBuf::from(env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its include dir"));
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bpf");
    fs::create_dir_all(&out).unwrap();
    for name in LIBBPF_HEADERS {
        let src = include.join("bpf").join(name);
        fs::copy(&src, out.join(name)).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
    }
    // Compiled objects are cached; key them on the compiler's own sources too, so a changed
    // rewriter never serves objects an older one made.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = vec!["src/compile".into(), "bpf/rbcc".into()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        for b in fs::read(f).unwrap() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=RBCC_COMPILER_ID={hash:016x}");
    println!("cargo:rerun-if-changed=src/compile");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=bpf");
}
