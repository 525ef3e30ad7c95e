//! MULTI / EXEC / DISCARD / WATCH / UNWATCH.
//!
//! EXEC runs every queued command inside one engine transaction over the
//! shards of all their keys (every shard if one of them reads or writes
//! the whole key space): no client sees part of it, and its writes are one
//! WAL record, so a crash keeps all of them or none. WATCH versions live
//! in the engine's shards and are compared under the same locks, so a
//! write that lands before EXEC always aborts it.

use dbkv::engine::Scope;

use super::{engine_error, flag, lookup, Ctx};
use crate::server::client::ClientState;
use crate::server::reply::Reply;
use crate::server::Server;

pub fn multi(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    if ctx.client.multi.is_some() {
        return ctx.out.error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_failed = false;
    ctx.client.handle.info().in_multi = true;
    ctx.out.ok();
}

pub fn discard(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    if ctx.client.multi.is_none() {
        return ctx.out.error("ERR DISCARD without MULTI");
    }
    end_multi(ctx.client);
    unwatch_all(ctx.srv, ctx.client);
    ctx.out.ok();
}

fn end_multi(c: &mut ClientState) {
    c.multi = None;
    c.multi_failed = false;
    c.handle.info().in_multi = false;
}

pub fn watch(ctx: &mut Ctx<'_, '_>, argv: &[&[u8]]) {
    if ctx.client.multi.is_some() {
        return ctx.out.error("ERR WATCH inside MULTI is not allowed");
    }
    for key in &argv[1..] {
        if ctx.client.watches.iter().any(|w| w.key() == *key) {
            continue;
        }
        match ctx.srv.engine.watch(key) {
            Ok(w) => ctx.client.watches.push(w),
            Err(e) => return ctx.out.error(&engine_error(&e)),
        }
    }
    ctx.out.ok();
}

pub fn unwatch(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    unwatch_all(ctx.srv, ctx.client);
    ctx.out.ok();
}

pub fn unwatch_all(srv: &Server, c: &mut ClientState) {
    for w in c.watches.drain(..) {
        srv.engine.unwatch(&w);
    }
}

pub fn exec(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    let Some(queued) = ctx.client.multi.take() else { return ctx.out.error("ERR EXEC without MULTI") };
    let failed = ctx.client.multi_failed;
    end_multi(ctx.client);
    if failed {
        unwatch_all(ctx.srv, ctx.client);
        return ctx.out.error("EXECABORT Transaction discarded because of previous errors.");
    }
    let argvs: Vec<Vec<&[u8]>> = queued.iter().map(|c| c.iter().map(|a| a.as_slice()).collect()).collect();
    let mut all = false;
    let watches = std::mem::take(&mut ctx.client.watches);
    let mut keys: Vec<&[u8]> = watches.iter().map(|w| w.key()).collect();
    for argv in &argvs {
        let spec = lookup(argv[0]).expect("queued commands were looked up");
        all |= spec.flags & flag::ALL_KEYS != 0;
        keys.extend(spec.keys(argv));
        ctx.client.wrote |= spec.flags & flag::WRITE != 0;
    }
    let scope = if all { Scope::All } else { Scope::Keys(&keys) };
    let (srv, resp3) = (ctx.srv, ctx.client.resp3);
    let mark = ctx.out.buf.len();
    let client = &mut *ctx.client;
    let out = &mut *ctx.out.buf;
    let r = srv.engine.transact(scope, |t| {
        if !t.unchanged(&watches)? {
            Reply { buf: out, resp3 }.null_array();
            return Ok(());
        }
        Reply { buf: out, resp3 }.array(argvs.len());
        for argv in &argvs {
            let spec = lookup(argv[0]).expect("queued commands were looked up");
            let reply = Reply { buf: out, resp3 };
            super::call(spec, &mut Ctx { srv, client, out: reply, txn: Some(t) }, argv);
        }
        Ok(())
    });
    for w in &watches {
        srv.engine.unwatch(w);
    }
    if let Err(e) = r.and_then(|r| r) {
        ctx.out.buf.truncate(mark);
        ctx.out.error(&engine_error(&e));
    }
}
