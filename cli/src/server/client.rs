//! Per-client state: what commands read and change (`ClientState`, owned
//! by the connection's worker) and what other threads may reach
//! (`ClientHandle`: pub/sub deliveries, CLIENT LIST and KILL).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use dbkv::engine::Watch;

/// The part of a client other threads see.
pub struct ClientHandle {
    pub id: u64,
    /// Which worker owns the connection, and its slot there.
    pub worker: usize,
    pub slot: usize,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub info: Mutex<ClientInfo>,
    /// Bytes other threads queued for this client (pub/sub messages).
    pub outbox: Mutex<Vec<u8>>,
    /// Close the connection at the next chance (CLIENT KILL, limits).
    pub kill: AtomicBool,
    /// The protocol the client speaks: publishers encode in it.
    pub resp3: AtomicBool,
    pub last_active: AtomicU64,
    /// Another thread answered this client's blocking command (the reply
    /// is in `outbox`): its worker resumes it (`server::blocking`).
    pub unblocked: AtomicBool,
}

/// Fields CLIENT SETNAME/SETINFO and command execution update.
#[derive(Default, Clone)]
pub struct ClientInfo {
    pub name: Vec<u8>,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    pub last_cmd: std::borrow::Cow<'static, str>,
    pub subscriptions: usize,
    pub patterns: usize,
    pub in_multi: bool,
    /// Waiting in a blocking command (CLIENT LIST flag `b`).
    pub blocked: bool,
}

impl ClientHandle {
    pub fn new(id: u64, worker: usize, slot: usize, addr: String, laddr: String) -> ClientHandle {
        ClientHandle {
            id,
            worker,
            slot,
            addr,
            laddr,
            created: Instant::now(),
            info: Mutex::new(ClientInfo::default()),
            outbox: Mutex::new(Vec::new()),
            kill: AtomicBool::new(false),
            resp3: AtomicBool::new(false),
            last_active: AtomicU64::new(0),
            unblocked: AtomicBool::new(false),
        }
    }

    pub fn info(&self) -> MutexGuard<'_, ClientInfo> {
        self.info.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn outbox(&self) -> MutexGuard<'_, Vec<u8>> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn killed(&self) -> bool {
        self.kill.load(Ordering::Acquire)
    }

    /// Records activity now (CLIENT LIST `idle=`): `last_active` holds
    /// milliseconds since `created` (0: none since the connection opened).
    pub fn touch(&self) {
        self.touch_at(Instant::now());
    }

    /// `touch` with a time the caller already read (the command path
    /// reuses its timing clock: a clock read showed in profiles).
    pub fn touch_at(&self, now: Instant) {
        self.last_active.store(now.saturating_duration_since(self.created).as_millis() as u64, Ordering::Relaxed);
    }

    /// Whole seconds since the last `touch` (or since the connection opened).
    pub fn idle_secs(&self, now: Instant) -> u64 {
        let since_created = now.saturating_duration_since(self.created).as_millis() as u64;
        since_created.saturating_sub(self.last_active.load(Ordering::Relaxed)) / 1000
    }
}

/// A client waiting in a blocking command; it runs no other command until
/// answered.
#[derive(Debug, Clone, Copy)]
pub struct Blocked {
    /// Its entry in the wait queues (`server::blocking`).
    pub ticket: u64,
    /// When it gets nil instead (None: never).
    pub deadline: Option<Instant>,
    /// The worker has put the deadline in its timer heap.
    pub armed: bool,
}

/// What commands read and change; owned by the connection.
pub struct ClientState {
    pub handle: Arc<ClientHandle>,
    pub authed: bool,
    pub resp3: bool,
    /// Commands queued after MULTI; `multi_failed` once one of them was
    /// refused (EXEC then answers EXECABORT).
    pub multi: Option<Vec<Vec<Vec<u8>>>>,
    pub multi_failed: bool,
    pub watches: Vec<Watch>,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    /// Close once the replies so far are written (QUIT, protocol errors).
    pub close_after_reply: bool,
    /// The last command wrote something (for `--sync always`).
    pub wrote: bool,
    pub blocked: Option<Blocked>,
    /// Lists this client's command gave elements to, while clients are
    /// blocked: served once the command (or EXEC) is over.
    pub ready: Vec<Vec<u8>>,
    /// When the command being run started: set as a batch of input starts
    /// running, then each command's end is the next one's start, so timing
    /// a command costs one clock read (`commands::call`).
    pub clock: Instant,
}

impl ClientState {
    pub fn new(handle: Arc<ClientHandle>, authed: bool) -> ClientState {
        ClientState {
            handle,
            authed,
            resp3: false,
            multi: None,
            multi_failed: false,
            watches: Vec::new(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            close_after_reply: false,
            wrote: false,
            blocked: None,
            ready: Vec::new(),
            clock: Instant::now(),
        }
    }

    pub fn subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }
}

/// Every connected client, by id.
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    next_id: AtomicU64,
}

impl Clients {
    fn map(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientHandle>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add(&self, h: Arc<ClientHandle>) {
        self.map().insert(h.id, h);
    }

    pub fn remove(&self, id: u64) {
        self.map().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.map().len()
    }

    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map().values().cloned().collect()
    }
}
