//! Worker threads: each owns a `mio` poll, its share of the connections,
//! and a clone of every listener (whichever worker wakes first accepts).
//!
//! One pass of a worker: run the commands of every readable connection,
//! then write the replies; under `--sync always` the replies of writes
//! wait for the group commit (`group_commit`). Replies never leave before
//! the writes they acknowledge are as durable as the sync policy promises.
//!
//! Clients blocked in BLPOP and friends are resumed here: when another
//! thread served them (their reply is in the outbox, `blocking`), or when
//! their deadline in this worker's timer heap passes (nil reply).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};

use super::client::{ClientHandle, ClientState};
use super::commands;
use super::conn::{Close, Conn, Stream};
use super::reply::Reply;
use super::{Server, SyncPolicy};

const WAKER: Token = Token(usize::MAX - 1);
const LISTENER_BASE: usize = usize::MAX - 64;

/// What other threads hold of a worker: a way to wake it, and the slots
/// whose outbox or kill flag changed.
pub struct WorkerHandle {
    waker: Waker,
    inbox: Mutex<Vec<usize>>,
}

impl WorkerHandle {
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Asks the worker to look at one of its connections.
    pub fn notify(&self, slot: usize) {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner()).push(slot);
        self.wake();
    }
}

/// A listening socket, shared by every worker.
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

enum Accepting {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Starts `threads` workers; returns their join handles.
pub fn start(srv: Arc<Server>, listeners: &[Listener], threads: usize) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    let mut polls = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..threads {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        handles.push(Arc::new(WorkerHandle { waker, inbox: Mutex::new(Vec::new()) }));
        polls.push(poll);
    }
    srv.wakers.set(handles.clone()).map_err(|_| io::Error::other("workers started twice"))?;
    let mut joins = Vec::new();
    for (i, poll) in polls.into_iter().enumerate() {
        let mut accepting = Vec::new();
        for (j, l) in listeners.iter().enumerate() {
            let mut a = match l {
                Listener::Tcp(t) => Accepting::Tcp(TcpListener::from_std(t.try_clone()?)),
                Listener::Unix(u) => Accepting::Unix(UnixListener::from_std(u.try_clone()?)),
            };
            let src: &mut dyn mio::event::Source = match &mut a {
                Accepting::Tcp(t) => t,
                Accepting::Unix(u) => u,
            };
            poll.registry().register(src, Token(LISTENER_BASE + j), Interest::READABLE)?;
            accepting.push(a);
        }
        let mut w = Worker { id: i, srv: srv.clone(), poll, accepting, conns: Vec::new(), free: Vec::new(), handle: handles[i].clone(), held: Vec::new(), timers: BinaryHeap::new(), prune_at: PRUNE_MIN };
        joins.push(std::thread::Builder::new().name(format!("dbkv-worker-{i}")).spawn(move || w.run())?);
    }
    Ok(joins)
}

struct Worker {
    id: usize,
    srv: Arc<Server>,
    poll: Poll,
    accepting: Vec<Accepting>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    handle: Arc<WorkerHandle>,
    /// Connections whose output waits for a group commit.
    held: Vec<usize>,
    /// Deadlines of blocked clients: (when, slot, ticket), soonest first.
    /// Entries of clients answered earlier are skipped when they come up.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Heap size at which stale entries are dropped (a consumer looping on
    /// `BRPOP q 30` leaves one per call until its deadline would pass).
    prune_at: usize,
}

const PRUNE_MIN: usize = 1024;

/// The longest a poll sleeps (shutdown and group commits are noticed at
/// least this often).
const POLL_MAX: Duration = Duration::from_secs(1);

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut touched: Vec<usize> = Vec::new();
        while !self.srv.shutting_down() {
            let wait = match self.timers.peek() {
                Some(Reverse((at, _, _))) => at.saturating_duration_since(Instant::now()).min(POLL_MAX),
                None => POLL_MAX,
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("worker {}: poll failed: {e}", self.id);
                    break;
                }
            }
            touched.clear();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.drain_inbox(&mut touched),
                    Token(t) if (LISTENER_BASE..WAKER.0).contains(&t) => self.accept(t - LISTENER_BASE),
                    Token(slot) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(slot, ev.is_read_closed() || ev.is_error());
                        }
                        touched.push(slot);
                    }
                }
            }
            self.expire_timers(&mut touched);
            self.finish_pass(&touched);
        }
        self.shut_down();
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    fn on_readable(&mut self, slot: usize, drain: bool) {
        let srv = self.srv.clone();
        let Some(c) = self.conn(slot) else { return };
        if let Err(why) = c.on_readable(&srv, drain) {
            return self.close(slot, why);
        }
        self.arm(slot);
    }

    /// Puts the deadline of a client that just blocked in the timer heap.
    fn arm(&mut self, slot: usize) {
        let Some(c) = self.conn(slot) else { return };
        let Some(b) = c.state.blocked.as_mut().filter(|b| !b.armed) else { return };
        b.armed = true;
        if let Some(at) = b.deadline {
            let ticket = b.ticket;
            self.timers.push(Reverse((at, slot, ticket)));
        }
        if self.timers.len() >= self.prune_at {
            let conns = &self.conns;
            self.timers.retain(|Reverse((_, slot, ticket))| {
                conns.get(*slot).and_then(Option::as_ref).and_then(|c| c.state.blocked).is_some_and(|b| b.ticket == *ticket)
            });
            // Amortized: the next pass waits until the live ones doubled.
            self.prune_at = (2 * self.timers.len()).max(PRUNE_MIN);
        }
    }

    /// Answers nil to blocked clients whose deadline passed, unless another
    /// thread served them first (then their reply is on its way here).
    fn expire_timers(&mut self, touched: &mut Vec<usize>) {
        let now = Instant::now();
        while let Some(&Reverse((at, slot, ticket))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let srv = self.srv.clone();
            let Some(c) = self.conn(slot) else { continue };
            if c.state.blocked.is_none_or(|b| b.ticket != ticket) || !srv.blocking.cancel(ticket) {
                continue;
            }
            Reply { buf: &mut c.wbuf, resp3: c.state.resp3 }.null_array();
            self.resume(slot, touched);
        }
    }

    /// A blocked client got its answer: run the commands it sent after the
    /// blocking one.
    fn resume(&mut self, slot: usize, touched: &mut Vec<usize>) {
        let srv = self.srv.clone();
        let Some(c) = self.conn(slot) else { return };
        c.state.blocked = None;
        c.state.handle.info().blocked = false;
        touched.push(slot);
        if let Err(why) = c.run_commands(&srv) {
            return self.close(slot, why);
        }
        self.arm(slot);
    }

    /// Under `--sync always`, holds the replies of the clients that wrote
    /// in this pass until the group commit covers them; writes the rest,
    /// and any held replies whose fsync completed.
    fn finish_pass(&mut self, touched: &[usize]) {
        if self.srv.settings.sync == SyncPolicy::Always {
            let writers: Vec<usize> = touched.iter().copied().filter(|&s| self.conn(s).is_some_and(|c| c.wrote)).collect();
            if !writers.is_empty() {
                let ticket = self.srv.gate.request();
                for s in writers {
                    let c = self.conn(s).expect("listed above");
                    c.hold_until = ticket;
                    c.wrote = false;
                }
            }
        }
        for &slot in touched {
            self.flush(slot);
        }
        for slot in std::mem::take(&mut self.held) {
            if let Some(c) = self.conn(slot) {
                c.held = false;
            }
            self.flush(slot);
        }
    }

    /// Writes a client's output, unless it waits for a group commit.
    fn flush(&mut self, slot: usize) {
        let srv = self.srv.clone();
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        if c.hold_until != 0 {
            if srv.gate.failed() {
                c.discard_output();
                return self.close(slot, Close::Dropped("fsync failed: its writes were not acknowledged".into()));
            }
            if !srv.gate.done(c.hold_until) {
                if !c.held {
                    c.held = true;
                    self.held.push(slot);
                }
                return;
            }
            c.hold_until = 0;
        }
        let reg = self.poll.registry();
        if let Err(why) = c.flush(&srv, reg, Token(slot)) {
            self.close(slot, why);
        }
    }

    fn drain_inbox(&mut self, touched: &mut Vec<usize>) {
        let slots = std::mem::take(&mut *self.handle.inbox.lock().unwrap_or_else(|p| p.into_inner()));
        for slot in slots {
            let Some(c) = self.conn(slot) else { continue };
            if c.state.handle.killed() {
                self.close(slot, Close::Dropped("killed (CLIENT KILL)".into()));
                continue;
            }
            c.take_outbox();
            touched.push(slot);
            if c.state.handle.unblocked.swap(false, Ordering::AcqRel) {
                // The element was popped (a write) on another thread: under
                // `--sync always` the reply waits for an fsync covering it.
                c.wrote = true;
                self.resume(slot, touched);
            }
        }
    }

    fn accept(&mut self, which: usize) {
        loop {
            let accepted = match &self.accepting[which] {
                Accepting::Tcp(l) => l.accept().map(|(s, addr)| {
                    let _ = s.set_nodelay(true);
                    let laddr = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    (Stream::Tcp(s), addr.to_string(), laddr)
                }),
                Accepting::Unix(l) => l.accept().map(|(s, _)| (Stream::Unix(s), "/unixsocket:0".to_string(), self.srv.settings.unixsocket.clone().unwrap_or_default())),
            };
            match accepted {
                Ok((stream, addr, laddr)) => self.admit(stream, addr, laddr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: keep serving
                    // the clients we have, try again on the next event.
                    tracing::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: Stream, addr: String, laddr: String) {
        let srv = self.srv.clone();
        srv.counters.connections_received.fetch_add(1, Ordering::Relaxed);
        if srv.clients.count() >= srv.settings.maxclients {
            srv.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%addr, "refused a client: max number of clients ({}) reached", srv.settings.maxclients);
            let msg = b"-ERR max number of clients reached\r\n";
            let _ = match &mut stream {
                Stream::Tcp(s) => s.write(msg),
                Stream::Unix(s) => s.write(msg),
            };
            return;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let handle = Arc::new(ClientHandle::new(srv.clients.next_id(), self.id, slot, addr, laddr));
        let state = ClientState::new(handle.clone(), srv.settings.requirepass.is_none());
        let mut conn = Conn::new(stream, state);
        if let Err(e) = conn.register(self.poll.registry(), Token(slot)) {
            tracing::warn!("could not register a client: {e}");
            self.free.push(slot);
            return;
        }
        tracing::debug!(client = handle.id, addr = %handle.addr, "client connected");
        srv.clients.add(handle);
        self.conns[slot] = Some(conn);
    }

    fn close(&mut self, slot: usize, why: Close) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        c.deregister(self.poll.registry());
        commands::release_client(&self.srv, &mut c.state);
        self.srv.clients.remove(c.state.handle.id);
        let (id, addr) = (c.state.handle.id, &c.state.handle.addr);
        match why {
            Close::Normal => tracing::debug!(client = id, %addr, "client disconnected"),
            Close::Io(e) => tracing::debug!(client = id, %addr, "client disconnected: {e}"),
            Close::Dropped(reason) => tracing::warn!(client = id, %addr, "dropped a client: {reason}"),
        }
        self.free.push(slot);
    }

    /// Graceful end: stop accepting, run the commands already received,
    /// make them durable, deliver the replies (for at most a few seconds),
    /// close.
    fn shut_down(&mut self) {
        for mut a in self.accepting.drain(..) {
            let src: &mut dyn mio::event::Source = match &mut a {
                Accepting::Tcp(t) => t,
                Accepting::Unix(u) => u,
            };
            let _ = self.poll.registry().deregister(src);
        }
        let slots: Vec<usize> = (0..self.conns.len()).filter(|&s| self.conns[s].is_some()).collect();
        for &s in &slots {
            self.on_readable(s, true);
        }
        // Everything logged is durable after this; replies of writes it
        // could not make durable are dropped, never sent.
        let synced = self.srv.engine.sync().is_ok();
        let deadline = Instant::now() + Duration::from_secs(3);
        for &s in &slots {
            if let Some(c) = self.conn(s) {
                if c.hold_until != 0 && !synced {
                    c.discard_output();
                }
                c.hold_until = 0;
            }
            while Instant::now() < deadline && self.conn(s).is_some_and(|c| c.has_output()) {
                self.flush(s);
                if self.conn(s).is_some_and(|c| c.has_output()) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            self.close(s, Close::Normal);
        }
    }
}
