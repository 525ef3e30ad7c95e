//! JSON Lines: one object per key, fields in this order:
//!
//! `{"key": B, "type": "string"|"list"|"zset"|"lock", ...,
//!   "expires_at_ms": N|null, "ttl_ms": N|null}`
//!
//! - string: `"value": B`, plus `"encoding": "int"` for a counter (its
//!   value is then the decimal text);
//! - list: `"elements": [B, ...]` head to tail;
//! - zset: `"members": [{"member": B, "score": S}, ...]` ascending, S a
//!   JSON number that parses back to the same f64 (`-0.0` included), or
//!   the strings `"inf"` / `"-inf"`;
//! - lock: `"owner": B, "token": N` (the fencing token it was granted with).
//!
//! B, a byte string, is a JSON string when the bytes are valid UTF-8 and
//! `{"base64": "..."}` (standard alphabet, padded) otherwise.
//! `expires_at_ms` is absolute (unix ms) and is what `dbkv load` uses;
//! `ttl_ms` is the time left when the dump was taken, for people.

use std::io::{self, Write};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{parse_score, BadInput, Item, Val};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn bytes(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "base64": B64.encode(b) }),
    }
}

fn score(s: f64) -> Value {
    match serde_json::Number::from_f64(s) {
        Some(n) => Value::Number(n),
        None if s > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

/// Writes one item as a line; `now` (unix ms) gives `ttl_ms`.
pub fn write(out: &mut dyn Write, item: &Item, now: u64) -> io::Result<()> {
    let mut m = Map::new();
    m.insert("key".into(), bytes(&item.key));
    let kind = match &item.val {
        Val::Str(_) | Val::Int(_) => "string",
        Val::List(_) => "list",
        Val::ZSet(_) => "zset",
        Val::Lock { .. } => "lock",
    };
    m.insert("type".into(), kind.into());
    match &item.val {
        Val::Str(v) => {
            m.insert("value".into(), bytes(v));
        }
        Val::Int(n) => {
            m.insert("encoding".into(), "int".into());
            m.insert("value".into(), n.to_string().into());
        }
        Val::List(l) => {
            m.insert("elements".into(), l.iter().map(|e| bytes(e)).collect());
        }
        Val::ZSet(z) => {
            m.insert("members".into(), z.iter().map(|(s, mb)| json!({ "member": bytes(mb), "score": score(*s) })).collect());
        }
        Val::Lock { owner, token } => {
            m.insert("owner".into(), bytes(owner));
            m.insert("token".into(), (*token).into());
        }
    }
    let (exp, ttl) = match item.expires_at {
        0 => (Value::Null, Value::Null),
        t => (t.into(), t.saturating_sub(now).into()),
    };
    m.insert("expires_at_ms".into(), exp);
    m.insert("ttl_ms".into(), ttl);
    serde_json::to_writer(&mut *out, &Value::Object(m))?;
    out.write_all(b"\n")
}

/// Parses a whole JSON Lines input (blank lines allowed) with each item's
/// line number.
pub fn parse(input: &[u8]) -> Result<Vec<(usize, Item)>, BadInput> {
    let mut out = Vec::new();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = serde_json::from_slice(line).map_err(|e| BadInput::new(i + 1, format!("not JSON: {e}")))?;
        out.push((i + 1, item(&v).map_err(|m| BadInput::new(i + 1, m))?));
    }
    Ok(out)
}

fn item(v: &Value) -> Result<Item, String> {
    let o = v.as_object().ok_or("a line must be a JSON object")?;
    let field = |name: &str| o.get(name).ok_or_else(|| format!("field \"{name}\" is missing"));
    let key = parse_bytes(field("key")?).map_err(|m| format!("\"key\": {m}"))?;
    let kind = field("type")?.as_str().ok_or("\"type\" must be a string")?;
    let val = match kind {
        "string" => {
            let value = parse_bytes(field("value")?).map_err(|m| format!("\"value\": {m}"))?;
            match o.get("encoding").and_then(Value::as_str) {
                Some("int") => {
                    let text = std::str::from_utf8(&value).ok();
                    Val::Int(text.and_then(|t| t.parse().ok()).ok_or("\"encoding\": \"int\" needs a value that is a signed 64-bit decimal")?)
                }
                Some(other) => return Err(format!("\"encoding\" {other:?} is not \"int\"")),
                None => Val::Str(value),
            }
        }
        "list" => Val::List(array(field("elements")?, "elements")?.iter().map(parse_bytes).collect::<Result<_, _>>().map_err(|m| format!("\"elements\": {m}"))?),
        "zset" => Val::ZSet(array(field("members")?, "members")?.iter().map(member).collect::<Result<_, _>>()?),
        "lock" => Val::Lock {
            owner: parse_bytes(field("owner")?).map_err(|m| format!("\"owner\": {m}"))?,
            token: field("token")?.as_u64().ok_or("\"token\" must be a whole number from 1 to 2^64-1")?,
        },
        other => return Err(format!("\"type\" {other:?} is not one of string, list, zset, lock")),
    };
    let expires_at = match o.get("expires_at_ms") {
        None | Some(Value::Null) => 0,
        Some(t) => t.as_u64().filter(|&t| t > 0).ok_or("\"expires_at_ms\" must be null or unix milliseconds above 0")?,
    };
    Ok(Item { key, val, expires_at })
}

fn array<'v>(v: &'v Value, name: &str) -> Result<&'v Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("\"{name}\" must be an array"))
}

fn member(v: &Value) -> Result<(f64, Vec<u8>), String> {
    let m = parse_bytes(v.get("member").ok_or("a zset member needs \"member\"")?).map_err(|e| format!("\"member\": {e}"))?;
    let s = match v.get("score") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(t)) => parse_score(t),
        _ => None,
    };
    Ok((s.ok_or("\"score\" must be a number or \"inf\" / \"-inf\"")?, m))
}

fn parse_bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(o) if o.len() == 1 => {
            let b = o.get("base64").and_then(Value::as_str).ok_or("a byte string object has only \"base64\"")?;
            B64.decode(b).map_err(|e| format!("bad base64: {e}"))
        }
        _ => Err("a byte string is a JSON string or {\"base64\": \"...\"}".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &Item) -> String {
        let mut out = Vec::new();
        write(&mut out, item, 1_000).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The schema the README documents, field for field.
    #[test]
    fn schema_is_pinned() {
        let s = Item { key: b"user:1".to_vec(), val: Val::Str(vec![0xff, 0]), expires_at: 5_000 };
        assert_eq!(line(&s), "{\"key\":\"user:1\",\"type\":\"string\",\"value\":{\"base64\":\"/wA=\"},\"expires_at_ms\":5000,\"ttl_ms\":4000}\n");
        let n = Item { key: b"n".to_vec(), val: Val::Int(-7), expires_at: 0 };
        assert_eq!(line(&n), "{\"key\":\"n\",\"type\":\"string\",\"encoding\":\"int\",\"value\":\"-7\",\"expires_at_ms\":null,\"ttl_ms\":null}\n");
        let z = Item { key: b"z".to_vec(), val: Val::ZSet(vec![(f64::NEG_INFINITY, b"a".to_vec()), (-0.0, b"b".to_vec()), (0.1, b"c".to_vec())]), expires_at: 0 };
        assert_eq!(line(&z), "{\"key\":\"z\",\"type\":\"zset\",\"members\":[{\"member\":\"a\",\"score\":\"-inf\"},{\"member\":\"b\",\"score\":-0.0},{\"member\":\"c\",\"score\":0.1}],\"expires_at_ms\":null,\"ttl_ms\":null}\n");
        let l = Item { key: b"l".to_vec(), val: Val::Lock { owner: b"w1".to_vec(), token: 42 }, expires_at: 9_000 };
        assert_eq!(line(&l), "{\"key\":\"l\",\"type\":\"lock\",\"owner\":\"w1\",\"token\":42,\"expires_at_ms\":9000,\"ttl_ms\":8000}\n");
        let q = Item { key: b"q".to_vec(), val: Val::List(vec![b"".to_vec(), b"x".to_vec()]), expires_at: 0 };
        assert_eq!(line(&q), "{\"key\":\"q\",\"type\":\"list\",\"elements\":[\"\",\"x\"],\"expires_at_ms\":null,\"ttl_ms\":null}\n");
        for item in [s, n, z, l, q] {
            let back = parse(line(&item).as_bytes()).unwrap();
            assert_eq!(back[0].1, item);
            if let (Val::ZSet(a), Val::ZSet(b)) = (&back[0].1.val, &item.val) {
                assert!(a.iter().zip(b).all(|(x, y)| x.0.to_bits() == y.0.to_bits()), "-0.0 keeps its sign");
            }
        }
    }

    #[test]
    fn bad_lines_name_their_number_and_problem() {
        let input = b"{\"key\":\"a\",\"type\":\"string\",\"value\":\"1\"}\n\n{\"key\":\"b\",\"type\":\"hash\"}\n";
        let e = parse(input).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("\"hash\""), "{e:?}");
        assert_eq!(parse(b"[1]").unwrap_err().msg, "a line must be a JSON object");
        assert!(parse(b"{\"key\":{\"base64\":\"!!\"},\"type\":\"string\",\"value\":\"\"}").unwrap_err().msg.contains("base64"));
        assert!(parse(b"{\"key\":\"z\",\"type\":\"zset\",\"members\":[{\"member\":\"m\",\"score\":\"nan\"}]}").is_err());
    }
}
