//! CLIENT and its subcommands (ID, INFO, LIST, KILL, SETNAME, SETINFO...).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::connection::{dispatch, help, set_name, shown, valid_attr, Sub};
use super::{eq_ignore_case, parse_int, Ctx, NOT_INTEGER, SYNTAX};
use crate::server::client::ClientHandle;
use crate::server::Server;

static CLIENT_SUBS: &[Sub] = &[
    ("id", 2, client_id),
    ("info", 2, client_info),
    ("list", -2, client_list),
    ("kill", -3, client_kill),
    ("getname", 2, client_getname),
    ("setname", 3, client_setname),
    ("setinfo", 4, client_setinfo),
    ("no-evict", 3, client_on_off),
    ("no-touch", 3, client_on_off),
    ("reply", 3, client_reply),
    ("tracking", -3, client_tracking),
    ("getredir", 2, client_getredir),
    ("caching", 3, client_caching),
    ("pause", -3, client_pause),
    ("unpause", 2, client_unpause),
    ("unblock", -3, client_unblock),
    ("help", 2, client_help),
];

pub fn client(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    ctx.client.handle.touch();
    dispatch(ctx, argv, "client", CLIENT_SUBS)
}

fn client_id(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.int(ctx.client.handle.id as i64);
}

fn client_info(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let line = client_line(&ctx.client.handle, Instant::now());
    ctx.out.verbatim(&line);
}

fn client_getname(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let name = ctx.client.handle.info().name.clone();
    ctx.out.bulk_or_null((!name.is_empty()).then_some(&name[..]));
}

fn client_setname(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    match set_name(&ctx.client.handle, argv[2]) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(e),
    }
}

fn client_setinfo(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let (attr, value) = (argv[2], argv[3]);
    let lib_name = eq_ignore_case(attr, "lib-name");
    if !lib_name && !eq_ignore_case(attr, "lib-ver") {
        return ctx.out.error(&format!("ERR Unrecognized option '{}'", shown(attr)));
    }
    if !valid_attr(value) {
        return ctx.out.error(&format!("ERR {} cannot contain spaces, newlines or special characters.", shown(attr)));
    }
    let mut info = ctx.client.handle.info();
    *(if lib_name { &mut info.lib_name } else { &mut info.lib_ver }) = value.to_vec();
    drop(info);
    ctx.out.ok();
}

/// NO-EVICT / NO-TOUCH: dbkv never evicts and keeps no access times, so
/// both are accepted and change nothing.
fn client_on_off(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if eq_ignore_case(argv[2], "on") || eq_ignore_case(argv[2], "off") {
        ctx.out.ok()
    } else {
        ctx.out.error(SYNTAX)
    }
}

fn client_reply(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if eq_ignore_case(argv[2], "on") {
        ctx.out.ok()
    } else if eq_ignore_case(argv[2], "off") || eq_ignore_case(argv[2], "skip") {
        ctx.out.error("ERR dbkv does not support CLIENT REPLY OFF or SKIP: every command gets its reply")
    } else {
        ctx.out.error(SYNTAX)
    }
}

fn client_tracking(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if eq_ignore_case(argv[2], "off") {
        ctx.out.ok()
    } else if eq_ignore_case(argv[2], "on") {
        ctx.out.error("ERR dbkv does not support client-side caching (CLIENT TRACKING)")
    } else {
        ctx.out.error(SYNTAX)
    }
}

/// Tracking is never on: -1, as Redis answers then.
fn client_getredir(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.int(-1);
}

fn client_caching(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
}

fn client_pause(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR dbkv does not support CLIENT PAUSE");
}

fn client_unpause(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.ok();
}

/// Answers a client blocked in BLPOP and friends as if it timed out, or
/// with an UNBLOCKED error: 1, or 0 if that client is not blocked.
fn client_unblock(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let Some(id) = parse_int(argv[2]) else { return ctx.out.error(NOT_INTEGER) };
    let error = match argv.get(3) {
        Some(r) if argv.len() > 4 || !(eq_ignore_case(r, "timeout") || eq_ignore_case(r, "error")) => {
            return ctx.out.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        }
        Some(r) => eq_ignore_case(r, "error"),
        None => false,
    };
    let done = id > 0 && ctx.srv.blocking.unblock(ctx.srv, id as u64, error);
    ctx.out.int(done as i64);
}

fn client_help(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    help(
        ctx,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <id>, ADDR <ip:port>, LADDR <ip:port>,",
            "    TYPE (NORMAL|MASTER|REPLICA|PUBSUB), USER <username>, SKIPME (YES|NO).",
            "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [...]]",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Set client library name or version.",
            "NO-EVICT (ON|OFF), NO-TOUCH (ON|OFF)",
            "    Accepted; dbkv neither evicts clients nor tracks key access times.",
            "REPLY ON",
            "    dbkv always replies (OFF and SKIP are not supported).",
        ],
    );
}

/// Client types of CLIENT LIST TYPE / CLIENT KILL TYPE. dbkv has no
/// replication, so `master` and `replica` match no client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    PubSub,
    Replication,
}

fn parse_kind(b: &[u8]) -> Result<Kind, String> {
    let s = b.to_ascii_lowercase();
    match &s[..] {
        b"normal" => Ok(Kind::Normal),
        b"pubsub" => Ok(Kind::PubSub),
        b"master" | b"replica" | b"slave" => Ok(Kind::Replication),
        _ => Err(format!("ERR Unknown client type '{}'", shown(b))),
    }
}

fn kind_of(h: &ClientHandle) -> Kind {
    let info = h.info();
    if info.subscriptions + info.patterns > 0 {
        Kind::PubSub
    } else {
        Kind::Normal
    }
}

/// One CLIENT LIST / CLIENT INFO line (newline-terminated) in Redis 7.2's
/// field order. Fields dbkv does not track (buffers, memory) read 0; fd is
/// -1 because a client is not tied to one descriptor number callers can use.
pub fn client_line(h: &ClientHandle, now: Instant) -> String {
    let info = h.info().clone();
    let age = now.saturating_duration_since(h.created).as_secs();
    let idle = h.idle_secs(now);
    let mut flags = String::new();
    if info.subscriptions + info.patterns > 0 {
        flags.push('P');
    }
    if info.in_multi {
        flags.push('x');
    }
    if info.blocked {
        flags.push('b');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let cmd = if info.last_cmd.is_empty() { "NULL" } else { info.last_cmd.as_ref() };
    let resp = if h.resp3.load(Ordering::Relaxed) { 3 } else { 2 };
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={age} idle={idle} flags={flags} db=0 sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user=default redir=-1 resp={resp} lib-name={} lib-ver={}\n",
        h.id,
        h.addr,
        h.laddr,
        String::from_utf8_lossy(&info.name),
        info.subscriptions,
        info.patterns,
        if info.in_multi { 0 } else { -1 },
        String::from_utf8_lossy(&info.lib_name),
        String::from_utf8_lossy(&info.lib_ver),
    )
}

/// What CLIENT LIST shows.
#[derive(Debug, PartialEq)]
enum ListFilter {
    All,
    Kind(Kind),
    Ids(Vec<i64>),
}

fn parse_list_filter(args: &[&[u8]]) -> Result<ListFilter, String> {
    match args {
        [] => Ok(ListFilter::All),
        [t, k] if eq_ignore_case(t, "type") => parse_kind(k).map(ListFilter::Kind),
        [t, ids @ ..] if eq_ignore_case(t, "id") && !ids.is_empty() => {
            ids.iter().map(|i| parse_int(i).ok_or_else(|| "ERR Invalid client ID".to_string())).collect::<Result<_, _>>().map(ListFilter::Ids)
        }
        _ => Err(SYNTAX.into()),
    }
}

fn client_list(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let filter = match parse_list_filter(&argv[2..]) {
        Ok(f) => f,
        Err(e) => return ctx.out.error(&e),
    };
    let all = ctx.srv.clients.all();
    let now = Instant::now();
    let mut text = String::new();
    match filter {
        ListFilter::Ids(ids) => {
            for id in ids {
                if let Some(h) = all.iter().find(|h| h.id as i64 == id) {
                    text.push_str(&client_line(h, now));
                }
            }
        }
        f => {
            for h in all.iter().filter(|h| f == ListFilter::All || f == ListFilter::Kind(kind_of(h))) {
                text.push_str(&client_line(h, now));
            }
        }
    }
    ctx.out.verbatim(&text);
}

/// The filters of CLIENT KILL; every one given must match.
#[derive(Debug, Default, PartialEq)]
struct KillFilter<'a> {
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    id: Option<u64>,
    kind: Option<Kind>,
    skipme: bool,
}

/// `CLIENT KILL addr` (the old form: may kill the caller) or the
/// option/value form (skips the caller unless SKIPME no).
fn parse_kill<'a>(args: &[&'a [u8]]) -> Result<KillFilter<'a>, String> {
    let mut f = KillFilter { skipme: true, ..Default::default() };
    if let [addr] = args {
        f.addr = Some(addr);
        f.skipme = false;
        return Ok(f);
    }
    for pair in args.chunks(2) {
        let [opt, v] = pair else { return Err(SYNTAX.into()) };
        if eq_ignore_case(opt, "id") {
            f.id = Some(parse_int(v).filter(|&i| i > 0).ok_or("ERR client-id should be greater than 0")? as u64);
        } else if eq_ignore_case(opt, "type") {
            f.kind = Some(parse_kind(v)?);
        } else if eq_ignore_case(opt, "addr") {
            f.addr = Some(v);
        } else if eq_ignore_case(opt, "laddr") {
            f.laddr = Some(v);
        } else if eq_ignore_case(opt, "user") {
            if *v != b"default" {
                return Err(format!("ERR No such user '{}'", shown(v)));
            }
        } else if eq_ignore_case(opt, "skipme") {
            if !eq_ignore_case(v, "yes") && !eq_ignore_case(v, "no") {
                return Err(SYNTAX.into());
            }
            f.skipme = eq_ignore_case(v, "yes");
        } else {
            return Err(SYNTAX.into());
        }
    }
    Ok(f)
}

impl KillFilter<'_> {
    fn matches(&self, h: &ClientHandle, me: u64) -> bool {
        self.addr.is_none_or(|a| a == h.addr.as_bytes())
            && self.laddr.is_none_or(|a| a == h.laddr.as_bytes())
            && self.id.is_none_or(|id| id == h.id)
            && self.kind.is_none_or(|k| k == kind_of(h))
            && !(self.skipme && h.id == me)
    }
}

fn client_kill(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let filter = match parse_kill(&argv[2..]) {
        Ok(f) => f,
        Err(e) => return ctx.out.error(&e),
    };
    let me = ctx.client.handle.id;
    let mut killed = 0;
    for h in ctx.srv.clients.all().iter().filter(|h| filter.matches(h, me)) {
        killed += 1;
        if h.id == me {
            ctx.client.close_after_reply = true;
        } else {
            kill(ctx.srv, h);
        }
    }
    tracing::info!(client = me, addr = %ctx.client.handle.addr, killed, "CLIENT KILL");
    match (argv.len(), killed) {
        (3, 0) => ctx.out.error("ERR No such client"),
        (3, _) => ctx.out.ok(),
        _ => ctx.out.int(killed),
    }
}

/// Flags another client for closing and wakes the worker that owns it.
fn kill(srv: &Server, h: &ClientHandle) {
    h.kill.store(true, Ordering::Release);
    if let Some(w) = srv.wakers.get().and_then(|w| w.get(h.worker)) {
        w.notify(h.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters() {
        assert_eq!(parse_list_filter(&[]).unwrap(), ListFilter::All);
        assert_eq!(parse_list_filter(&[b"type", b"PUBSUB"]).unwrap(), ListFilter::Kind(Kind::PubSub));
        assert_eq!(parse_list_filter(&[b"TYPE", b"replica"]).unwrap(), ListFilter::Kind(Kind::Replication));
        assert_eq!(parse_list_filter(&[b"id", b"3", b"-1"]).unwrap(), ListFilter::Ids(vec![3, -1]));
        assert_eq!(parse_list_filter(&[b"id", b"x"]).unwrap_err(), "ERR Invalid client ID");
        assert_eq!(parse_list_filter(&[b"type", b"foo"]).unwrap_err(), "ERR Unknown client type 'foo'");
        assert_eq!(parse_list_filter(&[b"id"]).unwrap_err(), SYNTAX);
        assert_eq!(parse_list_filter(&[b"foo"]).unwrap_err(), SYNTAX);
    }

    #[test]
    fn kill_filters() {
        let old = parse_kill(&[b"1.2.3.4:5"]).unwrap();
        assert_eq!(old, KillFilter { addr: Some(b"1.2.3.4:5"), skipme: false, ..Default::default() });
        let new = parse_kill(&[b"ID", b"7", b"skipme", b"no", b"user", b"default"]).unwrap();
        assert_eq!(new, KillFilter { id: Some(7), skipme: false, ..Default::default() });
        assert_eq!(parse_kill(&[b"id", b"0"]).unwrap_err(), "ERR client-id should be greater than 0");
        assert_eq!(parse_kill(&[b"id", b"x"]).unwrap_err(), "ERR client-id should be greater than 0");
        assert_eq!(parse_kill(&[b"user", b"bob"]).unwrap_err(), "ERR No such user 'bob'");
        assert_eq!(parse_kill(&[b"skipme", b"maybe"]).unwrap_err(), SYNTAX);
        assert_eq!(parse_kill(&[b"id", b"1", b"addr"]).unwrap_err(), SYNTAX);
        assert_eq!(parse_kill(&[b"foo", b"bar"]).unwrap_err(), SYNTAX);

        let h = ClientHandle::new(7, 0, 0, "127.0.0.1:5000".into(), "127.0.0.1:6380".into());
        assert!(parse_kill(&[b"127.0.0.1:5000"]).unwrap().matches(&h, 7));
        assert!(!parse_kill(&[b"id", b"7"]).unwrap().matches(&h, 7), "skips the caller by default");
        assert!(parse_kill(&[b"laddr", b"127.0.0.1:6380", b"type", b"normal"]).unwrap().matches(&h, 1));
        assert!(!parse_kill(&[b"type", b"pubsub"]).unwrap().matches(&h, 1));
        h.info().subscriptions = 1;
        assert!(parse_kill(&[b"type", b"pubsub"]).unwrap().matches(&h, 1));
    }

    #[test]
    fn client_line_format() {
        let h = ClientHandle::new(9, 0, 0, "127.0.0.1:5000".into(), "127.0.0.1:6380".into());
        {
            let mut i = h.info();
            i.name = b"web".to_vec();
            i.last_cmd = "client|list".into();
            i.in_multi = true;
        }
        let line = client_line(&h, h.created);
        assert!(line.starts_with("id=9 addr=127.0.0.1:5000 laddr=127.0.0.1:6380 fd=-1 name=web age=0 idle=0 flags=x db=0 sub=0 psub=0 ssub=0 multi=0 "), "{line}");
        assert!(line.ends_with(" cmd=client|list user=default redir=-1 resp=2 lib-name= lib-ver=\n"), "{line}");
        let fresh = ClientHandle::new(1, 0, 0, "a:1".into(), "b:2".into());
        assert!(client_line(&fresh, fresh.created).contains(" flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 "));
        assert!(client_line(&fresh, fresh.created).contains(" cmd=NULL "));
    }
}
