//! `dbkv dump`: every live key of a data directory with its type, value
//! and expiry, as JSON Lines or RESP commands. The directory is recovered
//! into a private read-only engine, so the dump is the state of one
//! instant (nothing writes to it), and one clock reading decides which
//! keys have expired.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dbkv::engine::Options;
use dbkv::{Engine, Error};

use super::format::{jsonl, resp, Format, Item};
use super::{busy, existing_dir, ModeArg, ToolError, ToolResult};
use crate::progress::{Progress, Unit};

#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    /// The data directory.
    pub dir: PathBuf,
    /// Only keys starting with these bytes.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// How recovery treats damage while reading (in memory only: the directory is not modified).
    #[arg(long, value_enum, default_value = "point-in-time")]
    pub mode: ModeArg,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Opens `dir` read-only (recovery in memory, files untouched).
pub fn open_read_only(dir: &Path, mode: ModeArg, progress: &Progress) -> ToolResult<Engine> {
    existing_dir(dir)?;
    let opts = Options { data_dir: Some(dir.to_path_buf()), read_only: true, recovery_mode: mode.mode(), progress: Some(progress.recovery_hook()), ..Options::default() };
    let r = Engine::open(opts);
    progress.finish();
    r.map_err(|e| match e {
        Error::Busy(_) => busy(dir, "stop it first (or dump from a copy of the directory)"),
        Error::Corruption(m) => ToolError::cannot_run(format!("{m} (run `dbkv check {}` for details)", dir.display())),
        e => ToolError::cannot_run(format!("could not open {}: {e}", dir.display())),
    })
}

pub fn run(a: &DumpArgs) -> ToolResult<u8> {
    let progress = Progress::new("recovery", Unit::Bytes, 0, a.quiet);
    let engine = open_read_only(&a.dir, a.mode, &progress)?;
    let mut out: BufWriter<Box<dyn Write>> = BufWriter::with_capacity(
        1 << 20,
        match &a.output {
            Some(p) => Box::new(File::create(p).map_err(|e| ToolError::cannot_run(format!("cannot create {}: {e}", p.display())))?),
            None => Box::new(io::stdout().lock()),
        },
    );
    progress.stage("dumping keys", Unit::Items, engine.count());
    let written = write_all(&engine, a, &mut out, &progress).and_then(|n| out.flush().map(|()| n));
    progress.finish();
    let _ = engine.close();
    let n = written.map_err(|e| ToolError::cannot_run(format!("writing the dump failed: {e}")))?;
    if !a.quiet {
        eprintln!("dumped {n} keys from {}", a.dir.display());
    }
    Ok(0)
}

/// Writes every live key with the prefix, one shard at a time (entries
/// are copied under the shard's lock and written after it is released).
fn write_all(engine: &Engine, a: &DumpArgs, out: &mut dyn Write, progress: &Progress) -> io::Result<u64> {
    let now = engine.now_ms();
    let prefix = a.prefix.as_deref().unwrap_or("").as_bytes();
    let mut n = 0;
    for shard in 0..engine.shard_count() {
        let mut items = Vec::new();
        engine
            .dump_shard(shard, now, |k, v, exp| {
                if k.starts_with(prefix) {
                    items.push(Item::from_dump(k, v, exp));
                }
            })
            .map_err(io::Error::other)?;
        // Sorted within the shard so the same state dumps the same way
        // from one shard to the next; shards come in index order.
        items.sort_by(|x, y| x.key.cmp(&y.key));
        for item in &items {
            match a.format {
                Format::Jsonl => jsonl::write(out, item, now)?,
                Format::Resp => resp::write(out, item)?,
            }
        }
        n += items.len() as u64;
        progress.inc(items.len() as u64);
    }
    Ok(n)
}
