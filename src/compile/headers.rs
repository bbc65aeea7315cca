//! The C headers rbcc puts in front of every program, embedded in the library and written once into
//! the cache (a directory per header set, so upgrades never mix headers).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

macro_rules! libbpf_header {
    ($name:literal) => {
        (concat!("bpf/", $name), include_str!(concat!(env!("OUT_DIR"), "/bpf/", $name)))
    };
}

pub const HEADERS: [(&str, &str); 13] = [
    libbpf_header!("bpf_helpers.h"),
    libbpf_header!("bpf_helper_defs.h"),
    libbpf_header!("bpf_tracing.h"),
    libbpf_header!("bpf_core_read.h"),
    libbpf_header!("bpf_endian.h"),
    libbpf_header!("usdt.bpf.h"),
    ("rbcc/prelude.h", include_str!("../../bpf/rbcc/prelude.h")),
    ("rbcc/kdefs.h", include_str!("../../bpf/rbcc/kdefs.h")),
    ("rbcc/kinline.h", include_str!("../../bpf/rbcc/kinline.h")),
    ("rbcc/helpers.h", include_str!("../../bpf/rbcc/helpers.h")),
    ("rbcc/packet.h", include_str!("../../bpf/rbcc/packet.h")),
    // only for programs that include <bcc/proto.h> (see shim::include_macros)
    ("rbcc/proto.h", include_str!("../../bpf/rbcc/proto.h")),
    // what libbpf's own headers include, served without kernel headers
    ("linux/errno.h", include_str!("../../bpf/rbcc/shim/linux/errno.h")),
];

/// A short hash of every embedded header: part of each compile cache key.
pub fn headers_hash() -> String {
    let mut h = Sha256::new();
    for (name, text) in HEADERS {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The include directory holding the embedded headers under `root`, written on first use.
pub fn include_dir(root: &Path) -> Result<PathBuf> {
    let dir = root.join("include").join(headers_hash());
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    for (name, text) in HEADERS {
        let path = dir.join(name);
        let parent = path.parent().expect("headers live in a subdirectory");
        fs::create_dir_all(parent).map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    fs::write(dir.join(".complete"), "").map_err(|e| Error::io("marking the header directory complete", e))?;
    Ok(dir)
}
