//! Connection commands (PING, ECHO, SELECT, AUTH, HELLO, QUIT, RESET);
//! CLIENT is in `client_cmd.rs`.

use std::sync::atomic::Ordering;

use super::table::Handler;
use super::{arity_error, eq_ignore_case, parse_int, pubsub, txn, Ctx, NOT_INTEGER, SYNTAX};
use crate::server::client::{ClientHandle, ClientState};
use crate::server::Server;

pub use super::client_cmd::client;

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const NO_PASSWORD_SET: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";
/// Version reported by HELLO and INFO: clients gate features on it.
pub const REDIS_VERSION: &str = "7.2.0";

/// At most 128 bytes of a client-supplied argument, for error texts.
pub(super) fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned()
}

/// A subcommand of a container command (CLIENT, COMMAND, CONFIG): name,
/// arity counted from the container's name as Redis does, handler.
pub(super) type Sub = (&'static str, i32, Handler);

/// Finds `argv[1]` in `subs`, checks its arity, records `cmd|sub` as the
/// client's last command (CLIENT LIST `cmd=`), and runs it.
pub(super) fn dispatch(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]], cmd: &str, subs: &[Sub]) {
    let Some(&(name, arity, run)) = subs.iter().find(|s| eq_ignore_case(argv[1], s.0)) else {
        return ctx.out.error(&format!("ERR unknown subcommand '{}'. Try {} HELP.", shown(argv[1]), cmd.to_uppercase()));
    };
    let n = argv.len() as i32;
    let full = format!("{cmd}|{name}");
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return ctx.out.error(&arity_error(&full));
    }
    ctx.client.handle.info().last_cmd = full.into();
    run(ctx, argv)
}

/// HELP: one status line per entry, as Redis's `addReplyHelp`.
pub(super) fn help(ctx: &mut Ctx<'_, '_>, cmd: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

pub fn ping(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if argv.len() > 2 {
        return ctx.out.error(&arity_error("ping"));
    }
    if ctx.client.subscribed() && !ctx.client.resp3 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(argv.get(1).copied().unwrap_or(b""));
    } else if let Some(msg) = argv.get(1) {
        ctx.out.bulk(msg);
    } else {
        ctx.out.simple("PONG");
    }
}

pub fn echo(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    ctx.out.bulk(argv[1]);
}

/// dbkv keeps one database per data directory: only 0 exists.
pub fn select(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    match parse_int(argv[1]) {
        None => ctx.out.error(NOT_INTEGER),
        Some(v) if i32::try_from(v).is_err() => ctx.out.error("ERR value is out of range, value must between -2147483648 and 2147483647"),
        Some(0) => ctx.out.ok(),
        Some(_) => ctx.out.error("ERR DB index is out of range"),
    }
}

/// Equality whose time depends on neither where the inputs first differ
/// nor (below 512 bytes) their lengths: both are compared zero-padded over
/// max(512, longer) bytes, with no early exit.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len()).max(512);
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

/// The only user is `default`; without `--requirepass` it takes any
/// password (Redis's `nopass`).
fn credentials_ok(required: Option<&[u8]>, user: &[u8], pass: &[u8]) -> bool {
    let pass_ok = match required {
        Some(pw) => ct_eq(pw, pass),
        None => true,
    };
    (user == b"default") & pass_ok
}

/// Authenticates the client or logs the failure; true on success.
fn authenticate(ctx: &mut Ctx<'_, '_>, user: &[u8], pass: &[u8]) -> bool {
    let ok = credentials_ok(ctx.srv.settings.requirepass.as_deref(), user, pass);
    if ok {
        ctx.client.authed = true;
    } else {
        let h = &ctx.client.handle;
        tracing::warn!(client = h.id, addr = %h.addr, user = %shown(user), "authentication failed: wrong username or password");
    }
    ok
}

pub fn auth(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if argv.len() > 3 {
        return ctx.out.error(SYNTAX);
    }
    let (user, pass): (&[u8], &[u8]) = if argv.len() == 3 { (argv[1], argv[2]) } else { (b"default", argv[1]) };
    if argv.len() == 2 && ctx.srv.settings.requirepass.is_none() {
        return ctx.out.error(NO_PASSWORD_SET);
    }
    if authenticate(ctx, user, pass) {
        ctx.out.ok()
    } else {
        ctx.out.error(WRONGPASS)
    }
}

/// The options of HELLO after the protocol version.
#[derive(Default, Debug, PartialEq)]
struct HelloOpts<'a> {
    auth: Option<(&'a [u8], &'a [u8])>,
    name: Option<&'a [u8]>,
}

fn parse_hello_opts<'a>(args: &[&'a [u8]]) -> Result<HelloOpts<'a>, String> {
    let mut o = HelloOpts::default();
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if eq_ignore_case(args[i], "auth") && more >= 2 {
            o.auth = Some((args[i + 1], args[i + 2]));
            i += 3;
        } else if eq_ignore_case(args[i], "setname") && more >= 1 {
            o.name = Some(args[i + 1]);
            i += 2;
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", shown(args[i])));
        }
    }
    Ok(o)
}

pub fn hello(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let mut proto = None;
    if let Some(v) = argv.get(1) {
        match parse_int(v) {
            None => return ctx.out.error("ERR Protocol version is not an integer or out of range"),
            Some(v @ 2..=3) => proto = Some(v == 3),
            Some(_) => return ctx.out.error("NOPROTO unsupported protocol version"),
        }
    }
    let opts = match parse_hello_opts(&argv[argv.len().min(2)..]) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(&e),
    };
    if let Some((user, pass)) = opts.auth {
        if !authenticate(ctx, user, pass) {
            return ctx.out.error(WRONGPASS);
        }
    }
    if !ctx.client.authed {
        return ctx.out.error(HELLO_NOAUTH);
    }
    if let Some(name) = opts.name {
        if let Err(e) = set_name(&ctx.client.handle, name) {
            return ctx.out.error(e);
        }
    }
    if let Some(resp3) = proto {
        set_protocol(ctx, resp3);
    }
    let out = &mut ctx.out;
    out.map(7);
    for (k, v) in [("server", "redis"), ("version", REDIS_VERSION)] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"proto");
    out.int(if ctx.client.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.handle.id as i64);
    for (k, v) in [("mode", "standalone"), ("role", "master")] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"modules");
    out.array(0);
}

/// Switches the protocol; this command's reply is already in the new one.
fn set_protocol(ctx: &mut Ctx<'_, '_>, resp3: bool) {
    ctx.client.resp3 = resp3;
    ctx.client.handle.resp3.store(resp3, Ordering::Release);
    ctx.out.resp3 = resp3;
}

/// Redis accepts printable ASCII other than space ('!' to '~').
pub(super) fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

pub(super) fn set_name(h: &ClientHandle, name: &[u8]) -> Result<(), &'static str> {
    if !valid_attr(name) {
        return Err(BAD_NAME);
    }
    h.info().name = name.to_vec();
    Ok(())
}

pub fn quit(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
}

/// Back to a fresh connection's state: no MULTI, watches or
/// subscriptions, RESP2, no name, and unauthenticated if a password is set.
pub fn reset(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    reset_state(ctx.srv, ctx.client);
    ctx.out.resp3 = false;
    ctx.out.simple("RESET");
}

fn reset_state(srv: &Server, c: &mut ClientState) {
    c.multi = None;
    c.multi_failed = false;
    txn::unwatch_all(srv, c);
    pubsub::unsubscribe_all(srv, c);
    c.resp3 = false;
    c.handle.resp3.store(false, Ordering::Release);
    c.authed = srv.settings.requirepass.is_none();
    let mut info = c.handle.info();
    info.in_multi = false;
    info.name.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret\0"));
        assert!(!ct_eq(b"", b"\0"));
        let long = vec![b'x'; 2000];
        assert!(ct_eq(&long, &long.clone()));
        assert!(!ct_eq(&long, &long[..1999]));
    }

    #[test]
    fn credentials() {
        assert!(credentials_ok(Some(b"pw"), b"default", b"pw"));
        assert!(!credentials_ok(Some(b"pw"), b"default", b"px"));
        assert!(!credentials_ok(Some(b"pw"), b"bob", b"pw"));
        assert!(!credentials_ok(Some(b"pw"), b"DEFAULT", b"pw"));
        assert!(credentials_ok(None, b"default", b"anything"));
        assert!(!credentials_ok(None, b"bob", b"anything"));
    }

    #[test]
    fn hello_options() {
        let o = parse_hello_opts(&[b"AUTH", b"default", b"pw", b"setname", b"n"]).unwrap();
        assert_eq!(o, HelloOpts { auth: Some((b"default", b"pw")), name: Some(b"n") });
        assert_eq!(parse_hello_opts(&[]).unwrap(), HelloOpts::default());
        assert_eq!(parse_hello_opts(&[b"AUTH", b"u"]).unwrap_err(), "ERR Syntax error in HELLO option 'AUTH'");
        assert_eq!(parse_hello_opts(&[b"SETNAME"]).unwrap_err(), "ERR Syntax error in HELLO option 'SETNAME'");
        assert_eq!(parse_hello_opts(&[b"foo"]).unwrap_err(), "ERR Syntax error in HELLO option 'foo'");
    }

    #[test]
    fn names_are_printable_without_spaces() {
        assert!(valid_attr(b"worker-1"));
        assert!(valid_attr(b""));
        assert!(!valid_attr(b"a b"));
        assert!(!valid_attr(b"a\nb"));
        assert!(!valid_attr(b"caf\xc3\xa9"));
    }
}
