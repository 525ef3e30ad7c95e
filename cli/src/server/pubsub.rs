//! Channels and patterns, and delivery of published messages to the
//! subscribers' workers. Nothing here is persisted (as in Redis).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::client::ClientHandle;
use super::glob;
use super::reply::Reply;

type Subs = Vec<Arc<ClientHandle>>;

#[derive(Default)]
pub struct PubSub {
    channels: RwLock<HashMap<Vec<u8>, Subs>>,
    patterns: RwLock<HashMap<Vec<u8>, Subs>>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn add(map: &RwLock<HashMap<Vec<u8>, Subs>>, name: &[u8], c: &Arc<ClientHandle>) {
    let mut m = write(map);
    let subs = m.entry(name.to_vec()).or_default();
    if !subs.iter().any(|s| s.id == c.id) {
        subs.push(c.clone());
    }
}

fn remove(map: &RwLock<HashMap<Vec<u8>, Subs>>, name: &[u8], id: u64) {
    let mut m = write(map);
    if let Some(subs) = m.get_mut(name) {
        subs.retain(|s| s.id != id);
        if subs.is_empty() {
            m.remove(name);
        }
    }
}

impl PubSub {
    pub fn subscribe(&self, channel: &[u8], c: &Arc<ClientHandle>) {
        add(&self.channels, channel, c)
    }

    pub fn unsubscribe(&self, channel: &[u8], id: u64) {
        remove(&self.channels, channel, id)
    }

    pub fn psubscribe(&self, pattern: &[u8], c: &Arc<ClientHandle>) {
        add(&self.patterns, pattern, c)
    }

    pub fn punsubscribe(&self, pattern: &[u8], id: u64) {
        remove(&self.patterns, pattern, id)
    }

    /// Queues `message` for every subscriber of `channel` (directly or by
    /// pattern) and wakes their workers; returns how many receive it.
    pub fn publish(&self, channel: &[u8], message: &[u8], notify: impl Fn(&ClientHandle)) -> usize {
        let mut n = 0;
        for c in read(&self.channels).get(channel).into_iter().flatten() {
            deliver(c, |r| {
                r.push(3);
                r.bulk(b"message");
                r.bulk(channel);
                r.bulk(message);
            });
            notify(c);
            n += 1;
        }
        for (pattern, subs) in read(&self.patterns).iter() {
            if !glob::matches(pattern, channel) {
                continue;
            }
            for c in subs {
                deliver(c, |r| {
                    r.push(4);
                    r.bulk(b"pmessage");
                    r.bulk(pattern);
                    r.bulk(channel);
                    r.bulk(message);
                });
                notify(c);
                n += 1;
            }
        }
        n
    }

    /// Channels with at least one subscriber, optionally matching a glob.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        read(&self.channels).keys().filter(|c| pattern.is_none_or(|p| glob::matches(p, c))).cloned().collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        read(&self.channels).get(channel).map_or(0, Vec::len)
    }

    /// Patterns subscribed to (each counted once, as Redis counts them).
    pub fn numpat(&self) -> usize {
        read(&self.patterns).len()
    }
}

fn deliver(c: &ClientHandle, write_msg: impl FnOnce(&mut Reply<'_>)) {
    let resp3 = c.resp3.load(std::sync::atomic::Ordering::Relaxed);
    let mut out = c.outbox();
    write_msg(&mut Reply { buf: &mut out, resp3 });
}
