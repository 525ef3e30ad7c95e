//! Sorted sets: member -> score, ordered by score, then member bytes.
//!
//! A skip list whose links carry spans (how many elements a link jumps
//! over), as Redis's, so rank lookups, rank ranges and score ranges all
//! cost O(log N) to find their start and O(1) per element after it; a hash
//! index answers ZSCORE in O(1). Nodes live in one arena addressed by u32
//! indices (no raw pointers), and each member's bytes are one shared
//! allocation referenced by the node and the index.
//!
//! The level of each node comes from a PRNG, so two sets with the same
//! elements may have different shapes; nothing observable depends on it.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

const MAX_LEVEL: usize = 32;
const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

#[derive(Clone, Copy)]
struct Link {
    next: u32,
    /// Elements between this node and `next`, counting `next`.
    span: u32,
    /// Where `next`'s upper links start in the arena, and `next`'s score:
    /// copied here so a search step reads one link and nothing else (one
    /// cache miss per step, as in Redis's skip list whose levels live
    /// inside each node). The next node itself is read only on a tie of
    /// scores. Both are meaningless when `next` is NIL.
    next_at: u32,
    next_score: f64,
}

/// The head's first height: enough for about 4^4 elements. A small set
/// (a Celery chord's, say) does not pay for 32 levels of head links; the
/// head moves to a full-height run when the list first grows taller.
const HEAD_START: usize = 5;

const EMPTY: Link = Link { next: NIL, span: 0, next_at: 0, next_score: 0.0 };
const _: () = assert!(std::mem::size_of::<Node>() == 64);

/// One cache line per node.
#[derive(Clone)]
#[repr(align(64))]
struct Node {
    score: f64,
    member: Arc<[u8]>,
    prev: u32,
    /// Levels 1 .. height live in `ZSet::upper` from this offset.
    at: u32,
    height: u8,
    /// Level 0, the one iteration follows, kept inside the node.
    link0: Link,
}

/// One sorted set. Scores are never NaN (callers refuse NaN input).
#[derive(Clone)]
pub struct ZSet {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Links of levels >= 1 of every node, height - 1 consecutive entries
    /// per node; `free_upper[h]` holds released runs of h entries.
    upper: Vec<Link>,
    free_upper: Vec<Vec<u32>>,
    index: HashMap<Arc<[u8]>, u32>,
    level: usize,
    tail: u32,
    rng: u64,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

/// True if (sa, ma) sorts before (sb, mb).
#[inline]
fn before(sa: f64, ma: &[u8], sb: f64, mb: &[u8]) -> bool {
    sa < sb || (sa == sb && ma < mb)
}

impl ZSet {
    pub fn new() -> ZSet {
        let head = Node { score: 0.0, member: Arc::from(&[][..]), prev: NIL, at: 0, height: HEAD_START as u8, link0: EMPTY };
        ZSet {
            nodes: vec![head],
            free: Vec::new(),
            upper: vec![EMPTY; HEAD_START - 1],
            free_upper: vec![Vec::new(); MAX_LEVEL],
            index: HashMap::new(),
            level: 1,
            tail: NIL,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.index.get(member).map(|&i| self.nodes[i as usize].score)
    }

    /// Bytes of heap this set holds, approximately (for INFO and the README).
    pub fn heap_bytes(&self) -> usize {
        let links = self.upper.capacity() * std::mem::size_of::<Link>();
        let members: usize = self.index.keys().map(|m| m.len() + 16 + 16).sum();
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + links
            + members
            + self.index.capacity() * (std::mem::size_of::<(Arc<[u8]>, u32)>() + 1)
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*; a node reaches level k+1 with probability 1/4^k.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (1 + (r.trailing_zeros() / 2) as usize).min(MAX_LEVEL)
    }

    fn link(&self, node: u32, level: usize) -> Link {
        let n = &self.nodes[node as usize];
        if level == 0 { n.link0 } else { self.upper[n.at as usize + level - 1] }
    }

    fn link_mut(&mut self, node: u32, level: usize) -> &mut Link {
        let n = &mut self.nodes[node as usize];
        if level == 0 { &mut n.link0 } else { &mut self.upper[n.at as usize + level - 1] }
    }

    /// The link at `level` >= 1 of the node whose upper links start at `at`.
    #[inline]
    fn upper_link(&self, at: u32, level: usize) -> Link {
        self.upper[at as usize + level - 1]
    }

    /// Gives the head at least `lvl` levels, moving its upper links to a
    /// full-height run (nothing links to the head, so only it changes).
    fn grow_head(&mut self, lvl: usize) {
        let h = self.nodes[HEAD as usize].height as usize;
        if lvl <= h {
            return;
        }
        let old = self.nodes[HEAD as usize].at as usize;
        let at = self.alloc_upper(MAX_LEVEL) as usize;
        for i in 0..MAX_LEVEL - 1 {
            self.upper[at + i] = if i < h - 1 { self.upper[old + i] } else { EMPTY };
        }
        self.free_upper[h - 1].push(old as u32);
        let head = &mut self.nodes[HEAD as usize];
        (head.at, head.height) = (at as u32, MAX_LEVEL as u8);
    }

    /// A run of `height - 1` upper links for a new node.
    fn alloc_upper(&mut self, height: usize) -> u32 {
        if height == 1 {
            return 0; // no upper links: `at` is never read
        }
        if let Some(at) = self.free_upper[height - 1].pop() {
            return at;
        }
        let at = self.upper.len() as u32;
        self.upper.resize(self.upper.len() + height - 1, EMPTY);
        at
    }

    /// For each level, the last node before (score, member) and its rank.
    fn path_to(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [u32; MAX_LEVEL]) {
        let (mut update, mut rank) = ([HEAD; MAX_LEVEL], [0u32; MAX_LEVEL]);
        let (mut x, mut at) = (HEAD, self.nodes[HEAD as usize].at);
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = if i == 0 { self.nodes[x as usize].link0 } else { self.upper_link(at, i) };
                if l.next == NIL {
                    break;
                }
                if !(l.next_score < score || (l.next_score == score && *self.nodes[l.next as usize].member < *member)) {
                    break;
                }
                rank[i] += l.span;
                (x, at) = (l.next, l.next_at);
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Sets `member`'s score; true if the member is new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        debug_assert!(!score.is_nan());
        let (shared, added) = match self.index.get_key_value(member) {
            Some((m, &i)) => {
                if self.nodes[i as usize].score == score {
                    return false;
                }
                let m = m.clone();
                self.unlink(&m, self.nodes[i as usize].score);
                (m, false)
            }
            None => (Arc::from(member), true),
        };
        let node = self.link_in(shared.clone(), score);
        self.index.insert(shared, node);
        added
    }

    fn link_in(&mut self, member: Arc<[u8]>, score: f64) -> u32 {
        let (mut update, mut rank) = self.path_to(score, &member);
        let lvl = self.random_level();
        if lvl > self.level {
            self.grow_head(lvl);
            let len = self.len() as u32;
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                self.link_mut(HEAD, i).span = len;
            }
            self.level = lvl;
        }
        let at = self.alloc_upper(lvl);
        let node = Node { score, member, prev: NIL, at, height: lvl as u8, link0: EMPTY };
        let x = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..lvl {
            let u = self.link(update[i], i);
            let gap = rank[0] - rank[i];
            *self.link_mut(x, i) = Link { span: u.span - gap, ..u };
            *self.link_mut(update[i], i) = Link { next: x, span: gap + 1, next_at: at, next_score: score };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.link_mut(u, i).span += 1;
        }
        self.nodes[x as usize].prev = if update[0] == HEAD { NIL } else { update[0] };
        match self.link(x, 0).next {
            NIL => self.tail = x,
            n => self.nodes[n as usize].prev = x,
        }
        x
    }

    /// Removes the node for (score, member) from the list (not the index).
    fn unlink(&mut self, member: &[u8], score: f64) {
        let (update, _) = self.path_to(score, member);
        let x = self.link(update[0], 0).next;
        debug_assert!(x != NIL && &*self.nodes[x as usize].member == member);
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.link(u, i);
            if ul.next == x {
                let xl = self.link(x, i);
                *self.link_mut(u, i) = Link { span: ul.span + xl.span - 1, ..xl };
            } else {
                self.link_mut(u, i).span -= 1;
            }
        }
        let (prev, next) = (self.nodes[x as usize].prev, self.link(x, 0).next);
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        while self.level > 1 && self.link(HEAD, self.level - 1).next == NIL {
            self.level -= 1;
        }
        // Drop the member reference now; the slot is reused later.
        self.nodes[x as usize].member = Arc::from(&[][..]);
        let n = &self.nodes[x as usize];
        if n.height > 1 {
            self.free_upper[n.height as usize - 1].push(n.at);
        }
        self.free.push(x);
    }

    /// Removes `member`; its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let i = *self.index.get(member)?;
        let score = self.nodes[i as usize].score;
        self.unlink(member, score);
        self.index.remove(member);
        Some(score)
    }

    /// 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.count_before(|s, m| before(s, m, score, member)))
    }

    /// How many elements satisfy `lt`, which must hold for a prefix of the
    /// order (every element before some point, none after).
    fn count_before(&self, lt: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !lt(n.score, &n.member) {
                    break;
                }
                rank += l.span as usize;
                x = l.next;
            }
        }
        rank
    }

    /// Elements with a score below `score` (or at most `score` if `inclusive`).
    pub fn count_below(&self, score: f64, inclusive: bool) -> usize {
        if inclusive {
            self.count_before(|s, _| s <= score)
        } else {
            self.count_before(|s, _| s < score)
        }
    }

    /// Elements whose member sorts below `member` (or at most `member` if
    /// `inclusive`); meaningful when every score is equal (ZRANGE BYLEX).
    pub fn count_below_lex(&self, member: &[u8], inclusive: bool) -> usize {
        if inclusive {
            self.count_before(|_, m| m <= member)
        } else {
            self.count_before(|_, m| m < member)
        }
    }

    /// The node at 0-based `rank`.
    fn node_at(&self, rank: usize) -> u32 {
        if rank >= self.len() {
            return NIL;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next == NIL || traversed + l.span as usize > target {
                    break;
                }
                traversed += l.span as usize;
                x = l.next;
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// Elements in ascending order from 0-based `rank`.
    pub fn iter_from(&self, rank: usize) -> Iter<'_> {
        Iter { set: self, at: self.node_at(rank), rev: false }
    }

    /// Elements in descending order from 0-based ascending `rank` down.
    pub fn iter_rev_from(&self, rank: usize) -> Iter<'_> {
        Iter { set: self, at: self.node_at(rank), rev: true }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { set: self, at: self.link(HEAD, 0).next, rev: false }
    }

    /// Removes the elements of ascending ranks `start..end`; how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        let doomed: Vec<Arc<[u8]>> = self.iter_from(start).take(end - start).map(|(m, _)| Arc::from(m)).collect();
        for m in &doomed {
            self.remove(m);
        }
        doomed.len()
    }
}

/// Walks a sorted set in either direction.
pub struct Iter<'a> {
    set: &'a ZSet,
    at: u32,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == NIL {
            return None;
        }
        let n = &self.set.nodes[self.at as usize];
        self.at = if self.rev { n.prev } else { n.link0.next };
        Some((&n.member, n.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every link's copy of its target's score and arena offset is current.
    fn check_links(z: &ZSet) {
        let mut live = vec![HEAD];
        let mut x = z.link(HEAD, 0).next;
        while x != NIL {
            live.push(x);
            x = z.link(x, 0).next;
        }
        for &n in &live {
            for i in 0..z.nodes[n as usize].height as usize {
                let l = z.link(n, i);
                if l.next != NIL {
                    let t = &z.nodes[l.next as usize];
                    assert!(l.next_score == t.score && l.next_at == t.at, "stale link {n} level {i}");
                }
            }
        }
    }

    /// Checks every query against a sorted model after random operations.
    #[test]
    fn matches_a_sorted_model() {
        let mut z = ZSet::new();
        let mut model: std::collections::HashMap<Vec<u8>, f64> = Default::default();
        let mut seed = 12345u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for step in 0..20_000 {
            let m = format!("m{}", rnd(500)).into_bytes();
            if rnd(4) == 0 {
                assert_eq!(z.remove(&m), model.remove(&m));
            } else {
                let s = rnd(50) as f64;
                assert_eq!(z.insert(&m, s), model.insert(m.clone(), s).is_none());
            }
            if step % 500 == 0 {
                check_links(&z);
                let sorted: BTreeSet<(u64, Vec<u8>)> = model.iter().map(|(m, s)| (*s as u64, m.clone())).collect();
                let order: Vec<(Vec<u8>, f64)> = sorted.iter().map(|(s, m)| (m.clone(), *s as f64)).collect();
                let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
                assert_eq!(got, order);
                assert_eq!(z.len(), order.len());
                for (r, (m, s)) in order.iter().enumerate() {
                    assert_eq!(z.rank(m), Some(r));
                    assert_eq!(z.score(m), Some(*s));
                }
                for from in [0, 1, order.len() / 2, order.len().saturating_sub(1), order.len()] {
                    let fwd: Vec<_> = z.iter_from(from).map(|(m, _)| m.to_vec()).collect();
                    let want: Vec<_> = order.iter().skip(from).map(|(m, _)| m.clone()).collect();
                    assert_eq!(fwd, want);
                    let back: Vec<_> = z.iter_rev_from(from).map(|(m, _)| m.to_vec()).collect();
                    let want: Vec<_> = order.iter().take((from + 1).min(order.len())).rev().map(|(m, _)| m.clone()).collect();
                    assert_eq!(back, if from < order.len() { want } else { vec![] });
                }
                for s in [0.0, 10.0, 25.5, 49.0, 60.0] {
                    assert_eq!(z.count_below(s, false), order.iter().filter(|(_, x)| *x < s).count());
                    assert_eq!(z.count_below(s, true), order.iter().filter(|(_, x)| *x <= s).count());
                }
            }
        }
        let n = z.len();
        assert_eq!(z.remove_range(1, 11), 10.min(n.saturating_sub(1)));
        assert_eq!(z.len(), n - 10.min(n.saturating_sub(1)));
    }

    /// A set tall enough to move the head to its full-height run, then
    /// emptied and refilled, keeps exact ranks and links.
    #[test]
    fn grows_tall_and_empties() {
        let mut z = ZSet::new();
        for round in 0..2 {
            for i in 0..40_000u64 {
                z.insert(format!("m{i}").as_bytes(), ((i * 7919) % 40_000) as f64);
            }
            assert!(z.level > HEAD_START, "round {round}: level {}", z.level);
            check_links(&z);
            for i in (0..40_000u64).step_by(997) {
                assert_eq!(z.rank(format!("m{i}").as_bytes()), Some(((i * 7919) % 40_000) as usize));
            }
            for i in (0..40_000u64).rev() {
                assert!(z.remove(format!("m{i}").as_bytes()).is_some());
            }
            assert!(z.is_empty() && z.iter().next().is_none());
        }
    }

    #[test]
    fn ties_order_by_member_and_lex_counts() {
        let mut z = ZSet::new();
        for m in ["b", "a", "d", "c"] {
            z.insert(m.as_bytes(), 1.0);
        }
        let got: Vec<_> = z.iter().map(|(m, _)| m.to_vec()).collect();
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(z.count_below_lex(b"b", false), 1);
        assert_eq!(z.count_below_lex(b"b", true), 2);
        assert!(!z.insert(b"a", 5.0));
        assert_eq!(z.rank(b"a"), Some(3));
        assert_eq!(z.iter_rev_from(3).next(), Some((&b"a"[..], 5.0)));
    }
}
