//! Pub/Sub commands. Messages reach subscribers through their worker's
//! outbox (`server::pubsub`); nothing is persisted, as in Redis.

use super::{eq_ignore_case, Ctx};
use crate::server::client::ClientState;
use crate::server::reply::Reply;
use crate::server::Server;

/// Which of a client's two subscription sets a command works on.
#[derive(Clone, Copy)]
enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn verbs(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        }
    }
}

/// Subscription replies are pushes in RESP3 and arrays in RESP2; each
/// carries the client's total count of channels and patterns.
fn confirm(out: &mut Reply<'_>, verb: &[u8], name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(verb);
    out.bulk_or_null(name);
    out.int(count as i64);
}

fn total(c: &ClientState) -> usize {
    c.channels.len() + c.patterns.len()
}

fn sync_counts(c: &ClientState) {
    let mut info = c.handle.info();
    info.subscriptions = c.channels.len();
    info.patterns = c.patterns.len();
}

fn subscribe_to(ctx: &mut Ctx<'_, '_>, names: &[&[u8]], kind: Kind) {
    if ctx.txn.is_some() {
        return ctx.out.error("ERR SUBSCRIBE is not allowed inside MULTI");
    }
    for name in names {
        let handle = ctx.client.handle.clone();
        let fresh = match kind {
            Kind::Channel => ctx.client.channels.insert(name.to_vec()),
            Kind::Pattern => ctx.client.patterns.insert(name.to_vec()),
        };
        if fresh {
            match kind {
                Kind::Channel => ctx.srv.pubsub.subscribe(name, &handle),
                Kind::Pattern => ctx.srv.pubsub.psubscribe(name, &handle),
            }
        }
        confirm(&mut ctx.out, kind.verbs().0, Some(name), total(ctx.client));
    }
    sync_counts(ctx.client);
}

fn unsubscribe_from(ctx: &mut Ctx<'_, '_>, names: &[&[u8]], kind: Kind) {
    let names: Vec<Vec<u8>> = if names.is_empty() {
        let set = match kind {
            Kind::Channel => &ctx.client.channels,
            Kind::Pattern => &ctx.client.patterns,
        };
        set.iter().cloned().collect()
    } else {
        names.iter().map(|n| n.to_vec()).collect()
    };
    let verb = kind.verbs().1;
    if names.is_empty() {
        confirm(&mut ctx.out, verb, None, total(ctx.client));
    }
    let id = ctx.client.handle.id;
    for name in &names {
        let was = match kind {
            Kind::Channel => ctx.client.channels.remove(name),
            Kind::Pattern => ctx.client.patterns.remove(name),
        };
        if was {
            match kind {
                Kind::Channel => ctx.srv.pubsub.unsubscribe(name, id),
                Kind::Pattern => ctx.srv.pubsub.punsubscribe(name, id),
            }
        }
        confirm(&mut ctx.out, verb, Some(name), total(ctx.client));
    }
    sync_counts(ctx.client);
}

pub fn subscribe(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    subscribe_to(ctx, &argv[1..], Kind::Channel)
}

pub fn psubscribe(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    subscribe_to(ctx, &argv[1..], Kind::Pattern)
}

pub fn unsubscribe(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    unsubscribe_from(ctx, &argv[1..], Kind::Channel)
}

pub fn punsubscribe(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    unsubscribe_from(ctx, &argv[1..], Kind::Pattern)
}

pub fn publish(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let srv = ctx.srv;
    let n = srv.pubsub.publish(argv[1], argv[2], |c| notify(srv, c));
    ctx.out.int(n as i64);
}

/// Wakes the worker that owns a subscriber so it sends what was queued;
/// drops a subscriber whose queue is past the output limit.
fn notify(srv: &Server, c: &crate::server::client::ClientHandle) {
    if c.outbox().len() > srv.settings.output_buffer_limit {
        c.kill.store(true, std::sync::atomic::Ordering::Release);
    }
    if let Some(w) = srv.wakers.get().and_then(|w| w.get(c.worker)) {
        w.notify(c.slot);
    }
}

pub fn pubsub(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    let sub = argv[1];
    let srv = ctx.srv;
    let arity_ok = |min: usize, max: usize| (min..=max).contains(&argv.len());
    if eq_ignore_case(sub, "channels") {
        if !arity_ok(2, 3) {
            // Redis 7 checks CHANNELS' optional pattern inside the subcommand.
            return ctx.out.error("ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.");
        }
        let chans = srv.pubsub.channels(argv.get(2).copied());
        ctx.out.bulks(chans.iter().map(|c| c.as_slice()));
    } else if eq_ignore_case(sub, "numsub") {
        ctx.out.map(argv.len() - 2);
        for ch in &argv[2..] {
            ctx.out.bulk(ch);
            ctx.out.int(srv.pubsub.numsub(ch) as i64);
        }
    } else if eq_ignore_case(sub, "numpat") {
        if !arity_ok(2, 2) {
            return ctx.out.error(&super::arity_error("pubsub|numpat"));
        }
        ctx.out.int(srv.pubsub.numpat() as i64);
    } else {
        ctx.out.error(&format!("ERR unknown subcommand '{}'. Try PUBSUB HELP.", String::from_utf8_lossy(sub)));
    }
}

/// Leaves every channel and pattern (connection closed or RESET).
pub fn unsubscribe_all(srv: &Server, c: &mut ClientState) {
    for ch in c.channels.drain() {
        srv.pubsub.unsubscribe(&ch, c.handle.id);
    }
    for p in c.patterns.drain() {
        srv.pubsub.punsubscribe(&p, c.handle.id);
    }
    sync_counts(c);
}
