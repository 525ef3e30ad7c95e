//! RESP: each key as the Redis commands that rebuild it, with absolute
//! expiry times, so `redis-cli --pipe` (into Redis or `dbkv serve`) and
//! `dbkv load --format resp` replay it:
//!
//! - string: `SET key value [PXAT ms]`;
//! - list: `DEL key`, `RPUSH key e ...` (at most 1,024 elements a command),
//!   `PEXPIREAT key ms`;
//! - zset: `DEL key`, `ZADD key score member ...` (1,024 a command; scores
//!   in the shortest text that parses back exactly, `inf`/`-inf`),
//!   `PEXPIREAT key ms`;
//! - lock: `DBKV.RESTORELOCK key owner token PXAT ms`. Redis has no
//!   fencing tokens: only `dbkv load` replays this command (a server
//!   answers it with an error, one per lock).
//!
//! `dbkv load` reads exactly these commands. A `SET` whose value is a
//! canonical decimal integer loads as a counter: reads see the same bytes.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{parse_score, score_text, BadInput, Item, Val};

/// Elements per RPUSH or ZADD: bounded commands for any collection size.
const CHUNK: usize = 1024;

fn command(out: &mut dyn Write, args: &[&[u8]]) -> io::Result<()> {
    write!(out, "*{}\r\n", args.len())?;
    for a in args {
        write!(out, "${}\r\n", a.len())?;
        out.write_all(a)?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

/// Writes the commands that rebuild one item.
pub fn write(out: &mut dyn Write, item: &Item) -> io::Result<()> {
    let key = &item.key[..];
    let at = item.expires_at.to_string();
    match &item.val {
        Val::Str(v) => string(out, key, v, item.expires_at, &at),
        Val::Int(n) => string(out, key, n.to_string().as_bytes(), item.expires_at, &at),
        Val::List(l) => {
            command(out, &[b"DEL", key])?;
            for chunk in l.chunks(CHUNK) {
                let mut args: Vec<&[u8]> = vec![b"RPUSH", key];
                args.extend(chunk.iter().map(Vec::as_slice));
                command(out, &args)?;
            }
            expire(out, key, item.expires_at, &at)
        }
        Val::ZSet(z) => {
            command(out, &[b"DEL", key])?;
            for chunk in z.chunks(CHUNK) {
                let scores: Vec<String> = chunk.iter().map(|(s, _)| score_text(*s)).collect();
                let mut args: Vec<&[u8]> = vec![b"ZADD", key];
                for ((_, m), s) in chunk.iter().zip(&scores) {
                    args.push(s.as_bytes());
                    args.push(m);
                }
                command(out, &args)?;
            }
            expire(out, key, item.expires_at, &at)
        }
        Val::Lock { owner, token } => command(out, &[b"DBKV.RESTORELOCK", key, owner, token.to_string().as_bytes(), b"PXAT", at.as_bytes()]),
    }
}

fn string(out: &mut dyn Write, key: &[u8], v: &[u8], expires_at: u64, at: &str) -> io::Result<()> {
    if expires_at == 0 {
        command(out, &[b"SET", key, v])
    } else {
        command(out, &[b"SET", key, v, b"PXAT", at.as_bytes()])
    }
}

fn expire(out: &mut dyn Write, key: &[u8], expires_at: u64, at: &str) -> io::Result<()> {
    if expires_at == 0 {
        return Ok(());
    }
    command(out, &[b"PEXPIREAT", key, at.as_bytes()])
}

/// Reads one `<prefix><number>\r\n` line at `*at`, advancing `at` and `line`.
fn header(input: &[u8], at: &mut usize, line: &mut usize, prefix: u8) -> Result<usize, String> {
    let end = input[*at..].windows(2).position(|w| w == b"\r\n").ok_or("a line does not end in CRLF")?;
    let text = &input[*at..*at + end];
    if text.first() != Some(&prefix) {
        return Err(format!("expected '{}' at the start of line {line}", prefix as char));
    }
    let n = std::str::from_utf8(&text[1..]).ok().and_then(|t| t.parse().ok()).ok_or_else(|| format!("bad length on line {line}"))?;
    *at += end + 2;
    *line += 1;
    Ok(n)
}

/// A command as read: the line it starts on, and its arguments.
type Command<'a> = (usize, Vec<&'a [u8]>);

/// Reads RESP arrays of bulk strings.
fn commands(input: &[u8]) -> Result<Vec<Command<'_>>, BadInput> {
    let mut out = Vec::new();
    let (mut at, mut line) = (0usize, 1usize);
    while at < input.len() {
        let start_line = line;
        let number = out.len() + 1;
        let bad = |what: String| BadInput::new(start_line, format!("command {number}: {what}"));
        let n = header(input, &mut at, &mut line, b'*').map_err(bad)?;
        let mut args = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let len = header(input, &mut at, &mut line, b'$').map_err(bad)?;
            let end = at.checked_add(len).filter(|&e| e + 2 <= input.len()).ok_or_else(|| bad("the input ends inside an argument".into()))?;
            if &input[end..end + 2] != b"\r\n" {
                return Err(bad("an argument is not followed by CRLF".into()));
            }
            args.push(&input[at..end]);
            line += input[at..end].iter().filter(|&&b| b == b'\n').count() + 1;
            at = end + 2;
        }
        if args.is_empty() {
            return Err(bad("empty command".into()));
        }
        out.push((start_line, args));
    }
    Ok(out)
}

/// Builds items from the commands `write` emits, in order.
pub fn parse(input: &[u8]) -> Result<Vec<(usize, Item)>, BadInput> {
    let mut items: Vec<(usize, Item)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for (line, args) in commands(input)? {
        let bad = |m: String| BadInput::new(line, m);
        let name = String::from_utf8_lossy(args[0]).to_ascii_uppercase();
        let arity = |n: usize| if args.len() == n { Ok(()) } else { Err(bad(format!("{name} takes {} arguments here, not {}", n - 1, args.len() - 1))) };
        let existing = index.get(args.get(1).copied().unwrap_or_default()).copied();
        match name.as_str() {
            "SET" => {
                if args.len() != 3 && args.len() != 5 {
                    return Err(bad("SET takes key value [PXAT ms]".into()));
                }
                let expires_at = if args.len() == 5 { pxat(&args[3..], &bad)? } else { 0 };
                let val = match dbkv::engine::entry::parse_i64(args[2]) {
                    Some(n) => Val::Int(n),
                    None => Val::Str(args[2].to_vec()),
                };
                add(&mut items, &mut index, line, Item { key: args[1].to_vec(), val, expires_at }).map_err(bad)?;
            }
            "DEL" => {
                arity(2)?;
                if existing.is_some() {
                    return Err(bad(format!("DEL of key {} given earlier in the input", super::show(args[1]))));
                }
            }
            "RPUSH" | "ZADD" if args.len() < 3 => return Err(bad(format!("{name} needs a key and elements"))),
            "RPUSH" => {
                let elems = args[2..].iter().map(|e| e.to_vec());
                match existing.map(|i| &mut items[i].1.val) {
                    Some(Val::List(l)) => l.extend(elems),
                    Some(_) => return Err(bad(format!("RPUSH onto key {} that is not a list", super::show(args[1])))),
                    None => add(&mut items, &mut index, line, Item { key: args[1].to_vec(), val: Val::List(elems.collect()), expires_at: 0 }).map_err(bad)?,
                }
            }
            "ZADD" => {
                if args.len() % 2 != 0 {
                    return Err(bad("ZADD takes key followed by score member pairs".into()));
                }
                let mut pairs = Vec::with_capacity(args.len() / 2);
                for p in args[2..].chunks(2) {
                    let s = std::str::from_utf8(p[0]).ok().and_then(parse_score).ok_or_else(|| bad(format!("score {} is not a number", super::show(p[0]))))?;
                    pairs.push((s, p[1].to_vec()));
                }
                match existing.map(|i| &mut items[i].1.val) {
                    Some(Val::ZSet(z)) => z.extend(pairs),
                    Some(_) => return Err(bad(format!("ZADD onto key {} that is not a sorted set", super::show(args[1])))),
                    None => add(&mut items, &mut index, line, Item { key: args[1].to_vec(), val: Val::ZSet(pairs), expires_at: 0 }).map_err(bad)?,
                }
            }
            "PEXPIREAT" => {
                arity(3)?;
                let i = existing.ok_or_else(|| bad(format!("PEXPIREAT of key {} that no earlier command created", super::show(args[1]))))?;
                items[i].1.expires_at = pxat(&[b"PXAT", args[2]], &bad)?;
            }
            "DBKV.RESTORELOCK" => {
                arity(6)?;
                let token = std::str::from_utf8(args[3]).ok().and_then(|t| t.parse().ok()).ok_or_else(|| bad("the fencing token is not a whole number".into()))?;
                let expires_at = pxat(&args[4..], &bad)?;
                let val = Val::Lock { owner: args[2].to_vec(), token };
                add(&mut items, &mut index, line, Item { key: args[1].to_vec(), val, expires_at }).map_err(bad)?;
            }
            _ => return Err(bad(format!("{name} is not a command a dbkv dump holds (SET, DEL, RPUSH, ZADD, PEXPIREAT, DBKV.RESTORELOCK)"))),
        }
    }
    Ok(items)
}

fn add(items: &mut Vec<(usize, Item)>, index: &mut HashMap<Vec<u8>, usize>, line: usize, item: Item) -> Result<(), String> {
    if let Some(&i) = index.get(&item.key) {
        return Err(format!("key {} was already given on line {}", super::show(&item.key), items[i].0));
    }
    index.insert(item.key.clone(), items.len());
    items.push((line, item));
    Ok(())
}

/// `PXAT ms` (or PEXPIREAT's `ms`) as unix milliseconds above 0.
fn pxat(args: &[&[u8]], bad: &dyn Fn(String) -> BadInput) -> Result<u64, BadInput> {
    if !args[0].eq_ignore_ascii_case(b"PXAT") {
        return Err(bad(format!("expected PXAT, got {}", super::show(args[0]))));
    }
    std::str::from_utf8(args[1]).ok().and_then(|t| t.parse().ok()).filter(|&t: &u64| t > 0).ok_or_else(|| bad("the expiry is not unix milliseconds above 0".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_every_type() {
        let long: Vec<Vec<u8>> = (0..2500).map(|i| format!("e{i}").into_bytes()).collect();
        let items = vec![
            Item { key: b"s".to_vec(), val: Val::Str(b"a\r\nb\0".to_vec()), expires_at: 77 },
            Item { key: b"e".to_vec(), val: Val::Str(Vec::new()), expires_at: 0 },
            Item { key: b"n".to_vec(), val: Val::Int(-12), expires_at: 0 },
            Item { key: b"q".to_vec(), val: Val::List(long), expires_at: 99 },
            Item { key: b"z".to_vec(), val: Val::ZSet(vec![(f64::NEG_INFINITY, b"a".to_vec()), (-0.0, b"b".to_vec()), (1e300, b"c".to_vec())]), expires_at: 0 },
            Item { key: b"l".to_vec(), val: Val::Lock { owner: b"me".to_vec(), token: 17 }, expires_at: 5 },
        ];
        let mut out = Vec::new();
        for i in &items {
            write(&mut out, i).unwrap();
        }
        let back: Vec<Item> = parse(&out).unwrap().into_iter().map(|(_, i)| i).collect();
        assert_eq!(back, items);
        let Val::ZSet(z) = &back[4].val else { panic!() };
        assert_eq!(z[1].0.to_bits(), (-0.0f64).to_bits());
        assert_eq!(out.windows(5).filter(|w| w == b"RPUSH").count(), 3, "chunks of 1024");
    }

    #[test]
    fn bad_commands_name_their_line() {
        let e = parse(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$4\r\nHSET\r\n$1\r\nh\r\n").unwrap_err();
        assert_eq!(e.line, 8);
        assert!(e.msg.contains("HSET"), "{e:?}");
        assert!(parse(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\n1\r\n").unwrap_err().msg.contains("ends inside"));
        assert!(parse(b"*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nk\r\n$1\r\n5\r\n").unwrap_err().msg.contains("no earlier command"));
    }
}
