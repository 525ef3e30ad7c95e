//! The committed include/dbkv.h must be exactly what cbindgen generates from
//! the sources now. Run `make header` (DBKV_BLESS=1 cargo test --test header)
//! to regenerate it after changing the C surface.

use std::path::Path;

#[test]
fn committed_header_matches_cbindgen() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::generate_with_config(root, config).expect("cbindgen generates the header").write(&mut generated);
    let path = root.join("include/dbkv.h");
    if std::env::var_os("DBKV_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).expect("include/dbkv.h is committed");
    assert!(
        committed == generated,
        "include/dbkv.h differs from what cbindgen generates: run `make header` and commit the result"
    );
}

/// Engine constants are public in Rust for the format tests, and cbindgen
/// exports every public constant it sees: a new one leaks into the C surface
/// unless cbindgen.toml excludes it. Every macro in the header is ours.
#[test]
fn header_defines_only_dbkv_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/dbkv.h")).unwrap();
    let leaked: Vec<&str> = header
        .lines()
        .filter_map(|line| line.strip_prefix("#define "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| !name.starts_with("DBKV_"))
        .collect();
    assert!(leaked.is_empty(), "non-dbkv macros in include/dbkv.h (exclude them in cbindgen.toml): {leaked:?}");
}

/// The header is valid C89 (no `//` comments, no declarations after
/// statements) and C++, and may be included twice: checked with the
/// compilers themselves, every warning an error.
#[test]
fn header_compiles_as_c89_c99_and_cpp_included_twice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("dbkv-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = "#include \"dbkv.h\"\n#include \"dbkv.h\"\nint main(void) { return dbkv_version() == 0; }\n";
    let checks: [(&str, &str, &[&str]); 3] = [
        ("CC", "cc", &["-x", "c", "-std=c89"]),
        ("CC", "cc", &["-x", "c", "-std=c99"]),
        ("CXX", "c++", &["-x", "c++", "-std=c++11"]),
    ];
    let file = dir.join("t.src");
    std::fs::write(&file, src).unwrap();
    for (var, default, args) in checks {
        let compiler = std::env::var(var).ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| default.to_string());
        let out = std::process::Command::new(&compiler)
            .args(args)
            .args(["-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I"])
            .arg(root.join("include"))
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
        assert!(out.status.success(), "{compiler} {args:?} rejects include/dbkv.h:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
