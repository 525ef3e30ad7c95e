//! The dump formats: one `Item` per key, written and read as JSON Lines
//! (`jsonl`) or as RESP commands (`resp`). Both carry absolute expiry
//! times, so a dump loaded later keeps each key's deadline, not its TTL.

pub mod jsonl;
pub mod resp;

use std::collections::HashMap;

use dbkv::engine::dump::DumpValue;
use dbkv::engine::{HARD_MAX_VALUE_BYTES, MAX_KEY_BYTES};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (see the README for the schema).
    Jsonl,
    /// Redis commands in RESP, for `redis-cli --pipe` or `dbkv load`.
    Resp,
}

/// One key's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(Vec<u8>),
    /// A counter (stored as an integer; reads see its decimal text).
    Int(i64),
    List(Vec<Vec<u8>>),
    /// Members in ascending (score, member) order as dumped.
    ZSet(Vec<(f64, Vec<u8>)>),
    Lock { owner: Vec<u8>, token: u64 },
}

/// One key as dumped: its value and absolute expiry (unix ms, 0 = none).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Vec<u8>,
    pub val: Val,
    pub expires_at: u64,
}

impl Item {
    /// Copies an engine entry out (under its shard's lock).
    pub fn from_dump(key: &[u8], v: DumpValue<'_>, expires_at: u64) -> Item {
        let val = match v {
            DumpValue::Bytes(b) => Val::Str(b.to_vec()),
            DumpValue::Int(n) => Val::Int(n),
            DumpValue::List(l) => Val::List(l.iter_from(0).map(<[u8]>::to_vec).collect()),
            DumpValue::ZSet(z) => Val::ZSet(z.iter().map(|(m, s)| (s, m.to_vec())).collect()),
            DumpValue::Lock { owner, token } => Val::Lock { owner: owner.to_vec(), token },
        };
        Item { key: key.to_vec(), val, expires_at }
    }
}

/// Input a load refuses: where (1-based line) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput {
    pub line: usize,
    pub msg: String,
}

impl BadInput {
    pub fn new(line: usize, msg: impl Into<String>) -> BadInput {
        BadInput { line, msg: msg.into() }
    }
}

/// Checks what the engine would refuse, so that a load fails before it
/// writes anything: key and value sizes, empty collections, locks without
/// an owner, token or expiry, NaN scores, a key given twice.
pub fn validate(items: &[(usize, Item)]) -> Result<(), BadInput> {
    let mut seen: HashMap<&[u8], usize> = HashMap::with_capacity(items.len());
    for (line, item) in items {
        let bad = |msg: String| Err(BadInput::new(*line, msg));
        if item.key.is_empty() || item.key.len() > MAX_KEY_BYTES {
            return bad(format!("key is {} bytes; keys are 1 to {MAX_KEY_BYTES} bytes", item.key.len()));
        }
        if let Some(first) = seen.insert(&item.key, *line) {
            return bad(format!("key {} was already given on line {first}", show(&item.key)));
        }
        if item.expires_at >= i64::MAX as u64 {
            return bad(format!("expiry {} ms is too far in the future", item.expires_at));
        }
        let too_big = |b: &[u8]| b.len() as u64 > HARD_MAX_VALUE_BYTES;
        match &item.val {
            Val::Str(v) if too_big(v) => return bad(format!("value is {} bytes; the limit is 1 GiB", v.len())),
            Val::List(l) if l.is_empty() => return bad("a list holds at least one element (an empty list is no key)".into()),
            Val::List(l) if l.iter().any(|e| too_big(e)) => return bad("a list element is over 1 GiB".into()),
            Val::ZSet(z) if z.is_empty() => return bad("a sorted set holds at least one member (an empty set is no key)".into()),
            Val::ZSet(z) if z.iter().any(|(s, m)| s.is_nan() || too_big(m)) => return bad("a sorted-set score is NaN or a member is over 1 GiB".into()),
            Val::Lock { owner, .. } if owner.is_empty() || too_big(owner) => return bad("a lock's owner is 1 byte to 1 GiB".into()),
            Val::Lock { token: 0, .. } => return bad("a lock's fencing token is at least 1".into()),
            Val::Lock { .. } if item.expires_at == 0 => return bad("a lock needs an expiry (expires_at_ms)".into()),
            _ => {}
        }
    }
    Ok(())
}

/// A key for messages: text when printable UTF-8, else escaped.
pub fn show(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => format!("\"{}\"", b.escape_ascii()),
    }
}

/// A score as text that parses back to the same f64 (`-0.0`, `inf`,
/// `1e300`): Rust's `Debug` prints the shortest exact form.
pub fn score_text(s: f64) -> String {
    format!("{s:?}")
}

/// Parses a score written by `score_text` or by a person (`+inf`, `1`).
pub fn parse_score(t: &str) -> Option<f64> {
    let t = t.trim();
    let v: f64 = match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ if t.bytes().any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') => return None,
        _ => t.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_round_trip_exactly() {
        for s in [0.0, -0.0, 1.5, -2.25e-300, 1e300, f64::INFINITY, f64::NEG_INFINITY, 0.1 + 0.2, f64::MIN_POSITIVE, 5e-324] {
            let back = parse_score(&score_text(s)).unwrap();
            assert_eq!(back.to_bits(), s.to_bits(), "{s}");
        }
        assert_eq!(parse_score("nan"), None);
        assert_eq!(parse_score("x1"), None);
        assert_eq!(parse_score("+inf"), Some(f64::INFINITY));
    }

    #[test]
    fn validation_names_the_line() {
        let item = |key: &[u8], val| Item { key: key.to_vec(), val, expires_at: 0 };
        let ok = vec![(1, item(b"a", Val::Str(vec![]))), (2, item(b"b", Val::Int(3)))];
        assert_eq!(validate(&ok), Ok(()));
        let dup = vec![(1, item(b"a", Val::Str(vec![]))), (4, item(b"a", Val::Int(3)))];
        assert_eq!(validate(&dup).unwrap_err().line, 4);
        let lock = vec![(7, item(b"l", Val::Lock { owner: b"o".to_vec(), token: 3 }))];
        assert!(validate(&lock).unwrap_err().msg.contains("expiry"));
        let empty = vec![(2, item(b"q", Val::List(vec![])))];
        assert_eq!(validate(&empty).unwrap_err().line, 2);
        assert!(validate(&[(1, item(b"", Val::Int(1)))]).is_err());
    }
}
