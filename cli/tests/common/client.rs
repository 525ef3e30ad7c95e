//! The tests' RESP client: a blocking connection (TCP or Unix socket)
//! that sends commands and parses every RESP2/RESP3 reply type.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::TIMEOUT;

/// One RESP value as the server sent it.
#[derive(Clone, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1` (RESP2 nil).
    NilBulk,
    /// `*-1` (RESP2 nil array).
    NilArray,
    /// `_` (RESP3 null).
    Null,
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Double(f64),
    Boolean(bool),
    Verbatim(String, Vec<u8>),
    Push(Vec<Value>),
    BigNumber(String),
}

impl Value {
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::NilBulk | Value::NilArray | Value::Null)
    }

    /// The elements of an array, set or push.
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => v,
            other => panic!("expected an array, got {other:?}"),
        }
    }

    /// Key-value pairs of a RESP3 map or a RESP2 flat array of pairs.
    pub fn pairs(&self) -> Vec<(Value, Value)> {
        match self {
            Value::Map(m) => m.clone(),
            Value::Array(v) => {
                assert!(v.len() % 2 == 0, "odd-length array as a map: {self:?}");
                v.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
            }
            other => panic!("expected a map, got {other:?}"),
        }
    }

    /// The value for a text key of a map.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.pairs().into_iter().find(|(k, _)| k.as_text().as_deref() == Some(key)).map(|(_, v)| v)
    }

    /// Bulk, simple, verbatim text (lossy).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Simple(s) | Value::BigNumber(s) => Some(s.clone()),
            Value::Bulk(b) | Value::Verbatim(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(s) => write!(f, "-{s}"),
            Value::Int(n) => write!(f, ":{n}"),
            Value::Bulk(b) if b.len() > 200 => write!(f, "${}<{:?}...>", b.len(), String::from_utf8_lossy(&b[..200])),
            Value::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::NilBulk => write!(f, "$-1"),
            Value::NilArray => write!(f, "*-1"),
            Value::Null => write!(f, "_"),
            Value::Array(v) => f.debug_list().entries(v).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            Value::Set(v) => write!(f, "~{v:?}"),
            Value::Double(d) => write!(f, ",{d}"),
            Value::Boolean(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            Value::Verbatim(fmt_, b) => write!(f, "={fmt_}:{:?}", String::from_utf8_lossy(b)),
            Value::Push(v) => write!(f, ">{v:?}"),
            Value::BigNumber(s) => write!(f, "({s}"),
        }
    }
}

trait Stream: Read + Write + Send {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()>;
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, d)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, d)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Reads through a buffer from a stream we also write to.
struct Shared(Box<dyn Stream>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A small blocking RESP client. Every read has a timeout (`TIMEOUT` by
/// default) so a missing reply fails the test instead of hanging it.
pub struct Client {
    r: BufReader<Shared>,
}

/// Why a read found no whole value.
#[derive(Debug)]
pub enum ReadError {
    /// The connection ended (cleanly, or reset) before a value started.
    Closed,
    /// The connection ended in the middle of a value.
    Truncated,
    /// Bytes that are not RESP.
    Malformed(String),
    Timeout,
    Io(io::Error),
}

impl Client {
    pub fn from_tcp(s: TcpStream) -> Client {
        let _ = s.set_nodelay(true);
        Client::new(Box::new(s))
    }

    pub fn from_unix(s: UnixStream) -> Client {
        Client::new(Box::new(s))
    }

    fn new(s: Box<dyn Stream>) -> Client {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client { r: BufReader::with_capacity(64 * 1024, Shared(s)) }
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.r.get_ref().0.set_read_timeout(Some(d)).unwrap();
    }

    /// Closes our sending side: the server sees EOF.
    pub fn shutdown_write(&mut self) {
        let _ = self.r.get_ref().0.shutdown_write();
    }

    /// Encodes a command as a RESP multibulk.
    pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        b
    }

    /// Sends one command without reading its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send_raw(&Client::encode(args));
    }

    /// Sends bytes as they are; panics if the write fails.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.r.get_mut().0.write_all(bytes).unwrap_or_else(|e| panic!("write to the server: {e}"));
    }

    /// Sends bytes; the error if the server closed the connection.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.r.get_mut().0.write_all(bytes)
    }

    /// Sends a command and reads its reply.
    #[track_caller]
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        self.send(args);
        self.read_value()
    }

    /// Sends a command and reads its reply; an error instead of a panic
    /// when the connection is gone.
    pub fn try_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, ReadError> {
        self.try_send_raw(&Client::encode(args)).map_err(ReadError::Io)?;
        self.try_read_value()
    }

    /// Reads one value; panics if there is none.
    #[track_caller]
    pub fn read_value(&mut self) -> Value {
        match self.try_read_value() {
            Ok(v) => v,
            Err(e) => panic!("reading a reply: {e:?}"),
        }
    }

    /// Reads one value, skipping RESP3 attributes.
    pub fn try_read_value(&mut self) -> Result<Value, ReadError> {
        let first = self.read_line()?;
        self.parse_from(first)
    }

    /// True once the server has closed the connection (EOF or reset)
    /// without sending anything more; panics on unexpected data.
    #[track_caller]
    pub fn assert_closed(&mut self) {
        match self.try_read_value() {
            Err(ReadError::Closed) => {}
            Err(ReadError::Io(e)) if is_reset(&e) => {}
            other => panic!("expected the server to close the connection, got {other:?}"),
        }
    }

    fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut line = Vec::new();
        match self.r.read_until(b'\n', &mut line) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Err(ReadError::Timeout),
            Err(e) if is_reset(&e) && line.is_empty() => return Err(ReadError::Closed),
            Err(e) => return Err(ReadError::Io(e)),
        }
        if !line.ends_with(b"\r\n") {
            return Err(if line.ends_with(b"\n") { ReadError::Malformed(format!("line without CR: {:?}", String::from_utf8_lossy(&line))) } else { ReadError::Truncated });
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_exact_n(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        let mut b = vec![0u8; n + 2];
        match self.r.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || is_reset(&e) => return Err(ReadError::Truncated),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Err(ReadError::Timeout),
            Err(e) => return Err(ReadError::Io(e)),
        }
        if &b[n..] != b"\r\n" {
            return Err(ReadError::Malformed("bulk data not followed by CRLF".into()));
        }
        b.truncate(n);
        Ok(b)
    }

    fn read_nested(&mut self) -> Result<Value, ReadError> {
        let line = match self.read_line() {
            Err(ReadError::Closed) => return Err(ReadError::Truncated),
            other => other?,
        };
        self.parse_from(line)
    }

    fn read_items(&mut self, n: i64) -> Result<Vec<Value>, ReadError> {
        (0..n).map(|_| self.read_nested()).collect()
    }

    fn parse_from(&mut self, line: Vec<u8>) -> Result<Value, ReadError> {
        let Some((&kind, rest)) = line.split_first() else { return Err(ReadError::Malformed("empty line".into())) };
        let text = String::from_utf8_lossy(rest).into_owned();
        let bad = |what: &str| ReadError::Malformed(format!("{what}: {:?}", String::from_utf8_lossy(&line)));
        let len = || -> Result<i64, ReadError> { text.parse::<i64>().map_err(|_| bad("bad length")) };
        Ok(match kind {
            b'+' => Value::Simple(text),
            b'-' => Value::Error(text),
            b':' => Value::Int(text.parse().map_err(|_| bad("bad integer"))?),
            b'$' => match len()? {
                -1 => Value::NilBulk,
                n if n >= 0 => Value::Bulk(self.read_exact_n(n as usize)?),
                _ => return Err(bad("bad bulk length")),
            },
            b'*' => match len()? {
                -1 => Value::NilArray,
                n if n >= 0 => Value::Array(self.read_items(n)?),
                _ => return Err(bad("bad array length")),
            },
            b'~' => Value::Set(self.read_items(len()?.max(0))?),
            b'>' => Value::Push(self.read_items(len()?.max(0))?),
            b'%' => {
                let n = len()?.max(0);
                let mut m = Vec::new();
                for _ in 0..n {
                    let k = self.read_nested()?;
                    let v = self.read_nested()?;
                    m.push((k, v));
                }
                Value::Map(m)
            }
            b'|' => {
                // An attribute: read and drop it, then the value it annotates.
                let n = len()?.max(0);
                for _ in 0..2 * n {
                    self.read_nested()?;
                }
                self.read_nested()?
            }
            b'_' if rest.is_empty() => Value::Null,
            b',' => Value::Double(match text.as_str() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                t => t.parse().map_err(|_| bad("bad double"))?,
            }),
            b'#' if text == "t" || text == "f" => Value::Boolean(text == "t"),
            b'=' => {
                let n = len()?;
                let body = self.read_exact_n(n.max(0) as usize)?;
                if body.len() < 4 || body[3] != b':' {
                    return Err(bad("verbatim string without a format"));
                }
                Value::Verbatim(String::from_utf8_lossy(&body[..3]).into_owned(), body[4..].to_vec())
            }
            b'!' => Value::Error(String::from_utf8_lossy(&self.read_exact_n(len()?.max(0) as usize)?).into_owned()),
            b'(' => Value::BigNumber(text),
            _ => return Err(bad("unknown type byte")),
        })
    }
}

pub fn is_reset(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe)
}

/// Parses a whole byte string of replies (for checks on captured output).
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Value>, ReadError> {
    let mut c = Client { r: BufReader::new(Shared(Box::new(Bytes(io::Cursor::new(bytes.to_vec()))))) };
    let mut out = Vec::new();
    loop {
        match c.try_read_value() {
            Ok(v) => out.push(v),
            Err(ReadError::Closed) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

struct Bytes(io::Cursor<Vec<u8>>);

impl Read for Bytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Bytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for Bytes {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

