//! The C test suite (tests/c/*.c), driven from `cargo test`.
//!
//! The programs are compiled as strict C99 and linked against the
//! libdbkv.so that this cargo invocation built. `cargo test` compiles the
//! library with every crate type in Cargo.toml, cdylib included, in the one
//! rustc invocation that also makes the rlib this test links; but it leaves
//! the outputs in target/<profile>/deps/ (next to this test binary) and does
//! not copy them up to target/<profile>/ as `cargo build` does, so
//! target/<profile>/libdbkv.so may be an older build and is not used. If
//! deps/libdbkv.so is missing (another cargo version or setup), the test
//! runs `cargo build --lib` for the same profile and uses its output.
//!
//! The library is copied, under its soname, into a directory private to
//! this run: a concurrent cargo command rebuilding target/ cannot swap it
//! mid-run, and `make lib`'s soname link is not needed.
//!
//! Compilers: $CC (default `cc`) and $CXX (default `c++`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pthread", "-g", "-O1"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pthread", "-g", "-O1"];
const SONAME: &str = concat!("libdbkv.so.", env!("CARGO_PKG_VERSION_MAJOR"));

/// The C test programs, compiled once per test process and shared by the tests below.
struct Suite {
    /// Private to this process: the library copy, the binaries, temp data.
    dir: PathBuf,
    api: PathBuf,
    threads: PathBuf,
    persist: PathBuf,
    observe: PathBuf,
    fence: PathBuf,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

/// target/<profile>/deps/, where this very test binary lives.
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent directory");
    assert_eq!(deps.file_name().and_then(|n| n.to_str()), Some("deps"), "unexpected test binary location {}", exe.display());
    deps.to_path_buf()
}

/// The cdylib of this build, building it explicitly if `cargo test` did not.
fn built_library() -> Result<PathBuf, String> {
    let deps = deps_dir();
    let lib = deps.join("libdbkv.so");
    let rlib = deps.join("libdbkv.rlib");
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    // The cdylib and the rlib come out of one rustc invocation; a .so
    // older than the rlib would belong to another build.
    if let (Some(so), Some(rl)) = (mtime(&lib), mtime(&rlib)) {
        if so + Duration::from_secs(5) >= rl {
            return Ok(lib);
        }
    }
    let dir = deps.parent().expect("deps has a parent").to_path_buf();
    let lib = dir.join("libdbkv.so");
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_string();
    let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cmd.current_dir(root()).args(["build", "--lib"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().map_err(|e| format!("running cargo build: {e}"))?;
    if !out.status.success() || !lib.exists() {
        return Err(format!("cargo build --lib ({profile}) failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(lib)
}

/// Removes work directories left by earlier runs whose process is gone.
fn clean_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("c_suite-").and_then(|p| p.parse::<u32>().ok()) {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

fn setup() -> Result<Suite, String> {
    let lib = built_library()?;
    let parent = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    clean_stale(&parent);
    let dir = parent.join(format!("c_suite-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("tmp")).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    fs::copy(&lib, dir.join(SONAME)).map_err(|e| format!("copying {}: {e}", lib.display()))?;
    std::os::unix::fs::symlink(SONAME, dir.join("libdbkv.so")).map_err(|e| format!("symlink: {e}"))?;
    println!("C suite: library {} (copied to {})", lib.display(), dir.display());
    let api = compile(&dir, &tool("CC", "cc"), C_FLAGS, &["test_api.c"], "test_api")?;
    let threads = compile(&dir, &tool("CC", "cc"), C_FLAGS, &["test_threads.c"], "test_threads")?;
    let persist = compile(&dir, &tool("CC", "cc"), C_FLAGS, &["test_persist.c"], "test_persist")?;
    let fence = compile(&dir, &tool("CC", "cc"), C_FLAGS, &["test_fence.c"], "test_fence")?;
    let observe = compile(&dir, &tool("CC", "cc"), C_FLAGS, &["test_observe.c"], "test_observe")?;
    Ok(Suite { dir, api, threads, persist, fence, observe })
}

fn suite() -> &'static Suite {
    static SUITE: OnceLock<Result<Suite, String>> = OnceLock::new();
    match SUITE.get_or_init(setup) {
        Ok(s) => s,
        Err(e) => panic!("building the C suite failed:\n{e}"),
    }
}

/// Compiles and links `sources` (under tests/c/) against the private library copy.
fn compile(dir: &Path, compiler: &str, flags: &[&str], sources: &[&str], name: &str) -> Result<PathBuf, String> {
    let out = dir.join(name);
    let mut cmd = Command::new(compiler);
    cmd.args(flags).arg(format!("-I{}", root().join("include").display()));
    if compiler_is_cxx(flags) {
        cmd.args(["-x", "c++"]);
    }
    for s in sources {
        cmd.arg(root().join("tests/c").join(s));
    }
    if compiler_is_cxx(flags) {
        cmd.args(["-x", "none"]);
    }
    cmd.arg(format!("-L{}", dir.display()))
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .arg("-ldbkv")
        .arg("-o")
        .arg(&out);
    let res = cmd.output().map_err(|e| format!("cannot run {compiler}: {e}"))?;
    if !res.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            res.status,
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    Ok(out)
}

fn compiler_is_cxx(flags: &[&str]) -> bool {
    flags.iter().any(|f| f.starts_with("-std=c++"))
}

struct Run {
    code: Option<i32>,
    output: String,
    elapsed: Duration,
}

/// Runs a program with a deadline (a hung C test must fail, not stall cargo),
/// capturing stdout and stderr into files so no pipe can fill up.
fn run(suite: &Suite, program: &[&Path], env: &[(&str, &str)], timeout: Duration) -> Run {
    let name = program.last().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    let log = suite.dir.join(format!("{name}-{}.log", program.len()));
    let file = fs::File::create(&log).expect("create log");
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..])
        .env("TMPDIR", suite.dir.join("tmp"))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup log"))
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", program[0]));
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = fs::read_to_string(&log).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("\n*** killed after {timeout:?}: the program hung\n"));
    }
    Run { code: status.and_then(|s| s.code()), output, elapsed: started.elapsed() }
}

fn run_and_check(program: &Path, env: &[(&str, &str)]) {
    let s = suite();
    let r = run(s, &[program], env, Duration::from_secs(120));
    println!("{}\n({} finished in {:.1?})", r.output, program.display(), r.elapsed);
    assert_eq!(r.code, Some(0), "{} failed (exit {:?}); its output is above", program.display(), r.code);
}

#[test]
fn c_api_contract() {
    run_and_check(&suite().api, &[]);
}

#[test]
fn c_threads_share_one_handle() {
    run_and_check(&suite().threads, &[]);
}

#[test]
fn c_persistence_through_data_dir() {
    run_and_check(&suite().persist, &[]);
}

#[test]
fn c_logging_metrics_and_messages() {
    run_and_check(&suite().observe, &[]);
}

#[test]
fn c_fenced_writes() {
    run_and_check(&suite().fence, &[]);
}

fn header_compiles_and_links(compiler: &str, flags: &[&str], name: &str) {
    let s = suite();
    let bin = compile(&s.dir, compiler, flags, &["header_check.c"], name).unwrap_or_else(|e| panic!("{e}"));
    let r = run(s, &[&bin], &[], Duration::from_secs(30));
    println!("{}", r.output);
    assert_eq!(r.code, Some(0), "{name} exited {:?}", r.code);
}

#[test]
fn header_is_clean_c99() {
    let mut flags = C_FLAGS.to_vec();
    flags.push("-Wstrict-prototypes");
    header_compiles_and_links(&tool("CC", "cc"), &flags, "header_c99");
}

#[test]
fn header_is_clean_cxx17() {
    header_compiles_and_links(&tool("CXX", "c++"), CXX_FLAGS, "header_cxx17");
}

/// Memory errors and leaks across the C boundary: every buffer, handle and
/// iterator dbkv hands out is freed by the tests, so a definite or indirect
/// leak, an invalid read or write or a use of uninitialised memory is dbkv's.
/// Only valgrind's verdict (exit 99), a crash or a hang fail this test: a
/// functional failure (exit 1) is the native tests' to report, and timing
/// checks are not meaningful at valgrind's speed.
///
/// Without valgrind this test fails (a passing test's output is hidden, so
/// a skip would look like a pass) unless `DBKV_NO_VALGRIND=1` says the
/// leak check is knowingly skipped; `make test` then prints a warning.
#[test]
fn c_suite_under_valgrind() {
    let s = suite();
    let valgrind = tool("VALGRIND", "valgrind");
    if Command::new(&valgrind).arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        let skip = std::env::var("DBKV_NO_VALGRIND").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "`{valgrind}` not found, so the C memory test cannot run: install valgrind (Debian: apt install valgrind), \
             or set DBKV_NO_VALGRIND=1 to skip this one test knowingly"
        );
        eprintln!("SKIPPED c_suite_under_valgrind: `{valgrind}` not found and DBKV_NO_VALGRIND=1");
        return;
    }
    let programs: [(&Path, &[(&str, &str)]); 5] =
        [(&s.api, &[]), (&s.threads, &[("DBKV_C_SUITE_LIGHT", "1")]), (&s.persist, &[]), (&s.fence, &[]), (&s.observe, &[])];
    let mut bad = Vec::new();
    for (bin, env) in programs {
        let args = [
            Path::new(&valgrind),
            Path::new("--leak-check=full"),
            Path::new("--errors-for-leak-kinds=definite,indirect"),
            Path::new("--error-exitcode=99"),
            Path::new("--track-origins=yes"),
            bin,
        ];
        let r = run(s, &args, env, Duration::from_secs(300));
        println!("{}\n(valgrind {} exited {:?} in {:.1?})", r.output, bin.display(), r.code, r.elapsed);
        match r.code {
            Some(0) => {}
            Some(1) => println!("note: {} reported functional failures under valgrind (see its native test)", bin.display()),
            other => bad.push(format!("{} exited {other:?} (99 = memory errors or leaks, None = crash or hang)", bin.display())),
        }
    }
    assert!(bad.is_empty(), "under valgrind: {}; the output is above", bad.join("; "));
}
