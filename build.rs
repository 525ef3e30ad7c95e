// Gives the shared object the soname libdbkv.so.<major>, so programs that
// link it keep loading it across compatible (same-major) upgrades.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdbkv.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
