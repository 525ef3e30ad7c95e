//! Lists and sorted sets in the restart model. The model keeps a
//! collection as its rendering (`L|a|b`, `Z|m=1|n=2` sorted by score then
//! member), which the engine's view renders the same way, so every
//! comparison the model makes covers collections too.

use super::*;
use dbkv::engine::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Coll {
    List(Vec<Vec<u8>>),
    ZSet(Vec<(Vec<u8>, f64)>),
}

pub fn render(c: &Coll) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Coll::List(items) => {
            out.extend_from_slice(b"L");
            for i in items {
                out.push(b'|');
                out.extend_from_slice(i);
            }
        }
        Coll::ZSet(pairs) => {
            let mut sorted = pairs.clone();
            sorted.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
            out.extend_from_slice(b"Z");
            for (m, s) in sorted {
                out.extend_from_slice(format!("|{}={s}", String::from_utf8_lossy(&m)).as_bytes());
            }
        }
    }
    out
}

/// The collection a model value renders, or None for a string.
pub fn parse(v: &[u8]) -> Option<Coll> {
    let text = std::str::from_utf8(v).ok()?;
    let mut parts = text.split('|');
    match parts.next()? {
        "L" if text.starts_with("L|") => Some(Coll::List(parts.map(|p| p.as_bytes().to_vec()).collect())),
        "Z" if text.starts_with("Z|") => Some(Coll::ZSet(
            parts
                .map(|p| {
                    let (m, s) = p.rsplit_once('=').unwrap();
                    (m.as_bytes().to_vec(), s.parse().unwrap())
                })
                .collect(),
        )),
        _ => None,
    }
}

pub fn is_coll(v: &[u8]) -> bool {
    parse(v).is_some()
}

/// An engine value as the model renders it.
pub fn render_value(v: Value<'_>) -> Vec<u8> {
    match v {
        Value::List(l) => render(&Coll::List(l.iter_from(0).map(|b| b.to_vec()).collect())),
        Value::ZSet(z) => render(&Coll::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect())),
        other => other.to_vec().unwrap(),
    }
}

fn sorted(mut pairs: Vec<(Vec<u8>, f64)>) -> Vec<(Vec<u8>, f64)> {
    pairs.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    pairs
}

/// What one collection op returned: an element list or a number.
#[derive(Debug, PartialEq)]
enum Out {
    Items(Vec<Vec<u8>>),
    N(usize),
}

impl Harness {
    fn elem(&mut self) -> Vec<u8> {
        format!("e{}", self.rng.below(6)).into_bytes()
    }

    fn member(&mut self) -> Vec<u8> {
        format!("m{}", self.rng.below(6)).into_bytes()
    }

    /// One list or sorted-set operation through a transaction, checked
    /// against the model: results, wrong-type errors, emptied keys deleted,
    /// a push onto an expired key starting a fresh collection.
    pub fn op_coll(&mut self) {
        let k = self.key();
        let now = self.t();
        let live = self.m.live(&k, now).map(|e| (parse(&e.v), e.exp));
        let op = self.rng.below(7);
        let left = self.rng.chance(50);
        let elems: Vec<Vec<u8>> = (0..1 + self.rng.below(3)).map(|_| self.elem()).collect();
        let members: Vec<Vec<u8>> = (0..1 + self.rng.below(3)).map(|_| self.member()).collect();
        let scores: Vec<f64> = members.iter().map(|_| self.rng.below(5) as f64 - 1.0).collect();
        let (a, b) = (self.rng.below(4), self.rng.below(4));
        self.note(format!("coll {op} {} left {left} {elems:?} {members:?} {scores:?} {a} {b}", s(&k)));
        let wants_list = op <= 2;
        let (cur, exp) = match &live {
            None => (None, 0),
            Some((Some(c), exp)) if matches!(c, Coll::List(_)) == wants_list => (Some(c.clone()), *exp),
            Some(_) => {
                let got = self.run_coll(&k, op, left, &elems, &members, &scores, a, b);
                self.same(got.map(|_| ()), Err(Error::WrongType), "collection op on another type");
                return;
            }
        };
        let (want, next) = model_op(cur, op, left, &elems, &members, &scores, a, b);
        let got = self.run_coll(&k, op, left, &elems, &members, &scores, a, b);
        self.same(got, Ok(want), "collection op");
        match next {
            Some(c) if !matches!(&c, Coll::List(v) if v.is_empty()) && !matches!(&c, Coll::ZSet(v) if v.is_empty()) => {
                let v = render(&c);
                self.m.written.insert((k.clone(), v.clone()));
                self.m.table.insert(k, Ent { v, exp });
            }
            _ if live.is_some() => {
                self.m.table.remove(&k);
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_coll(&self, k: &[u8], op: usize, left: bool, elems: &[Vec<u8>], members: &[Vec<u8>], scores: &[f64], a: usize, b: usize) -> Result<Out, Error> {
        let er: Vec<&[u8]> = elems.iter().map(|e| e.as_slice()).collect();
        let mr: Vec<&[u8]> = members.iter().map(|e| e.as_slice()).collect();
        self.e().transact(Scope::Keys(&[k]), |t| -> Result<Out, Error> {
            Ok(match op {
                0 => Out::N(t.list_push(k, left, &er)?),
                1 => Out::Items(t.list_pop(k, left, a + 1)?.into_iter().map(|b| b.to_vec()).collect()),
                2 => {
                    t.list_trim(k, a, a + b)?;
                    Out::N(t.list(k)?.map_or(0, |l| l.len()))
                }
                3 => {
                    let pairs: Vec<(f64, &[u8])> = scores.iter().copied().zip(mr.iter().copied()).collect();
                    Out::N(t.zadd(k, &pairs)?)
                }
                4 => Out::N(t.zrem(k, &mr)?),
                5 => Out::N(t.zrem_range(k, a, a + b)?),
                _ => Out::Items(t.zset(k)?.map_or(vec![], |z| z.iter_from(a).map(|(m, _)| m.to_vec()).collect())),
            })
        })?
    }
}

/// The model of one op: its result and the collection after it.
#[allow(clippy::too_many_arguments)]
fn model_op(cur: Option<Coll>, op: usize, left: bool, elems: &[Vec<u8>], members: &[Vec<u8>], scores: &[f64], a: usize, b: usize) -> (Out, Option<Coll>) {
    let mut list = match &cur {
        Some(Coll::List(v)) => v.clone(),
        _ => vec![],
    };
    let mut zset = match &cur {
        Some(Coll::ZSet(v)) => v.clone(),
        _ => vec![],
    };
    match op {
        0 => {
            for e in elems {
                if left {
                    list.insert(0, e.clone());
                } else {
                    list.push(e.clone());
                }
            }
            (Out::N(list.len()), Some(Coll::List(list)))
        }
        1 => {
            let n = (a + 1).min(list.len());
            let popped: Vec<Vec<u8>> = if left { list.drain(..n).collect() } else { list.drain(list.len() - n..).rev().collect() };
            (Out::Items(popped), cur.map(|_| Coll::List(list)))
        }
        2 => {
            let kept: Vec<Vec<u8>> = list.iter().skip(a).take(b).cloned().collect();
            let n = kept.len();
            (Out::N(n), cur.map(|_| Coll::List(if a == 0 && a + b >= list.len() { list } else { kept })))
        }
        3 => {
            let mut added = 0;
            for (m, s) in members.iter().zip(scores) {
                match zset.iter_mut().find(|(x, _)| x == m) {
                    Some(p) => p.1 = *s,
                    None => {
                        zset.push((m.clone(), *s));
                        added += 1;
                    }
                }
            }
            (Out::N(added), Some(Coll::ZSet(zset)))
        }
        4 => {
            let before = zset.len();
            zset.retain(|(m, _)| !members.contains(m));
            (Out::N(before - zset.len()), cur.map(|_| Coll::ZSet(zset)))
        }
        5 => {
            let ordered = sorted(zset);
            let end = (a + b).min(ordered.len());
            let removed = end.saturating_sub(a);
            let kept: Vec<_> = ordered.iter().enumerate().filter(|(i, _)| *i < a || *i >= end).map(|(_, p)| p.clone()).collect();
            (Out::N(removed), cur.map(|_| Coll::ZSet(kept)))
        }
        _ => (Out::Items(sorted(zset.clone()).into_iter().skip(a).map(|(m, _)| m).collect()), cur),
    }
}
