//! Server commands (COMMAND, CONFIG, TIME, SAVE, BGSAVE, SHUTDOWN) and
//! dbkv's own (DBKV.LOCK...). INFO lives in `info.rs`.

use std::sync::atomic::Ordering;

use dbkv::engine::{LockOutcome, OwnerOutcome};

use super::connection::{dispatch, help, shown, Sub};
use super::{engine_error, eq_ignore_case, lookup, parse_int, Ctx, Spec, COMMANDS, SYNTAX};
use crate::server::reply::Reply;
use crate::server::{glob, unix_secs, Server, SyncPolicy};

pub use super::info::info;

const NO_PERSISTENCE: &str = "ERR persistence is disabled (--disable-persistence): there is nothing to save";

// ---- COMMAND ------------------------------------------------------------

static COMMAND_SUBS: &[Sub] = &[
    ("count", 2, command_count),
    ("info", -2, command_info),
    ("docs", -2, command_docs),
    ("list", -2, command_list),
    ("getkeys", -4, command_getkeys),
    ("help", 2, command_help),
];

pub fn command(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if argv.len() == 1 {
        ctx.out.array(COMMANDS.len());
        return COMMANDS.iter().for_each(|s| command_entry(&mut ctx.out, s));
    }
    dispatch(ctx, argv, "command", COMMAND_SUBS)
}

/// One command in COMMAND / COMMAND INFO's format: name, arity, flags,
/// first key, last key, step, ACL categories, tips, key specs,
/// subcommands (dbkv has no ACL categories, tips or key specs).
fn command_entry(out: &mut Reply<'_>, s: &Spec) {
    out.array(10);
    out.bulk(s.name.as_bytes());
    out.int(s.arity as i64);
    let flags = s.flag_names();
    out.set(flags.len());
    flags.iter().for_each(|f| out.simple(f));
    out.int(s.first as i64);
    out.int(s.last as i64);
    out.int(s.step as i64);
    out.set(0);
    out.set(0);
    out.array(0);
    out.array(0);
}

fn command_count(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.int(COMMANDS.len() as i64);
}

fn command_info(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if argv.len() == 2 {
        ctx.out.array(COMMANDS.len());
        return COMMANDS.iter().for_each(|s| command_entry(&mut ctx.out, s));
    }
    ctx.out.array(argv.len() - 2);
    for name in &argv[2..] {
        match lookup(name) {
            Some(s) => command_entry(&mut ctx.out, s),
            None => ctx.out.null(),
        }
    }
}

/// COMMAND DOCS: name -> {summary, since, group, complexity, arguments};
/// enough for redis-cli's help and hints. Unknown names are left out.
fn command_docs(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let specs: Vec<&Spec> = if argv.len() == 2 { COMMANDS.iter().collect() } else { argv[2..].iter().filter_map(|n| lookup(n)).collect() };
    let out = &mut ctx.out;
    out.map(specs.len());
    for s in specs {
        out.bulk(s.name.as_bytes());
        out.map(5);
        for (k, v) in [("summary", s.summary), ("since", "1.0.0"), ("group", s.group), ("complexity", "")] {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
        out.bulk(b"arguments");
        out.array(0);
    }
}

/// COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]: dbkv has no
/// modules and no ACL categories, so only PATTERN can match anything.
fn command_list(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let names: Vec<&[u8]> = match &argv[2..] {
        [] => COMMANDS.iter().map(|s| s.name.as_bytes()).collect(),
        [f, kind, p] if eq_ignore_case(f, "filterby") => {
            if eq_ignore_case(kind, "pattern") {
                let p = p.to_ascii_lowercase();
                COMMANDS.iter().map(|s| s.name.as_bytes()).filter(|n| glob::matches(&p, n)).collect()
            } else if eq_ignore_case(kind, "module") || eq_ignore_case(kind, "aclcat") {
                Vec::new()
            } else {
                return ctx.out.error(SYNTAX);
            }
        }
        _ => return ctx.out.error(SYNTAX),
    };
    ctx.out.bulks(names.into_iter());
}

/// The key arguments of a full command, or the error COMMAND GETKEYS gives.
fn keys_of<'k>(call: &[&'k [u8]]) -> Result<Vec<&'k [u8]>, &'static str> {
    let spec = lookup(call[0]).ok_or("ERR Invalid command specified")?;
    if spec.first <= 0 {
        return Err("ERR The command has no key arguments");
    }
    let n = call.len() as i32;
    if (spec.arity > 0 && n != spec.arity) || n < -spec.arity {
        return Err("ERR Invalid number of arguments specified for command");
    }
    Ok(spec.keys(call))
}

fn command_getkeys(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    match keys_of(&argv[2..]) {
        Ok(keys) => ctx.out.bulks(keys.into_iter()),
        Err(e) => ctx.out.error(e),
    }
}

fn command_help(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    help(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST [FILTERBY (MODULE <name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about the given commands (all if none given).",
            "DOCS [<command-name> ...]",
            "    Return documentation details about the given commands (all if none given).",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
        ],
    );
}

// ---- CONFIG -------------------------------------------------------------

static CONFIG_SUBS: &[Sub] = &[
    ("get", -3, config_get),
    ("set", -4, config_set),
    ("resetstat", 2, config_resetstat),
    ("rewrite", 2, config_rewrite),
    ("help", 2, config_help),
];

pub fn config(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    dispatch(ctx, argv, "config", CONFIG_SUBS)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// "PointInTime" (the flag's Debug text) -> "point-in-time".
fn kebab(camel: &str) -> String {
    let mut s = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('-');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

/// Every parameter CONFIG GET knows: Redis's names where one fits (with
/// dbkv's value), then dbkv's own.
fn config_params(srv: &Server) -> Vec<(&'static str, String)> {
    let s = &srv.settings;
    let dir = std::fs::canonicalize(&s.data_dir).map_or_else(|_| s.data_dir.clone(), |p| p.display().to_string());
    let fsync = match s.sync {
        SyncPolicy::Always => "always",
        SyncPolicy::Interval => "everysec",
        SyncPolicy::None => "no",
    };
    let out = s.output_buffer_limit;
    vec![
        ("maxclients", s.maxclients.to_string()),
        ("port", s.port.to_string()),
        ("bind", s.bind.join(" ")),
        ("unixsocket", s.unixsocket.clone().unwrap_or_default()),
        ("requirepass", s.requirepass.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default()),
        ("appendonly", yes_no(s.persistence)),
        ("appendfsync", fsync.into()),
        ("save", String::new()),
        ("databases", "1".into()),
        ("timeout", "0".into()),
        ("proto-max-bulk-len", s.max_bulk.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("dir", dir),
        ("dbfilename", String::new()),
        ("client-query-buffer-limit", s.query_buffer_limit.to_string()),
        ("client-output-buffer-limit", format!("normal {out} 0 0 slave {out} 0 0 pubsub {out} 0 0")),
        ("cluster-enabled", "no".into()),
        ("dbkv-persistence", yes_no(s.persistence)),
        ("dbkv-sync", format!("{:?}", s.sync).to_lowercase()),
        ("dbkv-fsync-interval-ms", s.fsync_interval_ms.to_string()),
        ("dbkv-threads", s.threads.to_string()),
        ("dbkv-shards", s.shards.to_string()),
        ("dbkv-max-value-bytes", s.max_value_bytes.to_string()),
        ("dbkv-snapshot-interval-secs", s.snapshot_interval_secs.to_string()),
        ("dbkv-snapshot-ops", s.snapshot_ops.to_string()),
        ("dbkv-snapshot-keep", s.snapshot_keep.to_string()),
        ("dbkv-recovery-mode", kebab(&s.recovery_mode)),
    ]
}

/// The (name as reported, value) pairs `patterns` select, each parameter
/// once. A pattern without glob characters is a case-insensitive name
/// and is reported as given, as Redis does.
fn select_params<'a>(params: &'a [(&'static str, String)], patterns: &[&[u8]]) -> Vec<(String, &'a str)> {
    let mut picked: Vec<(String, &'a str)> = Vec::new();
    let mut seen = vec![false; params.len()];
    for pat in patterns {
        let lower = pat.to_ascii_lowercase();
        let literal = !pat.iter().any(|c| b"*?[".contains(c));
        for (i, (name, value)) in params.iter().enumerate() {
            let hit = if literal { name.as_bytes() == lower } else { glob::matches(&lower, name.as_bytes()) };
            if hit && !seen[i] {
                seen[i] = true;
                picked.push((if literal { shown(pat) } else { name.to_string() }, value));
            }
        }
    }
    picked
}

fn config_get(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let params = config_params(ctx.srv);
    let picked = select_params(&params, &argv[2..]);
    ctx.out.map(picked.len());
    for (name, value) in picked {
        ctx.out.bulk(name.as_bytes());
        ctx.out.bulk(value.as_bytes());
    }
}

fn config_set(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR CONFIG SET is not supported by dbkv: restart with the flag instead");
}

fn config_resetstat(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let c = &ctx.srv.counters;
    for n in [&c.connections_received, &c.commands_processed, &c.rejected_connections, &c.net_input_bytes, &c.net_output_bytes, &c.keyspace_hits, &c.keyspace_misses] {
        n.store(0, Ordering::Relaxed);
    }
    ctx.out.ok();
}

fn config_rewrite(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR dbkv has no configuration file to rewrite: its settings come from flags and environment variables");
}

fn config_help(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    help(
        ctx,
        "CONFIG",
        &[
            "GET <pattern> [<pattern> ...]",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Not supported by dbkv: restart with the flag instead.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
        ],
    );
}

// ---- time and persistence -------------------------------------------------

pub fn time(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk(d.as_secs().to_string().as_bytes());
    ctx.out.bulk(d.subsec_micros().to_string().as_bytes());
}

pub fn lastsave(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.int(ctx.srv.lastsave.load(Ordering::Relaxed) as i64);
}

/// Takes a snapshot and returns once it is durable.
fn snapshot(srv: &Server) -> Result<(), String> {
    if !srv.settings.persistence {
        return Err(NO_PERSISTENCE.into());
    }
    srv.engine.snapshot().map_err(|e| engine_error(&e))?;
    srv.lastsave.store(unix_secs(), Ordering::Relaxed);
    srv.counters.dirty.store(0, Ordering::Relaxed);
    Ok(())
}

pub fn save(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    if ctx.srv.bgsaves.load(Ordering::Relaxed) > 0 {
        return ctx.out.error("ERR Background save already in progress");
    }
    match snapshot(ctx.srv) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

pub fn bgsave(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let schedule = match &argv[1..] {
        [] => false,
        [s] if eq_ignore_case(s, "schedule") => true,
        _ => return ctx.out.error(SYNTAX),
    };
    if !ctx.srv.settings.persistence {
        return ctx.out.error(NO_PERSISTENCE);
    }
    let running = ctx.srv.bgsaves.load(Ordering::Relaxed) > 0;
    if running && !schedule {
        return ctx.out.error("ERR Background save already in progress");
    }
    match start_bgsave(ctx.srv) {
        Ok(()) if running => ctx.out.simple("Background saving scheduled"),
        Ok(()) => ctx.out.simple("Background saving started"),
        Err(e) => ctx.out.error(&e),
    }
}

/// Runs a snapshot on its own thread (the engine queues snapshots, so one
/// started while another runs follows it). Without the server's `Arc`
/// (see `Server::shared`) the snapshot runs here, before the reply.
fn start_bgsave(srv: &Server) -> Result<(), String> {
    let Some(arc) = srv.arc() else {
        tracing::debug!("BGSAVE runs in the foreground: the server was not made with Server::shared");
        let r = snapshot(srv);
        srv.last_bgsave_ok.store(r.is_ok(), Ordering::Relaxed);
        return r;
    };
    arc.bgsaves.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new().name("dbkv-bgsave".into()).spawn({
        let srv = arc.clone();
        move || {
            let r = snapshot(&srv);
            match &r {
                Ok(()) => tracing::info!("background save done"),
                Err(e) => tracing::warn!("background save failed: {e}"),
            }
            srv.last_bgsave_ok.store(r.is_ok(), Ordering::Relaxed);
            srv.bgsaves.fetch_sub(1, Ordering::Relaxed);
        }
    });
    spawned.map(drop).map_err(|e| {
        arc.bgsaves.fetch_sub(1, Ordering::Relaxed);
        format!("ERR could not start the background save: {e}")
    })
}

/// SHUTDOWN's options.
#[derive(Debug, Default, PartialEq)]
struct ShutdownOpts {
    /// SAVE (true) or NOSAVE (false).
    save: Option<bool>,
    force: bool,
    abort: bool,
}

fn parse_shutdown(args: &[&[u8]]) -> Result<ShutdownOpts, &'static str> {
    let mut o = ShutdownOpts::default();
    let mut now = false;
    for a in args {
        let save = eq_ignore_case(a, "save");
        if save || eq_ignore_case(a, "nosave") {
            if o.save == Some(!save) {
                return Err(SYNTAX);
            }
            o.save = Some(save);
        } else if eq_ignore_case(a, "now") {
            now = true;
        } else if eq_ignore_case(a, "force") {
            o.force = true;
        } else if eq_ignore_case(a, "abort") {
            o.abort = true;
        } else {
            return Err(SYNTAX);
        }
    }
    if o.abort && (o.save.is_some() || o.force || now) {
        return Err(SYNTAX);
    }
    Ok(o)
}

/// Starts the graceful shutdown and closes this connection without a
/// reply, as Redis does. NOW is accepted: dbkv never waits for replicas.
pub fn shutdown(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let o = match parse_shutdown(&argv[1..]) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    if o.abort {
        return ctx.out.error("ERR No shutdown in progress.");
    }
    let (id, addr) = (ctx.client.handle.id, ctx.client.handle.addr.clone());
    if o.save == Some(true) {
        if let Err(e) = snapshot(ctx.srv) {
            tracing::warn!(client = id, %addr, "SHUTDOWN SAVE: the snapshot failed: {e}");
            if !o.force {
                return ctx.out.error("ERR Errors trying to SHUTDOWN. Check logs.");
            }
        }
    }
    tracing::warn!(client = id, %addr, "SHUTDOWN requested by a client: shutting down");
    ctx.srv.request_shutdown();
    ctx.client.close_after_reply = true;
}

// ---- DBKV.* -------------------------------------------------------------

const BAD_TTL: &str = "ERR ttl_ms must be a positive integer (milliseconds)";

/// A lock TTL: the usual integer error for non-numbers, a dbkv one for
/// values that are not positive (a lock must expire).
fn ttl_ms(b: &[u8]) -> Result<u64, &'static str> {
    match parse_int(b) {
        None => Err(super::NOT_INTEGER),
        Some(v) if v <= 0 => Err(BAD_TTL),
        Some(v) => Ok(v as u64),
    }
}

pub fn lock(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let ttl = match ttl_ms(argv[3]) {
        Ok(t) => t,
        Err(m) => return ctx.out.error(m),
    };
    match ctx.srv.engine.lock(argv[1], argv[2], ttl) {
        Ok(LockOutcome::Granted(token)) => ctx.out.int(token as i64),
        Ok(LockOutcome::Locked) => ctx.out.null(),
        Err(e) => ctx.engine_err(&e),
    }
}

fn owner_reply(ctx: &mut Ctx<'_, '_>, r: Result<OwnerOutcome, dbkv::Error>) {
    match r {
        Ok(OwnerOutcome::Done) => ctx.out.int(1),
        Ok(OwnerOutcome::NotFound) => ctx.out.int(0),
        Ok(OwnerOutcome::NotOwner) => ctx.out.int(-1),
        Err(e) => ctx.engine_err(&e),
    }
}

pub fn unlock(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let r = ctx.srv.engine.unlock(argv[1], argv[2]);
    owner_reply(ctx, r);
}

pub fn extendlock(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let ttl = match ttl_ms(argv[3]) {
        Ok(t) => t,
        Err(m) => return ctx.out.error(m),
    };
    let r = ctx.srv.engine.extend_lock(argv[1], argv[2], ttl);
    owner_reply(ctx, r);
}

pub fn sync(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    match ctx.srv.engine.sync() {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.engine_err(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(f: impl FnOnce(&mut Reply<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        f(&mut Reply { buf: &mut buf, resp3: false });
        buf
    }

    #[test]
    fn command_entry_format() {
        let get = reply(|r| command_entry(r, lookup(b"get").unwrap()));
        assert_eq!(get, b"*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n");
        let mset = reply(|r| command_entry(r, lookup(b"mset").unwrap()));
        assert!(mset.ends_with(b":1\r\n:-1\r\n:2\r\n*0\r\n*0\r\n*0\r\n*0\r\n"));
    }

    #[test]
    fn getkeys() {
        assert_eq!(keys_of(&[b"mset", b"a", b"1", b"b", b"2"]).unwrap(), vec![&b"a"[..], b"b"]);
        assert_eq!(keys_of(&[b"GET", b"k"]).unwrap(), vec![&b"k"[..]]);
        assert_eq!(keys_of(&[b"nosuch", b"k"]).unwrap_err(), "ERR Invalid command specified");
        assert_eq!(keys_of(&[b"ping", b"x"]).unwrap_err(), "ERR The command has no key arguments");
        assert_eq!(keys_of(&[b"get", b"a", b"b"]).unwrap_err(), "ERR Invalid number of arguments specified for command");
        assert_eq!(keys_of(&[b"set", b"a"]).unwrap_err(), "ERR Invalid number of arguments specified for command");
    }

    #[test]
    fn config_selection() {
        let params: Vec<(&'static str, String)> = vec![("maxclients", "10".into()), ("maxmemory", "0".into()), ("port", "6380".into())];
        let names = |pats: &[&[u8]]| select_params(&params, pats).into_iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>();
        assert_eq!(names(&[b"max*"]), ["maxclients=10", "maxmemory=0"]);
        assert_eq!(names(&[b"PORT", b"port", b"*"]), ["PORT=6380", "maxclients=10", "maxmemory=0"]);
        assert_eq!(names(&[b"MAX*"]), ["maxclients=10", "maxmemory=0"]);
        assert!(names(&[b"nosuch"]).is_empty());
        assert_eq!(kebab("PointInTime"), "point-in-time");
        assert_eq!(kebab("Absolute"), "absolute");
    }

    #[test]
    fn shutdown_options() {
        assert_eq!(parse_shutdown(&[]).unwrap(), ShutdownOpts::default());
        assert_eq!(parse_shutdown(&[b"save", b"NOW", b"force"]).unwrap(), ShutdownOpts { save: Some(true), force: true, abort: false });
        assert_eq!(parse_shutdown(&[b"NOSAVE"]).unwrap().save, Some(false));
        assert!(parse_shutdown(&[b"abort"]).unwrap().abort);
        assert_eq!(parse_shutdown(&[b"save", b"nosave"]), Err(SYNTAX));
        assert_eq!(parse_shutdown(&[b"abort", b"now"]), Err(SYNTAX));
        assert_eq!(parse_shutdown(&[b"foo"]), Err(SYNTAX));
    }

    #[test]
    fn lock_ttl() {
        assert_eq!(ttl_ms(b"1500"), Ok(1500));
        assert_eq!(ttl_ms(b"0"), Err(BAD_TTL));
        assert_eq!(ttl_ms(b"-5"), Err(BAD_TTL));
        assert_eq!(ttl_ms(b"1.5"), Err(super::super::NOT_INTEGER));
    }
}
