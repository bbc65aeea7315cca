//! The running kernel's build configuration as `#define`s, the way the kernel's generated autoconf.h
//! has them: bcc programs test `#ifdef CONFIG_...`, and BTF does not carry the configuration.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The cached `kconfig.h` for this kernel, written on first use: from $RBCC_KERNEL_CONFIG, else
/// /proc/config.gz, else /boot/config-<release>; without defines when there is none of them.
pub fn kconfig_h(kernel_dir: &Path) -> Result<PathBuf> {
    let path = kernel_dir.join("kconfig.h");
    if !path.exists() {
        let (source, text) = match read_config() {
            Some((source, text)) => (source, defines(&text)),
            None => ("nowhere: the kernel exposes no config".to_string(), String::new()),
        };
        let body = format!("/* The kernel's configuration, from {source} */\n{text}");
        let tmp = path.with_extension(format!("tmp{}-{:?}", std::process::id(), std::thread::current().id()));
        fs::write(&tmp, body).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))?;
    }
    Ok(path)
}

fn read_config() -> Option<(String, String)> {
    // Where the kernel's config is elsewhere (a VM booting a packaged kernel, a container), say where.
    if let Some(path) = std::env::var_os("RBCC_KERNEL_CONFIG") {
        let text = fs::read_to_string(&path).ok()?;
        return Some((path.to_string_lossy().into_owned(), text));
    }
    if let Ok(file) = fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(file).read_to_string(&mut text).is_ok() {
            return Some(("/proc/config.gz".into(), text));
        }
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let path = format!("/boot/config-{}", release.trim());
    fs::read_to_string(&path).ok().map(|text| (path, text))
}

/// `CONFIG_X=y` → `#define CONFIG_X 1`, `=m` → `#define CONFIG_X_MODULE 1`, values as they are.
pub fn defines(config: &str) -> String {
    let mut out = String::new();
    for line in config.lines() {
        let Some((name, value)) = line.split_once('=') else { continue };
        if !name.starts_with("CONFIG_") || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let define = match value {
            "y" => format!("#define {name} 1\n"),
            "m" => format!("#define {name}_MODULE 1\n"),
            "n" | "" => continue,
            v => format!("#define {name} {v}\n"),
        };
        out.push_str(&define);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines_become_autoconf_defines() {
        let text = "# comment\nCONFIG_X86_64=y\nCONFIG_EXT4_FS=m\nCONFIG_HZ=250\nCONFIG_LOCALVERSION=\"-fc\"\n\
                    # CONFIG_KPROBES is not set\nCONFIG_NOPE=n\n";
        assert_eq!(
            defines(text),
            "#define CONFIG_X86_64 1\n#define CONFIG_EXT4_FS_MODULE 1\n#define CONFIG_HZ 250\n\
             #define CONFIG_LOCALVERSION \"-fc\"\n"
        );
    }
}
