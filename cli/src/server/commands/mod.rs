//! The command table and the path every command takes: lookup, auth,
//! arity, pub/sub context, MULTI queueing, then its handler.
//!
//! Handlers that touch keys run through `Ctx::atomically`: inside EXEC
//! that is the EXEC's transaction, otherwise a one-command transaction
//! over the command's keys. So every read-modify-write is atomic and logs
//! its result as one record, and one implementation serves both paths.
//! The hottest commands (GET, plain SET, MGET, MSET, INCR...) take a
//! direct engine call when not inside EXEC.

mod admin;
mod client_cmd;
mod connection;
mod expire;
mod fenced;
mod info;
mod keys;
pub mod lists;
pub mod lists_blocking;
mod pubsub;
mod scan;
mod score;
mod strings;
mod table;
mod txn;
mod zrange;
mod zsets;

use std::sync::atomic::Ordering;
use std::time::Instant;

use dbkv::engine::{Scope, Txn};
use dbkv::Error;

use super::client::ClientState;
use super::reply::Reply;
use super::Server;

pub use table::{lookup, Spec, COMMANDS};

/// Command flags (`Spec::flags`).
pub mod flag {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    /// Allowed before AUTH.
    pub const NOAUTH: u32 = 1 << 2;
    /// Allowed while subscribed in RESP2.
    pub const PUBSUB_OK: u32 = 1 << 3;
    /// Runs at once even inside MULTI (MULTI, EXEC, DISCARD, WATCH, ...).
    pub const NO_QUEUE: u32 = 1 << 4;
    /// Refused inside MULTI: it waits for engine work that would need the
    /// locks EXEC holds.
    pub const NO_MULTI: u32 = 1 << 5;
    /// Reads or writes every key: inside EXEC it needs every shard locked.
    pub const ALL_KEYS: u32 = 1 << 6;
    pub const ADMIN: u32 = 1 << 7;
    pub const FAST: u32 = 1 << 8;
    pub const PUBSUB: u32 = 1 << 9;
    pub const CONNECTION: u32 = 1 << 10;
}

pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";

/// What a handler works with.
pub struct Ctx<'a, 't> {
    pub srv: &'a Server,
    pub client: &'a mut ClientState,
    pub out: Reply<'a>,
    /// The EXEC transaction the command runs in, if any.
    pub txn: Option<&'a mut Txn<'t>>,
}

impl Ctx<'_, '_> {
    /// Runs `f` in the EXEC transaction, or in a new one over `keys`. `f`
    /// writes its reply last: on an engine error its output is replaced by
    /// the error.
    pub fn atomically(&mut self, keys: &[&[u8]], f: impl FnOnce(&mut Txn<'_>, &mut Reply<'_>) -> Result<(), Error>) {
        let mark = self.out.buf.len();
        let r = match self.txn.as_deref_mut() {
            Some(t) => f(t, &mut self.out),
            None => {
                let out = &mut self.out;
                self.srv.engine.transact(Scope::Keys(keys), |t| f(t, out)).and_then(|r| r)
            }
        };
        if let Err(e) = r {
            self.out.buf.truncate(mark);
            self.out.error(&engine_error(&e));
        }
    }

    /// Like `atomically`, over every shard (FLUSHALL, KEYS in EXEC).
    pub fn atomically_all(&mut self, f: impl FnOnce(&mut Txn<'_>, &mut Reply<'_>) -> Result<(), Error>) {
        let mark = self.out.buf.len();
        let r = match self.txn.as_deref_mut() {
            Some(t) => f(t, &mut self.out),
            None => {
                let out = &mut self.out;
                self.srv.engine.transact(Scope::All, |t| f(t, out)).and_then(|r| r)
            }
        };
        if let Err(e) = r {
            self.out.buf.truncate(mark);
            self.out.error(&engine_error(&e));
        }
    }

    /// Reports that this command gave the list at `key` elements: clients
    /// blocked on it are served once the command (or its EXEC) is over.
    /// Called after the write holds its shard lock, so reading the count
    /// here cannot miss a client blocking meanwhile (`server::blocking`).
    pub fn key_ready(&mut self, key: &[u8]) {
        if self.srv.blocking.has_waiters() {
            self.client.ready.push(key.to_vec());
        }
    }

    /// Writes the error of a failed direct engine call.
    pub fn engine_err(&mut self, e: &Error) {
        self.out.error(&engine_error(e));
    }
}

/// The reply for an engine error, with the error code clients expect.
pub fn engine_error(e: &Error) -> String {
    match e {
        Error::NotInteger => NOT_INTEGER.into(),
        Error::WrongType => WRONGTYPE.into(),
        Error::Overflow => "ERR increment or decrement would overflow".into(),
        Error::Failed(m) => format!("MISCONF dbkv could not write or fsync its WAL and accepts no commands until restarted: {m}"),
        Error::Busy(m) => format!("BUSY {m}"),
        Error::InvalidArgument(m) | Error::TooLarge(m) => format!("ERR {m}"),
        other => format!("ERR {other}"),
    }
}

/// Redis's reply for an operation on a key of another type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

pub fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

fn unknown_command(argv: &[&[u8]]) -> String {
    let name = String::from_utf8_lossy(&argv[0][..argv[0].len().min(128)]).into_owned();
    let mut args = String::new();
    for a in argv[1..].iter() {
        if args.len() >= 128 {
            break;
        }
        args.push_str(&format!("'{}' ", String::from_utf8_lossy(&a[..a.len().min(128)])));
    }
    format!("ERR unknown command '{name}', with args beginning with: {args}")
}

/// Runs one command and appends its reply to `out`.
pub fn execute(srv: &Server, state: &mut ClientState, argv: &[&[u8]], out: &mut Vec<u8>) {
    state.wrote = false;
    let Some(name) = argv.first() else { return };
    srv.counters.commands_processed.fetch_add(1, Ordering::Relaxed);
    let mut reply = Reply { buf: out, resp3: state.resp3 };
    let Some(spec) = admit(srv, state, name, argv, &mut reply) else {
        // Answered without running: the next command's time starts now.
        state.clock = Instant::now();
        return;
    };
    if spec.flags & flag::WRITE != 0 {
        state.wrote = true;
        srv.counters.dirty.fetch_add(1, Ordering::Relaxed);
    }
    state.handle.info().last_cmd = std::borrow::Cow::Borrowed(spec.name);
    // The end of the previous command (or the batch's start): at most one
    // command's time ago, and IDLE counts whole seconds.
    state.handle.touch_at(state.clock);
    call(spec, &mut Ctx { srv, client: state, out: reply, txn: None }, argv);
    if !state.ready.is_empty() {
        // Every transaction of the command has committed: no shard lock
        // is held, as `Blocking::serve` requires.
        srv.blocking.serve(srv, &mut state.ready);
    }
}

/// The command to run, or `None` when it was answered here: unknown,
/// refused, or queued inside MULTI.
fn admit(srv: &Server, state: &mut ClientState, name: &[u8], argv: &[&[u8]], reply: &mut Reply<'_>) -> Option<&'static Spec> {
    let Some(spec) = lookup(name) else {
        fail_in_multi(state);
        reply.error(&unknown_command(argv));
        return None;
    };
    if let Some(why) = refusal(spec, state, argv) {
        srv.commands.reject(state.handle.worker, spec.index());
        reply.error(&why);
        return None;
    }
    if let Some(queue) = state.multi.as_mut() {
        if spec.flags & flag::NO_QUEUE == 0 {
            queue.push(argv.iter().map(|a| a.to_vec()).collect());
            reply.simple("QUEUED");
            return None;
        }
    }
    Some(spec)
}

/// Why a known command is refused before it runs (Redis counts these as
/// the command's `rejected_calls`); marks the MULTI failed where Redis does.
fn refusal(spec: &Spec, state: &mut ClientState, argv: &[&[u8]]) -> Option<String> {
    if !state.authed && spec.flags & flag::NOAUTH == 0 {
        fail_in_multi(state);
        return Some("NOAUTH Authentication required.".into());
    }
    let n = argv.len() as i32;
    if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
        fail_in_multi(state);
        return Some(arity_error(spec.name));
    }
    if state.subscribed() && !state.resp3 && spec.flags & flag::PUBSUB_OK == 0 {
        return Some(format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name));
    }
    if state.multi.is_some() && spec.flags & (flag::NO_QUEUE | flag::NO_MULTI) == flag::NO_MULTI {
        state.multi_failed = true;
        return Some(format!("ERR Command '{}' not allowed inside a transaction", spec.name));
    }
    None
}

/// Runs a command's handler, counting the call, its time and whether it
/// replied with an error (INFO commandstats, `/metrics`). The time runs
/// from `client.clock` (the end of the previous command of the same
/// batch, so it includes parsing this one): one clock read per command
/// instead of two, which showed in profiles of pipelined GETs.
pub fn call(spec: &'static Spec, ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let mark = ctx.out.buf.len();
    let started = ctx.client.clock;
    (spec.run)(ctx, argv);
    let now = Instant::now();
    // Commands inside EXEC moved the clock on; EXEC counts their time too.
    ctx.client.clock = now;
    let failed = ctx.out.buf.get(mark) == Some(&b'-');
    ctx.srv.commands.record(ctx.client.handle.worker, spec.index(), now.saturating_duration_since(started), failed);
}

fn fail_in_multi(state: &mut ClientState) {
    if state.multi.is_some() {
        state.multi_failed = true;
    }
}

/// The reply to malformed protocol (the connection closes after it).
pub fn protocol_error(state: &ClientState, out: &mut Vec<u8>, msg: &str) {
    Reply { buf: out, resp3: state.resp3 }.error(&format!("ERR {msg}"));
}

/// Releases what a closing client held: watches, subscriptions, and its
/// place in the wait queues (a later push must not pop for it).
pub fn release_client(srv: &Server, state: &mut ClientState) {
    txn::unwatch_all(srv, state);
    pubsub::unsubscribe_all(srv, state);
    if let Some(b) = state.blocked.take() {
        srv.blocking.cancel(b.ticket);
    }
}

/// Parses an integer argument as Redis does (no sign but '-', no spaces,
/// no leading zeros).
pub fn parse_int(b: &[u8]) -> Option<i64> {
    dbkv::engine::entry::parse_i64(b)
}

/// Parses a float argument (`inf` and the like allowed; callers check).
pub fn parse_float(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// Formats a double the way Redis shows one: at most 17 significant digits,
/// no trailing zeros, no exponent for ordinary magnitudes, never `-0`.
pub fn format_double(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Shortest text that reads back as the same double; values that
    // need more than 15 significant digits are the ones f64 cannot hold
    // exactly in decimal (0.1 + 0.2): round them to 15, as the long double
    // Redis computes in would.
    let shortest = format!("{v}");
    let digits = shortest.bytes().filter(u8::is_ascii_digit).skip_while(|&b| b == b'0').count();
    if digits <= 15 {
        return shortest;
    }
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    format!("{rounded}")
}

pub fn eq_ignore_case(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_as_redis_prints_them() {
        for (v, s) in [(10.5 + 0.1, "10.6"), (0.1 + 0.2, "0.3"), (3.0, "3"), (17179869185.5, "17179869185.5"), (-0.0, "0"), (1e20, "100000000000000000000"), (5.0e-5, "0.00005")] {
            assert_eq!(format_double(v), s);
        }
    }

    #[test]
    fn unknown_command_text() {
        assert_eq!(unknown_command(&[b"NOSUCH", b"a", b"b"]), "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ");
        assert_eq!(unknown_command(&[b"x"]), "ERR unknown command 'x', with args beginning with: ");
    }
}
