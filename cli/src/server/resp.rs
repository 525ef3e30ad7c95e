//! The request side of RESP: multibulk commands (`*2\r\n$3\r\nGET\r\n...`)
//! and inline commands (`GET key\r\n`, what telnet and redis-cli's
//! interactive mode may send), parsed without copying: a command's
//! arguments are ranges of the connection's input buffer.
//!
//! Limits and error texts follow Redis (`networking.c`), so clients that
//! match on them keep working. Every protocol error closes the connection
//! after its reply, as Redis does: the stream position is lost.

use std::ops::Range;

/// Longest inline command line (Redis: PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Most arguments in one multibulk command.
pub const MAX_ARGS: i64 = 1024 * 1024;

/// Longest bulk string before AUTH (Redis's limit).
const UNAUTHENTICATED_BULK: i64 = 16 * 1024;

/// Limits a connection parses under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest bulk string: the engine's value limit plus room for a key.
    pub max_bulk: usize,
    /// Before AUTH, commands are held to 10 arguments of 16 KiB (as in
    /// Redis), so an unauthenticated peer cannot make the server buffer
    /// gigabytes.
    pub authed: bool,
}

/// What `parse` found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole multibulk command: its argument ranges and the bytes it used.
    Command { args: Vec<Range<usize>>, used: usize },
    /// A whole inline command: its arguments (quotes and escapes decoded).
    Inline { args: Vec<Vec<u8>>, used: usize },
    /// An empty line or a `*0`/`*-1` header: nothing to run.
    Empty { used: usize },
    /// Not a whole command yet.
    Incomplete,
    /// Malformed input: reply with this error (no `-` prefix) and close.
    Error(String),
}

/// Parses one command from the start of `buf`.
pub fn parse(buf: &[u8], limits: &Limits) -> Parsed {
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf),
    }
}

/// The position of the first `\r\n` at or after `from`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + buf.get(at..)?.iter().position(|&b| b == b'\r')?;
        if buf.get(i + 1)? == &b'\n' {
            return Some(i);
        }
        at = i + 1;
    }
}

/// A decimal integer as Redis's `string2ll` accepts it.
fn parse_len(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse_multibulk(buf: &[u8], limits: &Limits) -> Parsed {
    let Some(eol) = find_crlf(buf, 1) else {
        return if buf.len() > INLINE_MAX { Parsed::Error("Protocol error: too big mbulk count string".into()) } else { Parsed::Incomplete };
    };
    let count = match parse_len(&buf[1..eol]) {
        Some(n) if n > 10 && !limits.authed => return Parsed::Error("Protocol error: unauthenticated multibulk length".into()),
        Some(n) if n <= MAX_ARGS => n,
        _ => return Parsed::Error("Protocol error: invalid multibulk length".into()),
    };
    let mut at = eol + 2;
    if count <= 0 {
        return Parsed::Empty { used: at };
    }
    let mut args = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        match buf.get(at) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(&c) => return Parsed::Error(format!("Protocol error: expected '$', got '{}'", c as char)),
        }
        let Some(eol) = find_crlf(buf, at + 1) else {
            return if buf.len() - at > INLINE_MAX { Parsed::Error("Protocol error: too big bulk count string".into()) } else { Parsed::Incomplete };
        };
        let len = match parse_len(&buf[at + 1..eol]) {
            Some(n) if n > UNAUTHENTICATED_BULK && !limits.authed => return Parsed::Error("Protocol error: unauthenticated bulk length".into()),
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk as u64 => n as usize,
            _ => return Parsed::Error("Protocol error: invalid bulk length".into()),
        };
        let start = eol + 2;
        let end = start + len;
        if buf.len() < end + 2 {
            return Parsed::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Error("Protocol error: bulk string is not terminated by CRLF".into());
        }
        args.push(start..end);
        at = end + 2;
    }
    Parsed::Command { args, used: at }
}

fn parse_inline(buf: &[u8]) -> Parsed {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > INLINE_MAX { Parsed::Error("Protocol error: too big inline request".into()) } else { Parsed::Incomplete };
    };
    if nl > INLINE_MAX {
        return Parsed::Error("Protocol error: too big inline request".into());
    }
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    match split_args(&buf[..line_end]) {
        Some(args) if args.is_empty() => Parsed::Empty { used: nl + 1 },
        Some(args) => Parsed::Inline { args, used: nl + 1 },
        None => Parsed::Error("Protocol error: unbalanced quotes in request".into()),
    }
}

/// Splits an inline line as Redis's `sdssplitargs`: whitespace separates
/// arguments; "double quotes" decode `\n \r \t \b \a \xHH` and `\<any>`;
/// 'single quotes' decode only `\'`; a closing quote must end the
/// argument. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && line[p].is_ascii_whitespace() {
            p += 1;
        }
        if p == line.len() {
            return Some(args);
        }
        let (arg, next) = split_one(line, p)?;
        args.push(arg);
        p = next;
    }
}

/// One argument starting at `line[p]`; returns it and where scanning goes on.
fn split_one(line: &[u8], mut p: usize) -> Option<(Vec<u8>, usize)> {
    let mut cur = Vec::new();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let ends_arg = |at: usize| at >= line.len() || line[at].is_ascii_whitespace();
    let mut quote = None;
    loop {
        match quote {
            None => match line.get(p) {
                None => return Some((cur, p)),
                Some(c) if c.is_ascii_whitespace() => return Some((cur, p)),
                Some(&q @ (b'"' | b'\'')) => quote = Some(q),
                Some(&c) => cur.push(c),
            },
            Some(b'"') => match *line.get(p)? {
                b'\\' if p + 3 < line.len() && line[p + 1] == b'x' && hex(line[p + 2]).is_some() && hex(line[p + 3]).is_some() => {
                    cur.push(hex(line[p + 2])? * 16 + hex(line[p + 3])?);
                    p += 3;
                }
                b'\\' if p + 1 < line.len() => {
                    p += 1;
                    cur.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                }
                b'"' if ends_arg(p + 1) => return Some((cur, p + 1)),
                b'"' => return None,
                c => cur.push(c),
            },
            Some(_) => match *line.get(p)? {
                b'\\' if line.get(p + 1) == Some(&b'\'') => {
                    cur.push(b'\'');
                    p += 1;
                }
                b'\'' if ends_arg(p + 1) => return Some((cur, p + 1)),
                b'\'' => return None,
                c => cur.push(c),
            },
        }
        p += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_bulk: 1 << 20, authed: true };

    fn args_of(buf: &[u8]) -> Vec<Vec<u8>> {
        match parse(buf, &L) {
            Parsed::Command { args, .. } => args.into_iter().map(|r| buf[r].to_vec()).collect(),
            Parsed::Inline { args, .. } => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn multibulk_and_inline() {
        assert_eq!(args_of(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(args_of(b"*1\r\n$0\r\n\r\n"), vec![Vec::<u8>::new()]);
        assert_eq!(args_of(b"set  k v\r\n"), vec![b"set".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!(args_of(b"PING\n"), vec![b"PING".to_vec()]);
        assert_eq!(args_of(b"set k \"a b\\n\\x41\"\r\n"), vec![b"set".to_vec(), b"k".to_vec(), b"a b\nA".to_vec()]);
        assert_eq!(args_of(b"set k 'it\\'s'\r\n")[2], b"it's".to_vec());
        assert_eq!(args_of(b"set k \"\"\r\n")[2], b"".to_vec());
        assert_eq!(parse(b"\r\n", &L), Parsed::Empty { used: 2 });
        assert_eq!(parse(b"*0\r\n", &L), Parsed::Empty { used: 4 });
    }

    #[test]
    fn incomplete_until_whole() {
        let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
        for n in 0..full.len() {
            assert_eq!(parse(&full[..n], &L), Parsed::Incomplete, "prefix {n}");
        }
        assert!(matches!(parse(full, &L), Parsed::Command { used, .. } if used == full.len()));
    }

    #[test]
    fn errors_as_redis_words_them() {
        let e = |b: &[u8]| match parse(b, &L) {
            Parsed::Error(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(e(b"*x\r\n"), "Protocol error: invalid multibulk length");
        let unauthed = Limits { authed: false, ..L };
        assert_eq!(parse(b"*11\r\n", &unauthed), Parsed::Error("Protocol error: unauthenticated multibulk length".into()));
        assert_eq!(parse(b"*1\r\n$16385\r\n", &unauthed), Parsed::Error("Protocol error: unauthenticated bulk length".into()));
        assert_eq!(e(b"*2000000\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(e(b"*1\r\n+x\r\n"), "Protocol error: expected '$', got '+'");
        assert_eq!(e(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(e(b"*1\r\n$2000000\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(e(b"set k \"abc\r\n"), "Protocol error: unbalanced quotes in request");
        assert_eq!(e(b"set k \"a\"b\r\n"), "Protocol error: unbalanced quotes in request");
        assert_eq!(e(b"set k 'it''s'\r\n"), "Protocol error: unbalanced quotes in request");
        assert_eq!(e(&vec![b'a'; INLINE_MAX + 1]), "Protocol error: too big inline request");
    }
}
