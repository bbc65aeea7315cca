//! Toolchain selection over fake LLVM installations (empty files where the binaries would be).

use super::*;
use std::os::unix::fs::{symlink, PermissionsExt};

/// `<root>/llvm-<v>/{bin/clang, lib/libclang-<v>.so.1, ...}`; without `lib`, no libclang.
fn fake_llvm(root: &Path, v: u32, with_lib: bool) -> (PathBuf, PathBuf) {
    let dir = root.join(format!("llvm-{v}"));
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("lib")).unwrap();
    let clang = dir.join("bin/clang");
    fs::write(&clang, "").unwrap();
    fs::set_permissions(&clang, fs::Permissions::from_mode(0o755)).unwrap();
    if with_lib {
        for n in [
            format!("libclang-cpp.so.{v}"),
            "libclang.so".into(),
            format!("libclang-{v}.so.1"),
            "libclangBasic.a".into(),
        ] {
            fs::write(dir.join("lib").join(n), "").unwrap();
        }
    }
    (clang, dir.join(format!("lib/libclang-{v}.so.1")))
}

fn tmp(name: &str) -> PathBuf {
    let t = std::env::temp_dir().join(format!("rbcc-tc-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&t);
    fs::create_dir_all(&t).unwrap();
    t
}

#[test]
fn pairs_the_clang_on_path_with_its_own_libclang_through_symlinks() {
    let tmp = tmp("pair");
    let (clang, lib) = fake_llvm(&tmp, 19, true);
    fs::create_dir_all(tmp.join("bin")).unwrap();
    symlink(&clang, tmp.join("bin/clang")).unwrap();
    let t = find(None, None, Some(tmp.join("bin").into_os_string()), &tmp).unwrap();
    assert_eq!(t.clang, tmp.join("bin/clang"));
    assert_eq!(t.libclang.as_deref(), Some(fs::canonicalize(&lib).unwrap().as_path()));
    assert_eq!((t.clang_version, t.libclang_version), (Some(19), Some(19)));
    // LIBCLANG_PATH as a directory picks its clang too; RBCC_CLANG wins for the binary
    let t = find(None, Some(tmp.join("llvm-19/lib").into_os_string()), None, &tmp).unwrap();
    assert_eq!((t.clang.as_path(), t.libclang.as_deref()), (clang.as_path(), Some(lib.as_path())));
    let t = find(Some("/opt/x/clang".into()), Some(lib.clone().into_os_string()), None, &tmp).unwrap();
    assert_eq!((t.clang.as_path(), t.libclang.as_deref()), (Path::new("/opt/x/clang"), Some(lib.as_path())));
    assert_eq!((t.clang_version, t.libclang_version), (None, Some(19)));
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn finds_versioned_installations_and_prefers_a_matching_pair() {
    let tmp = tmp("prefer");
    // the clang on PATH is 14, whose libclang is not installed; 16 and 19 have both, 22 only a clang
    let (clang14, _) = fake_llvm(&tmp, 14, false);
    let (_, lib16) = fake_llvm(&tmp, 16, true);
    let (clang19, lib19) = fake_llvm(&tmp, 19, true);
    fake_llvm(&tmp, 22, false);
    fs::create_dir_all(tmp.join("bin")).unwrap();
    symlink(&clang14, tmp.join("bin/clang")).unwrap();
    let t = find(None, None, Some(tmp.join("bin").into_os_string()), &tmp).unwrap();
    assert_eq!((t.clang.as_path(), t.libclang.as_deref()), (clang19.as_path(), Some(lib19.as_path())));
    // Fedora's clang-N on PATH, its libclang found by version; LIBCLANG_PATH alone picks the clang of
    // its version
    fs::create_dir_all(tmp.join("fedora")).unwrap();
    symlink(tmp.join("llvm-16/bin/clang"), tmp.join("fedora/clang-16")).unwrap();
    let t = find(None, None, Some(tmp.join("fedora").into_os_string()), &tmp.join("none")).unwrap();
    assert_eq!((t.clang_version, t.libclang.as_deref()), (Some(16), Some(lib16.as_path())));
    let t = find(None, Some(lib16.clone().into_os_string()), None, &tmp).unwrap();
    assert_eq!((t.clang_version, t.libclang_version), (Some(16), Some(16)));
    // a refused version on PATH (15) and a newer unsupported one (99) yield to the newest supported pair
    let (clang15, _) = fake_llvm(&tmp, 15, true);
    fake_llvm(&tmp, 99, true);
    fs::remove_file(tmp.join("bin/clang")).unwrap();
    symlink(&clang15, tmp.join("bin/clang")).unwrap();
    let t = find(None, None, Some(tmp.join("bin").into_os_string()), &tmp).unwrap();
    assert_eq!((t.clang.as_path(), t.libclang_version), (clang19.as_path(), Some(19)));
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn refuses_a_mismatched_pair_or_an_unsupported_version_naming_both() {
    let tmp = tmp("refuse");
    let (clang14, _) = fake_llvm(&tmp, 14, true);
    let (_, lib19) = fake_llvm(&tmp, 19, true);
    let t = find(Some(clang14.clone().into_os_string()), Some(lib19.clone().into_os_string()), None, &tmp).unwrap();
    let refusal = check(&t).unwrap_err();
    assert!(refusal.message.contains("different LLVM versions"), "{}", refusal.message);
    for (what, v) in [(&clang14, 14), (&lib19, 19)] {
        assert!(refusal.message.contains(&format!("{} (LLVM {v})", what.display())), "{}", refusal.message);
    }
    assert!(!refusal.message.contains('\n'));
    let (clang9, lib9) = fake_llvm(&tmp, 9, true);
    let t = find(Some(clang9.into_os_string()), None, None, &tmp).unwrap();
    assert_eq!(t.libclang.as_deref(), Some(lib9.as_path()));
    let refusal = check(&t).unwrap_err();
    assert!(refusal.message.contains("LLVM 9 is not supported"), "{}", refusal.message);
    assert!(matches!(refusal.error(), Error::Toolchain { .. }));
    // inside the range, a version the matrix failed
    let (clang15, _) = fake_llvm(&tmp, 15, true);
    let refusal = check(&find(Some(clang15.into_os_string()), None, None, &tmp).unwrap()).unwrap_err();
    assert!(refusal.message.contains("LLVM 15 is not supported: its optimizer crashes"), "{}", refusal.message);
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn versions_come_from_names_and_banners() {
    assert_eq!(soname_version("libclang-14.so.1"), Some(14));
    assert_eq!(soname_version("libclang.so.19.1"), Some(19));
    assert_eq!(soname_version("libclang.so.1"), None);
    assert_eq!(soname_version("libclang.so"), None);
    assert_eq!(version_in_banner("Debian clang version 14.0.6\nTarget: x86_64"), Some(14));
    assert_eq!(version_in_banner("clang version 19.1.7 (Fedora 19.1.7-1.fc41)"), Some(19));
    assert_eq!(version_in_banner("gcc (Debian 12.2.0-14) 12.2.0"), None);
    assert_eq!(clang_version_of(Path::new("/nonexistent/usr/bin/clang-19")), Some(19));
}

#[test]
fn the_identity_changes_when_the_binary_does() {
    let tmp = tmp("id");
    let (clang, _) = fake_llvm(&tmp, 19, false);
    let before = file_identity(&clang);
    fs::write(&clang, "a newer clang").unwrap();
    assert_ne!(before, file_identity(&clang));
    let _ = fs::remove_dir_all(&tmp);
}
