//! Helpers for the operator-tool tests (`tools_*.rs`): data directories
//! written by the dbkv library itself, damage applied to their files, and
//! running `dbkv <tool>` with its exit code and output.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dbkv::engine::{Options, SyncMode};
use dbkv::Engine;

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl Run {
    pub fn both(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

pub fn dbkv(args: &[&str]) -> Run {
    dbkv_with_input(args, None)
}

pub fn dbkv_with_input(args: &[&str], input: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbkv"));
    cmd.args(args).stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run dbkv");
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || stdin.write_all(&bytes));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw_stdout: out.stdout,
    }
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Opens a data directory with the library (small segments so tests get
/// several), runs `f`, closes it.
pub fn with_engine(dir: &Path, segment_bytes: u64, f: impl FnOnce(&Engine)) {
    let mut o = Options { data_dir: Some(dir.to_path_buf()), sync_mode: SyncMode::None, snapshot_interval_secs: 0, snapshot_ops: 0, ..Options::default() };
    o.set_wal_segment_bytes(segment_bytes).unwrap();
    let e = Engine::open(o).unwrap();
    f(&e);
    e.close().unwrap();
}

/// Writes `n` keys `k{i}` with 100-byte values, syncing every 10 (a
/// batch boundary, where the WAL may start a new segment).
pub fn fill(e: &Engine, from: usize, n: usize) {
    for i in from..from + n {
        e.set(format!("k{i}").as_bytes(), &[b'v'; 100], 0).unwrap();
        if i % 10 == 9 {
            e.sync().unwrap();
        }
    }
}

/// File names in `dir` that start with `prefix`, sorted.
pub fn files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(prefix)).collect();
    v.sort();
    v
}

/// The segments that hold records (longer than the 32-byte header).
pub fn full_segments(dir: &Path) -> Vec<PathBuf> {
    files(dir, "wal-").into_iter().filter(|n| n.ends_with(".log")).map(|n| dir.join(n)).filter(|p| std::fs::metadata(p).unwrap().len() > 32).collect()
}

pub fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

pub fn truncate_by(path: &Path, n: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len - n).unwrap();
}
