//! The `/metrics` endpoint (`--metrics-addr`): a small HTTP/1.x responder
//! on one thread of its own, apart from the workers, so a scrape never
//! delays a command and nothing on this port can read or change data.
//!
//! It is nonblocking (mio, as the workers): an idle or slow connection
//! costs a slot, not a thread. Limits: a request head of at most
//! `MAX_HEAD` bytes; `DEADLINE` from accept to the last byte of the reply;
//! `MAX_CONNS` connections, the oldest one still sending its request
//! closed to admit a new one, so a pile of idle connections cannot lock a
//! scraper out. One request per connection (`Connection: close`): a scrape
//! every few seconds gains nothing from keep-alive.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::metrics::Figures;
use super::{prometheus, Server};

const MAX_HEAD: usize = 8 * 1024;
const MAX_CONNS: usize = 64;
const DEADLINE: Duration = Duration::from_secs(10);
/// How often deadlines and shutdown are checked.
const TICK: Duration = Duration::from_millis(100);
const LISTENER: Token = Token(usize::MAX);

/// Binds `addr` and starts the responder thread; returns the bound address.
/// The thread ends when the server shuts down (it holds only a `Weak`).
pub fn start(addr: SocketAddr, srv: Weak<Server>) -> Result<(SocketAddr, JoinHandle<()>), String> {
    let fail = |e: io::Error| format!("could not listen on {addr} (--metrics-addr): {e}");
    let std_listener = std::net::TcpListener::bind(addr).map_err(fail)?;
    std_listener.set_nonblocking(true).map_err(fail)?;
    let local = std_listener.local_addr().map_err(fail)?;
    let mut listener = TcpListener::from_std(std_listener);
    let poll = Poll::new().map_err(fail)?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE).map_err(fail)?;
    let mut r = Responder { poll, listener, conns: (0..MAX_CONNS).map(|_| None).collect(), srv };
    let thread = std::thread::Builder::new().name("dbkv-metrics".into()).spawn(move || r.run()).map_err(|e| format!("could not start the metrics thread: {e}"))?;
    Ok((local, thread))
}

struct HttpConn {
    stream: TcpStream,
    accepted: Instant,
    head: Vec<u8>,
    /// The response, once the request is read; `sent` bytes of it are out.
    out: Vec<u8>,
    sent: usize,
}

struct Responder {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<HttpConn>>,
    srv: Weak<Server>,
}

impl Responder {
    fn run(&mut self) {
        let mut events = Events::with_capacity(128);
        while self.srv.upgrade().is_some_and(|s| !s.shutting_down()) {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("metrics endpoint: poll failed, no longer serving /metrics: {e}");
                    return;
                }
            }
            for ev in events.iter() {
                if ev.token() != LISTENER {
                    self.service(ev.token().0);
                }
            }
            // Every tick, not only on an event: a connection refused for
            // lack of descriptors stays queued without a new edge.
            self.accept_all();
            self.expire();
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("metrics endpoint: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream) {
        let slot = match self.conns.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                let victim = self.oldest();
                self.close(victim);
                victim
            }
        };
        if let Err(e) = self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE) {
            tracing::debug!("metrics endpoint: could not register a connection: {e}");
            return;
        }
        self.conns[slot] = Some(HttpConn { stream, accepted: Instant::now(), head: Vec::new(), out: Vec::new(), sent: 0 });
    }

    /// The connection to give up for a new one: the oldest still sending
    /// its request (idle or slow), else the oldest of all.
    fn oldest(&self) -> usize {
        let age = |s: &usize| self.conns[*s].as_ref().map(|c| (!c.out.is_empty(), c.accepted));
        (0..self.conns.len()).min_by_key(age).unwrap_or(0)
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut c) = self.conns[slot].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            if self.conns[slot].as_ref().is_some_and(|c| now.duration_since(c.accepted) > DEADLINE) {
                self.close(slot);
            }
        }
    }

    fn service(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        if c.out.is_empty() {
            match read_head(c) {
                Ok(Some(head_len)) => c.out = respond(&c.head[..head_len], &self.srv),
                Ok(None) => return,
                Err(()) => return self.close(slot),
            }
        }
        match write_out(c) {
            Ok(true) => {
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
                self.close(slot)
            }
            Ok(false) => {
                let _ = self.poll.registry().reregister(&mut c.stream, Token(slot), Interest::WRITABLE);
            }
            Err(()) => self.close(slot),
        }
    }
}

/// Reads what the socket has. `Some(n)`: the request head is the first `n`
/// bytes (or, past `MAX_HEAD`, the whole buffer: `respond` refuses it).
/// `Err`: the peer closed or the socket failed before a whole head.
fn read_head(c: &mut HttpConn) -> Result<Option<usize>, ()> {
    let mut chunk = [0u8; 2048];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return Err(()),
            Ok(n) => {
                c.head.extend_from_slice(&chunk[..n]);
                if let Some(end) = head_end(&c.head) {
                    return Ok(Some(end));
                }
                if c.head.len() > MAX_HEAD {
                    return Ok(Some(c.head.len()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

/// Writes what the socket takes; `Ok(true)` once the whole reply is out.
fn write_out(c: &mut HttpConn) -> Result<bool, ()> {
    while c.sent < c.out.len() {
        match c.stream.write(&c.out[c.sent..]) {
            Ok(0) => return Err(()),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(true)
}

/// Where the head ends: after the first empty line (CRLF or bare LF, as
/// lenient HTTP/1 parsers accept).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for, by what the reply will be.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    TooLarge,
    BadRequest,
}

fn parse(head: &[u8]) -> Route {
    if head.len() > MAX_HEAD {
        return Route::TooLarge;
    }
    let Ok(text) = std::str::from_utf8(head) else { return Route::BadRequest };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token(method) || !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Route::Metrics { head_only: method == "HEAD" },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

fn respond(head: &[u8], srv: &Weak<Server>) -> Vec<u8> {
    match parse(head) {
        Route::Metrics { head_only } => match srv.upgrade() {
            Some(srv) => {
                let body = prometheus::render(&Figures::take(&srv));
                response("200 OK", prometheus::CONTENT_TYPE, &[], &body, head_only)
            }
            None => text("503 Service Unavailable", &[], "shutting down\n"),
        },
        Route::NotFound => text("404 Not Found", &[], "not found: the metrics are at /metrics\n"),
        Route::MethodNotAllowed => text("405 Method Not Allowed", &["Allow: GET, HEAD"], "method not allowed: use GET\n"),
        Route::TooLarge => text("431 Request Header Fields Too Large", &[], "request head too large\n"),
        Route::BadRequest => text("400 Bad Request", &[], "bad request\n"),
    }
}

fn text(status: &str, extra: &[&str], body: &str) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", extra, body, false)
}

fn response(status: &str, content_type: &str, extra: &[&str], body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for h in extra {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(parse(b"GET /metrics?x=1 HTTP/1.0\n\n"), Route::Metrics { head_only: false });
        assert_eq!(parse(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Route::Metrics { head_only: true });
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(parse(b"GET /metrics HTTP/2.0\r\n\r\n"), Route::BadRequest);
        assert_eq!(parse(b"G(T /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(parse(b"\xff\xfe\r\n\r\n"), Route::BadRequest);
        assert_eq!(parse(&[b'a'; MAX_HEAD + 1]), Route::TooLarge);
    }

    #[test]
    fn head_ends_at_the_first_empty_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn responses_have_length_and_close() {
        let r = String::from_utf8(text("404 Not Found", &[], "nope\n")).unwrap();
        assert_eq!(r, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n");
        let h = String::from_utf8(response("200 OK", "t", &["Allow: GET"], "body", true)).unwrap();
        assert!(h.ends_with("Content-Length: 4\r\nConnection: close\r\nAllow: GET\r\n\r\n"));
    }
}
