//! Facts about the running kernel: its BTF, configuration and version, tracefs and tracepoint formats.

pub mod btf;
pub mod features;
pub mod kconfig;
pub mod tracefs;
pub mod version;
