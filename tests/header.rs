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
