//! The `dbkv serve` command line: bad values, unsafe binds, a second
//! server on one data dir, environment variables, --help, Unix sockets,
//! --disable-persistence (dbkv only).

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `dbkv serve` to completion (it must exit by itself) with only
/// these flags and environment variables.
fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(dbkv_bin());
    cmd.arg("serve").args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DBKV_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dbkv serve {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn bad_flag_values_exit_2_with_one_line_naming_the_flag() {
    dbkv_only!("dbkv's command line");
    let tmp = TempDir::new();
    let data = tmp.path.join("never-created");
    let d = path_str(&data);
    let port = free_port().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--sync", "sometimes"], "--sync"),
        (&["--port", "notaport"], "--port"),
        (&["--port", "70000"], "--port"),
        (&["--maxclients", "0"], "--maxclients"),
        (&["--unixsocket", "/tmp/x.sock", "--unixsocketperm", "999"], "--unixsocketperm"),
        (&["--client-output-buffer-limit", "100"], "--client-output-buffer-limit"),
        (&["--client-query-buffer-limit", "abc"], "--client-query-buffer-limit"),
        (&["--bind", "not-an-ip"], "--bind"),
        (&["--shards", "3"], "--shards"),
        (&["--max-value-bytes", "2000000000"], "--max-value-bytes"),
        (&["--fsync-interval-ms", "0"], "--fsync-interval-ms"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (flags, name) in cases {
        let mut args = vec!["--data-dir", d];
        if !flags.contains(&"--port") {
            args.extend(["--port", port.as_str()]);
        }
        args.extend_from_slice(flags);
        let out = run(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: status {}, stderr {err}", out.status);
        assert_eq!(err.trim_end().lines().count(), 1, "{flags:?}: one line, got:\n{err}");
        assert!(err.contains(name), "{flags:?}: the line names {name}: {err}");
        assert!(!data.exists(), "{flags:?}: created the data dir");
    }
    // The same through an environment variable.
    let out = run(&["--data-dir", d, "--port", &port], &[("DBKV_SYNC", "sometimes")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--sync") || err.contains("DBKV_SYNC"), "{err}");
    assert!(!data.exists());
}

#[test]
fn non_loopback_bind_needs_requirepass() {
    dbkv_only!("dbkv's command line");
    let tmp = TempDir::new();
    let data = tmp.path.join("never-created");
    let port = free_port().to_string();
    for bind in ["0.0.0.0", "::", "127.0.0.1,0.0.0.0"] {
        let out = run(&["--data-dir", path_str(&data), "--port", &port, "--bind", bind], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--bind {bind}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("--bind") && err.contains("--requirepass"), "{err}");
        assert!(!data.exists());
    }
    // --port 0 without a Unix socket leaves no way in.
    let out = run(&["--data-dir", path_str(&data), "--port", "0"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!data.exists());
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_busy() {
    dbkv_only!("dbkv's data dir lock");
    let s = Server::start(&[]);
    let out = run(&["--data-dir", path_str(&s.data_dir), "--port", &free_port().to_string()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.status.code().is_some(), "second server: {} {err}", out.status);
    assert!(err.contains("BUSY"), "stderr names BUSY: {err}");
    // The first one is unharmed.
    assert_serving(&s);
}

#[test]
fn env_vars_configure_the_server() {
    dbkv_only!("DBKV_* environment variables");
    let tmp = TempDir::new();
    let data = tmp.path.join("data");
    let port = free_port();
    let port_s = port.to_string();
    let Some(s) = Server::try_start_env(&[], &[("DBKV_PORT", &port_s), ("DBKV_DATA_DIR", path_str(&data)), ("DBKV_SYNC", "always")]) else { return };
    assert_eq!(s.port, port, "the harness let DBKV_PORT choose");
    let mut c = Client::from_tcp(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    ok(&c.cmd(&["SET", "k", "v"]));
    assert_eq!(c.cmd(&["GET", "k"]), b("v"));
    assert!(data.is_dir(), "DBKV_DATA_DIR was not used");
    drop(s);
    // A password from the environment is required.
    let port = free_port();
    let port_s = port.to_string();
    let Some(_s) = Server::try_start_env(&[], &[("DBKV_PORT", &port_s), ("DBKV_DATA_DIR", path_str(&data)), ("DBKV_REQUIREPASS", "envpw")]) else { return };
    let mut c = Client::from_tcp(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    err_eq(&c.cmd(&["GET", "k"]), "NOAUTH Authentication required.");
}

#[test]
fn help_lists_every_flag() {
    dbkv_only!("dbkv's command line");
    let out = Command::new(dbkv_bin()).args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--data-dir",
        "--sync",
        "--requirepass",
        "--unixsocket",
        "--unixsocketperm",
        "--maxclients",
        "--client-query-buffer-limit",
        "--client-output-buffer-limit",
        "--max-value-bytes",
        "--bind",
        "--unprotected",
        "--disable-persistence",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    for env in ["DBKV_PORT", "DBKV_DATA_DIR", "DBKV_SYNC", "DBKV_REQUIREPASS"] {
        assert!(help.contains(env), "--help lacks {env}:\n{help}");
    }
    let out = Command::new(dbkv_bin()).arg("--version").output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("dbkv "));
}

#[test]
fn unix_socket_with_permissions() {
    let tmp = TempDir::new();
    let sock = tmp.path.join("dbkv.sock");
    let Some(s) = Server::try_start(&["--unixsocket", path_str(&sock), "--unixsocketperm", "700"]) else { return };
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let mut c = Client::from_unix(std::os::unix::net::UnixStream::connect(&sock).unwrap());
    ok(&c.cmd(&["SET", "over", "unix"]));
    assert_eq!(c.cmd(&["GET", "over"]), b("unix"));
    // The same data over TCP.
    assert_eq!(s.client().cmd(&["GET", "over"]), b("unix"));
}

#[test]
fn unix_socket_is_removed_on_shutdown() {
    dbkv_only!("SIGTERM");
    let tmp = TempDir::new();
    let sock = tmp.path.join("gone.sock");
    let mut s = Server::start(&["--unixsocket", path_str(&sock)]);
    assert!(sock.exists());
    assert!(s.sigterm_and_wait().success());
    assert!(!sock.exists(), "the socket file is left behind");
}

#[test]
fn disable_persistence_writes_nothing() {
    dbkv_only!("restart");
    let mut s = Server::start(&["--disable-persistence"]);
    let mut c = s.client();
    ok(&c.cmd(&["SET", "k", "v"]));
    assert!(!s.data_dir.exists(), "--disable-persistence created {}", s.data_dir.display());
    s.restart();
    assert_eq!(s.client().cmd(&["GET", "k"]), Value::NilBulk, "data survived without persistence");
    assert!(!s.data_dir.exists());
}
