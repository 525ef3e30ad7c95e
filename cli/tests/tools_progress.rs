//! Progress output: a bar (with rate and ETA) under a pseudo-terminal,
//! plain lines without one, nothing with `--quiet`. The pseudo-terminal
//! comes from util-linux's `script`.

mod common;
mod tools_common;

use std::process::Command;

use common::TempDir;
use tools_common::*;

fn data(td: &TempDir) -> std::path::PathBuf {
    let dir = td.path.join("db");
    with_engine(&dir, 64 << 20, |e| fill(e, 0, 300));
    dir
}

/// Runs `dbkv ARGS` under a pseudo-terminal; returns what it printed there.
fn under_pty(args: &[&str]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `script` (util-linux) is not installed, so no pseudo-terminal test");
        return None;
    }
    let line = std::iter::once(env!("CARGO_BIN_EXE_dbkv")).chain(args.iter().copied()).map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
    let out = Command::new("script").args(["-qfec", &line, "/dev/null"]).env("TERM", "xterm").output().unwrap();
    assert!(out.status.success(), "{:?}", out);
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn out_file(td: &TempDir) -> String {
    p(&td.path.join("out")).to_string()
}

#[test]
fn terminal_shows_a_bar_with_rate_and_eta() {
    let td = TempDir::new();
    let dir = data(&td);
    let out = out_file(&td);
    let Some(screen) = under_pty(&["dump", p(&dir), "-o", &out]) else { return };
    assert!(screen.contains("dumping keys") && screen.contains("ETA") && screen.contains("/s)") && screen.contains("300/300"), "{screen:?}");
    assert!(screen.contains("[=="), "a drawn bar: {screen:?}");
    let Some(check) = under_pty(&["check", p(&dir)]) else { return };
    assert!(check.contains("checking files [") && check.contains("ETA"), "{check:?}");
}

#[test]
fn without_a_terminal_progress_is_plain_lines() {
    let td = TempDir::new();
    let dir = data(&td);
    let r = dbkv(&["dump", p(&dir), "-o", &out_file(&td)]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stderr.contains("dumping keys: 300 of 300 (100%)") && r.stderr.contains("done in"), "{}", r.both());
    assert!(r.stderr.contains("recovery: replaying WAL:"), "recovery progress from the library: {}", r.both());
    assert!(!r.stderr.contains('\x1b') && !r.stderr.contains('\r'), "no terminal control: {:?}", r.stderr);
    let c = dbkv(&["check", p(&dir)]);
    assert!(c.stderr.contains("checking files:"), "{}", c.both());
}

#[test]
fn quiet_shows_no_progress() {
    let td = TempDir::new();
    let dir = data(&td);
    let r = dbkv(&["dump", p(&dir), "-o", &out_file(&td), "--quiet"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let c = dbkv(&["check", p(&dir), "--quiet"]);
    assert_eq!((c.code, c.stderr.as_str()), (0, ""), "{}", c.both());
    let Some(screen) = under_pty(&["dump", p(&dir), "-o", &out_file(&td), "--quiet"]) else { return };
    assert_eq!(screen, "");
}


#[test]
fn serve_reports_recovery_progress_in_its_log() {
    dbkv_only!("restarts a dbkv server");
    let mut s = common::Server::start(&[]);
    let mut c = s.client();
    for i in 0..50 {
        common::ok(&c.cmd(&["SET", &format!("k{i}"), "v"]));
    }
    drop(c);
    s.kill9();
    s.restart();
    common::assert_serving(&s);
    let log = s.log();
    assert!(log.contains("recovery: replaying WAL:") && log.contains("(100%)"), "{log}");
}
