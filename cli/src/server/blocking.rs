//! Clients blocked in BLPOP / BRPOP / BLMOVE / BRPOPLPUSH: which keys each
//! waits on, in what order, and serving them when a key gets elements.
//!
//! Protocol (why no wakeup is lost and why FIFO holds):
//! - A blocking command takes the `serving` lock, counts itself in
//!   `waiting`, then tries its pop in an engine transaction; only if every
//!   key is empty does it queue itself, still under `serving`.
//! - A command that gives a list elements checks `has_waiters` after its
//!   write holds the shard lock (so after the pushed element is visible to
//!   any later transaction), and if so, once its own transaction is over,
//!   calls `serve` with the keys it filled. The count was raised before
//!   the blocker's transaction took that shard lock: either the blocker's
//!   attempt sees the element, or the pusher sees the count and serves.
//! - `serve` runs under `serving`, on the pusher's thread: for each filled
//!   key it pops for the waiters of that key in the order they queued, one
//!   engine transaction (one WAL record) per waiter, until the list is
//!   empty. The reply goes to the waiter's outbox and its worker is woken
//!   through the same inbox + `mio::Waker` pub/sub uses; the worker then
//!   sends it and resumes the client's pipelined input.
//! - A waiter leaves the registry exactly once, under `reg`: served (inside
//!   the transaction that pops for it, before the pop), timed out,
//!   disconnected or CLIENT UNBLOCK. Whoever removes it answers it.
//!
//! Lock order: `serving`, then shard locks, then `reg`. `serving` is only
//! taken by top-level commands (never inside EXEC, which holds shard
//! locks); `reg` is never held while waiting for a shard lock, so INFO or
//! CLIENT UNBLOCK inside EXEC may take it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dbkv::engine::Scope;

use super::client::ClientHandle;
use super::commands::{engine_error, lists_blocking};
use super::reply::Reply;
use super::Server;

/// What a blocked client does once one of its keys has an element.
#[derive(Debug, Clone)]
pub enum Op {
    /// BLPOP / BRPOP: pop from the head (`left`) or the tail; reply
    /// `[key, element]`.
    Pop { left: bool },
    /// BLMOVE / BRPOPLPUSH: move one element to `dst`; reply the element.
    Move { dst: Vec<u8>, from_left: bool, to_left: bool },
}

struct Waiter {
    client: Arc<ClientHandle>,
    keys: Vec<Vec<u8>>,
    op: Op,
}

#[derive(Default)]
struct Registry {
    /// By ticket (one per blocking call).
    waiters: HashMap<u64, Waiter>,
    /// Tickets waiting on each key, oldest first.
    queues: HashMap<Vec<u8>, VecDeque<u64>>,
    /// Client id -> its ticket (CLIENT UNBLOCK names clients).
    by_client: HashMap<u64, u64>,
}

/// What `Blocking::block` did.
pub enum Outcome {
    /// The reply (element, or error) is in the output.
    Answered,
    /// The client waits under this ticket.
    Blocked(u64),
}

#[derive(Default)]
pub struct Blocking {
    /// Serializes blocking attempts and serving (see the module docs).
    serving: Mutex<()>,
    reg: Mutex<Registry>,
    /// Queued waiters plus blocking attempts in flight; read without a
    /// lock by every push (see the module docs for why that is enough).
    waiting: AtomicUsize,
    next_ticket: AtomicU64,
}

/// How serving one waiter went.
enum Step {
    Served,
    /// The key has no element (or is no longer a list).
    Empty,
    /// The waiter left (timeout, disconnect) before it was served.
    Gone,
}

impl Blocking {
    fn reg(&self) -> MutexGuard<'_, Registry> {
        self.reg.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serving(&self) -> MutexGuard<'_, ()> {
        self.serving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True if some client is blocked (or about to be): a push must then
    /// report the keys it filled. One atomic load on the push path.
    pub fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Blocked clients (INFO `blocked_clients`).
    pub fn count(&self) -> usize {
        self.reg().waiters.len()
    }

    /// Tries `op` on the first non-empty of `keys` (in order); if all are
    /// empty, queues the client. `scope` is every key the op may touch.
    /// Must not be called inside a transaction.
    pub fn block(&self, srv: &Server, client: &Arc<ClientHandle>, keys: &[&[u8]], scope: &[&[u8]], op: Op, out: &mut Reply<'_>) -> Outcome {
        let _serving = self.serving();
        // Raised before the attempt reads the lists: see the module docs.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Clients already waiting on these keys come first: if one of the
        // keys holds elements, a push's `serve` is about to hand them out.
        let mut ready: Vec<Vec<u8>> = {
            let reg = self.reg();
            keys.iter().filter(|k| reg.queues.contains_key(**k)).map(|k| k.to_vec()).collect()
        };
        self.serve_locked(srv, &mut ready);
        let mark = out.buf.len();
        let r = srv.engine.transact(Scope::Keys(scope), |t| lists_blocking::attempt(t, keys, &op, out)).and_then(|r| r);
        match r {
            Ok(false) => {
                let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed) + 1;
                let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
                let mut reg = self.reg();
                for k in &keys {
                    let q = reg.queues.entry(k.clone()).or_default();
                    // BLPOP a a: one place in the queue is enough.
                    if q.back() != Some(&ticket) {
                        q.push_back(ticket);
                    }
                }
                reg.by_client.insert(client.id, ticket);
                reg.waiters.insert(ticket, Waiter { client: client.clone(), keys, op });
                Outcome::Blocked(ticket)
            }
            other => {
                if let Err(e) = other {
                    out.buf.truncate(mark);
                    out.error(&engine_error(&e));
                }
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                Outcome::Answered
            }
        }
    }

    /// Serves the waiters of `ready` keys (drained), oldest first, as long
    /// as those lists have elements. Must not be called inside a
    /// transaction (it runs its own).
    pub fn serve(&self, srv: &Server, ready: &mut Vec<Vec<u8>>) {
        let _serving = self.serving();
        self.serve_locked(srv, ready);
    }

    /// `serve`, with `serving` held.
    fn serve_locked(&self, srv: &Server, ready: &mut Vec<Vec<u8>>) {
        while let Some(key) = ready.pop() {
            loop {
                let (ticket, op) = {
                    let reg = self.reg();
                    let Some(&ticket) = reg.queues.get(&key).and_then(|q| q.front()) else { break };
                    (ticket, reg.waiters[&ticket].op.clone())
                };
                let dst = match &op {
                    Op::Move { dst, .. } => Some(dst.clone()),
                    Op::Pop { .. } => None,
                };
                let scope: Vec<&[u8]> = std::iter::once(key.as_slice()).chain(dst.as_deref()).collect();
                let mut buf = Vec::new();
                let mut taken = None;
                let r = srv.engine.transact(Scope::Keys(&scope), |t| {
                    if !matches!(t.list(&key), Ok(Some(l)) if !l.is_empty()) {
                        return Ok(Step::Empty);
                    }
                    // Taken out before the pop, under the shard locks: a
                    // timeout or disconnect now finds it gone and leaves
                    // the answer to us.
                    let Some(w) = self.remove(&mut self.reg(), ticket) else { return Ok(Step::Gone) };
                    let resp3 = w.client.resp3.load(Ordering::Acquire);
                    taken = Some(w);
                    lists_blocking::run_op(t, &key, &op, &mut Reply { buf: &mut buf, resp3 })?;
                    Ok(Step::Served)
                });
                match r.and_then(|r| r) {
                    Ok(Step::Served) => ready.extend(dst),
                    // The rest of this queue waits for the next push.
                    Ok(Step::Empty) => break,
                    Ok(Step::Gone) => continue,
                    // The waiter's own error (BLMOVE onto a key that became
                    // another type) is its answer, as in Redis.
                    Err(e) => {
                        buf.clear();
                        Reply { buf: &mut buf, resp3: false }.error(&engine_error(&e));
                    }
                }
                match taken {
                    Some(w) => deliver(srv, &w.client, &buf),
                    // The engine refused the transaction itself: stop here.
                    None => break,
                }
            }
        }
    }

    /// Forgets a waiter; None if it was not waiting (already answered).
    fn remove(&self, reg: &mut Registry, ticket: u64) -> Option<Waiter> {
        let w = reg.waiters.remove(&ticket)?;
        for k in &w.keys {
            if let Some(q) = reg.queues.get_mut(k) {
                q.retain(|&t| t != ticket);
                if q.is_empty() {
                    reg.queues.remove(k);
                }
            }
        }
        if reg.by_client.get(&w.client.id) == Some(&ticket) {
            reg.by_client.remove(&w.client.id);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Some(w)
    }

    /// Withdraws a waiter (timeout, disconnect); false if another thread
    /// answered it first (its reply is then in its outbox).
    pub fn cancel(&self, ticket: u64) -> bool {
        self.remove(&mut self.reg(), ticket).is_some()
    }

    /// CLIENT UNBLOCK: answers a blocked client as its timeout would (nil),
    /// or with an UNBLOCKED error; false if that client is not blocked.
    pub fn unblock(&self, srv: &Server, client_id: u64, error: bool) -> bool {
        let w = {
            let mut reg = self.reg();
            let Some(&ticket) = reg.by_client.get(&client_id) else { return false };
            self.remove(&mut reg, ticket).expect("indexed tickets are registered")
        };
        let mut buf = Vec::new();
        let mut r = Reply { buf: &mut buf, resp3: w.client.resp3.load(Ordering::Acquire) };
        if error {
            r.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else {
            r.null_array();
        }
        deliver(srv, &w.client, &buf);
        true
    }
}

/// Hands a blocked client its reply: into its outbox, flagged as the end
/// of its wait, and its worker woken (it may run on another thread).
fn deliver(srv: &Server, c: &ClientHandle, reply: &[u8]) {
    c.outbox().extend_from_slice(reply);
    c.unblocked.store(true, Ordering::Release);
    if let Some(w) = srv.wakers.get().and_then(|w| w.get(c.worker)) {
        w.notify(c.slot);
    }
}

