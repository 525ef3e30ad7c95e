//! The reply side of RESP: appends replies to a connection's output
//! buffer in the protocol the client chose (`HELLO 2|3`). RESP3 types
//! (null, map, set, double, push) fall back to their RESP2 forms exactly
//! as Redis's do, so one command implementation serves both.

use dbkv::engine::entry::format_i64;

/// An output buffer and the protocol version it is written in.
pub struct Reply<'a> {
    pub buf: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl Reply<'_> {
    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.buf.push(prefix);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn len_line(&mut self, prefix: u8, n: i64) {
        let mut tmp = [0u8; 20];
        self.line(prefix, format_i64(n, &mut tmp));
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply (`+text`); `text` must not hold CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// An error reply; `msg` starts with its code (`ERR ...`,
    /// `WRONGTYPE ...`). Line breaks are replaced so the reply stays one line.
    pub fn error(&mut self, msg: &str) {
        if msg.contains(['\r', '\n']) {
            let clean = msg.replace(['\r', '\n'], " ");
            self.line(b'-', clean.as_bytes());
        } else {
            self.line(b'-', msg.as_bytes());
        }
    }

    pub fn int(&mut self, n: i64) {
        self.len_line(b':', n);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        self.len_line(b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The absence of a value: `_` in RESP3, a nil bulk string in RESP2.
    pub fn null(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// A nil array in RESP2 (EXEC aborted by WATCH, BLPOP timeout).
    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn array(&mut self, n: usize) {
        self.len_line(b'*', n as i64);
    }

    /// A map of `n` pairs (RESP2: an array of 2n elements).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.len_line(b'%', n as i64);
        } else {
            self.len_line(b'*', 2 * n as i64);
        }
    }

    /// A set (RESP2: an array).
    pub fn set(&mut self, n: usize) {
        self.len_line(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// An out-of-band push (pub/sub messages); RESP2: an array.
    pub fn push(&mut self, n: usize) {
        self.len_line(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// Text that RESP3 marks as verbatim (INFO, CLIENT LIST).
    pub fn verbatim(&mut self, text: &str) {
        if self.resp3 {
            self.len_line(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    pub fn bulk_or_null(&mut self, v: Option<&[u8]>) {
        match v {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    pub fn bulks<'b>(&mut self, items: impl ExactSizeIterator<Item = &'b [u8]>) {
        self.array(items.len());
        for b in items {
            self.bulk(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_forms() {
        let mut b = Vec::new();
        let mut r = Reply { buf: &mut b, resp3: false };
        r.null();
        r.map(1);
        r.int(-3);
        r.error("ERR a\r\nb");
        assert_eq!(b, b"$-1\r\n*2\r\n:-3\r\n-ERR a  b\r\n");
        let mut b = Vec::new();
        let mut r = Reply { buf: &mut b, resp3: true };
        r.null();
        r.map(1);
        r.push(3);
        r.verbatim("hi");
        assert_eq!(b, b"_\r\n%1\r\n>3\r\n=6\r\ntxt:hi\r\n");
    }
}
