//! `dbkv load`: reads a dump (JSON Lines or RESP) into a data directory as
//! one batch: the whole input is parsed and validated first, keys that
//! already exist are refused unless `--replace`, and one snapshot is taken
//! at the end, so the directory holds all of the dump or none of it.

use std::io::Read;
use std::path::PathBuf;

use dbkv::engine::list::List;
use dbkv::engine::zset::ZSet;
use dbkv::engine::{Options, Scope, SyncMode, Value, HARD_MAX_VALUE_BYTES};
use dbkv::{Engine, Error};

use super::format::{jsonl, resp, show, validate, BadInput, Format, Item, Val};
use super::{busy, ToolError, ToolResult, EXIT_FINDING};
use crate::progress::{Progress, Unit};

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The data directory (created if missing; its parent must exist).
    pub dir: PathBuf,
    /// The dump to read; `-` or nothing reads stdin.
    pub input: Option<PathBuf>,
    /// Input format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Overwrite keys that already exist (otherwise their presence refuses the whole load).
    #[arg(long)]
    pub replace: bool,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Keys written per transaction, and the bytes after which one is closed
/// early: each transaction is one WAL record, bounded in size.
const TXN_KEYS: usize = 512;
const TXN_BYTES: usize = 16 << 20;

pub fn run(a: &LoadArgs) -> ToolResult<u8> {
    let input = read_input(a)?;
    let items = match parse(a.format, &input) {
        Ok(items) => items,
        Err(b) => {
            eprintln!("error: {}: line {}: {} (nothing was loaded)", source_name(a), b.line, b.msg);
            return Ok(EXIT_FINDING);
        }
    };
    drop(input);
    let progress = Progress::new("recovery", Unit::Bytes, 0, a.quiet);
    let engine = open(a, &progress)?;
    if !a.replace {
        let existing: Vec<&[u8]> = items.iter().map(|i| &i.key[..]).filter(|k| engine.exists(k).unwrap_or(false)).collect();
        if !existing.is_empty() {
            let shown: Vec<String> = existing.iter().take(10).map(|k| show(k)).collect();
            let more = if existing.len() > 10 { format!(" and {} more", existing.len() - 10) } else { String::new() };
            eprintln!("error: {} keys already exist in {}: {}{more}; nothing was loaded (pass --replace to overwrite them)", existing.len(), a.dir.display(), shown.join(", "));
            let _ = engine.close();
            return Ok(EXIT_FINDING);
        }
    }
    progress.stage("loading keys", Unit::Items, items.len() as u64);
    let (loaded, expired) = write(&engine, &items, &progress).map_err(|e| ToolError::cannot_run(format!("loading into {} failed: {e}; keys written so far are in its WAL", a.dir.display())))?;
    progress.finish();
    engine.snapshot().and_then(|()| engine.close()).map_err(|e| ToolError::cannot_run(format!("the final snapshot of {} failed: {e}", a.dir.display())))?;
    if !a.quiet {
        eprintln!("loaded {loaded} keys into {} ({expired} already expired, skipped); snapshot taken", a.dir.display());
    }
    Ok(0)
}

fn source_name(a: &LoadArgs) -> String {
    match &a.input {
        Some(p) if p.as_os_str() != "-" => p.display().to_string(),
        _ => "stdin".to_string(),
    }
}

fn read_input(a: &LoadArgs) -> ToolResult<Vec<u8>> {
    let mut buf = Vec::new();
    let r = match &a.input {
        Some(p) if p.as_os_str() != "-" => std::fs::File::open(p).and_then(|mut f| f.read_to_end(&mut buf)),
        _ => std::io::stdin().lock().read_to_end(&mut buf),
    };
    r.map_err(|e| ToolError::cannot_run(format!("cannot read {}: {e}", source_name(a))))?;
    Ok(buf)
}

fn parse(format: Format, input: &[u8]) -> Result<Vec<Item>, BadInput> {
    let items = match format {
        Format::Jsonl => jsonl::parse(input)?,
        Format::Resp => resp::parse(input)?,
    };
    validate(&items)?;
    Ok(items.into_iter().map(|(_, i)| i).collect())
}

/// Opens the directory for writing; damage refuses the load (`Absolute`)
/// rather than being repaired behind the operator's back.
fn open(a: &LoadArgs, progress: &Progress) -> ToolResult<Engine> {
    let parent = a.dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent.filter(|p| !p.is_dir()) {
        return Err(ToolError::cannot_run(format!("{} does not exist: create it first (load creates only the data directory itself)", p.display())));
    }
    let opts = Options {
        data_dir: Some(a.dir.clone()),
        recovery_mode: dbkv::RecoveryMode::Absolute,
        sync_mode: SyncMode::None,
        // One snapshot, at the end: none while loading.
        snapshot_interval_secs: 0,
        snapshot_ops: 0,
        max_value_bytes: HARD_MAX_VALUE_BYTES,
        progress: Some(progress.recovery_hook()),
        ..Options::default()
    };
    let r = Engine::open(opts);
    progress.finish();
    r.map_err(|e| match e {
        Error::Busy(_) => busy(&a.dir, "stop it first, or load through it with `redis-cli --pipe`"),
        Error::Corruption(m) => ToolError::cannot_run(format!("{m}; repair the directory first (`dbkv check {} --repair`)", a.dir.display())),
        e => ToolError::cannot_run(format!("could not open {}: {e}", a.dir.display())),
    })
}

/// Writes the items (absolute expiries; those already past are skipped);
/// returns (loaded, skipped as expired).
fn write(engine: &Engine, items: &[Item], progress: &Progress) -> dbkv::error::Result<(u64, u64)> {
    let now = engine.now_ms();
    let live: Vec<&Item> = items.iter().filter(|i| i.expires_at == 0 || i.expires_at > now).collect();
    let expired = (items.len() - live.len()) as u64;
    let (locks, rest): (Vec<&Item>, Vec<&Item>) = live.iter().partition(|i| matches!(i.val, Val::Lock { .. }));
    for item in &locks {
        if let Val::Lock { owner, token } = &item.val {
            // A Lock record carries its token; batches cannot hold one.
            engine.restore_lock(&item.key, owner, *token, item.expires_at)?;
        }
    }
    progress.inc(locks.len() as u64);
    let mut start = 0;
    while start < rest.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rest.len() && end - start < TXN_KEYS && (bytes < TXN_BYTES || end == start) {
            bytes += size(rest[end]);
            end += 1;
        }
        let batch = &rest[start..end];
        let keys: Vec<&[u8]> = batch.iter().map(|i| &i.key[..]).collect();
        engine.transact(Scope::Keys(&keys), |t| batch.iter().try_for_each(|i| put(t, i)))??;
        progress.inc(batch.len() as u64);
        start = end;
    }
    Ok((live.len() as u64, expired))
}

fn size(i: &Item) -> usize {
    i.key.len()
        + match &i.val {
            Val::Str(v) => v.len(),
            Val::List(l) => l.iter().map(|e| e.len() + 4).sum(),
            Val::ZSet(z) => z.iter().map(|(_, m)| m.len() + 12).sum(),
            _ => 8,
        }
}

fn put(t: &mut dbkv::engine::Txn<'_>, i: &Item) -> dbkv::error::Result<()> {
    match &i.val {
        Val::Str(v) => t.put(&i.key, v, i.expires_at),
        Val::Int(n) => t.put_int(&i.key, *n, i.expires_at),
        Val::List(elems) => {
            let mut l = List::default();
            for e in elems {
                l.push(false, e);
            }
            t.put_value(&i.key, Value::List(&l), i.expires_at)
        }
        Val::ZSet(pairs) => {
            let mut z = ZSet::new();
            for (s, m) in pairs {
                z.insert(m, *s);
            }
            t.put_value(&i.key, Value::ZSet(&z), i.expires_at)
        }
        Val::Lock { .. } => unreachable!("locks are restored outside transactions"),
    }
}
