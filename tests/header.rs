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
