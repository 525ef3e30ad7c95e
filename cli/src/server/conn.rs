//! One client connection: its socket, input and output buffers, and the
//! loop that parses whole commands out of the input and runs them.

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::client::ClientState;
use super::commands;
use super::resp::{self, Limits, Parsed};
use super::Server;

/// A TCP or Unix-domain socket.
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

/// Why a connection ends.
#[derive(Debug)]
pub enum Close {
    /// The peer closed, or QUIT / a protocol error finished.
    Normal,
    /// A limit or the operator closed it; logged as a warning.
    Dropped(String),
    Io(io::Error),
}

pub struct Conn {
    pub stream: Stream,
    pub state: ClientState,
    /// Input: bytes `rstart..rend` of `rbuf` are read but not yet run.
    /// The buffer stays initialized, so a read never zeroes memory first.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    pub wbuf: Vec<u8>,
    wpos: usize,
    writable: bool,
    /// A command since the last flush wrote something (`--sync always`
    /// holds the replies until an fsync covers it).
    pub wrote: bool,
    /// Group-commit ticket the output waits for (0 = none).
    pub hold_until: u64,
    /// The slot is in its worker's list of held connections.
    pub held: bool,
}

const READ_CHUNK: usize = 16 * 1024;

impl Conn {
    pub fn new(stream: Stream, state: ClientState) -> Conn {
        Conn { stream, state, rbuf: Vec::new(), rstart: 0, rend: 0, wbuf: Vec::new(), wpos: 0, writable: false, wrote: false, hold_until: 0, held: false }
    }

    pub fn register(&mut self, reg: &Registry, token: Token) -> io::Result<()> {
        reg.register(self.stream.source(), token, Interest::READABLE)
    }

    pub fn deregister(&mut self, reg: &Registry) {
        let _ = reg.deregister(self.stream.source());
    }

    /// Reads until the socket would block, running every whole command as
    /// it arrives (so one client's pipeline never sits in memory whole).
    /// `drain`: the peer closed its side (or the socket errored), so read
    /// on to the end of input even after a short read: no later event
    /// would report that end.
    pub fn on_readable(&mut self, srv: &Server, drain: bool) -> Result<(), Close> {
        loop {
            if self.state.close_after_reply {
                return Ok(());
            }
            self.make_room();
            match self.stream.read(&mut self.rbuf[self.rend..]) {
                // The peer finished sending (it may still read, as `nc -N`
                // does): the replies already due go out, then we close.
                Ok(0) => {
                    self.state.close_after_reply = true;
                    return Ok(());
                }
                Ok(n) => {
                    srv.counters.net_input_bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    let full = self.rend + n == self.rbuf.len();
                    self.rend += n;
                    self.run_commands(srv)?;
                    // A short read emptied the socket: data arriving later
                    // raises a new edge, so skip the read that would only
                    // say EAGAIN (one syscall per request saved).
                    if !full && !drain {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Close::Io(e)),
            }
        }
    }

    /// Leaves at least `READ_CHUNK` free bytes after the unread input,
    /// moving that input to the front first.
    fn make_room(&mut self) {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        if self.rbuf.len() - self.rend >= READ_CHUNK {
            return;
        }
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if self.rbuf.len() - self.rend < READ_CHUNK {
            self.rbuf.resize(self.rend + READ_CHUNK.max(self.rend), 0);
        }
    }

    /// Runs every whole command in the input buffer, stopping at one that
    /// blocks: the rest waits until its worker resumes the client.
    pub fn run_commands(&mut self, srv: &Server) -> Result<(), Close> {
        let Conn { rbuf, rstart, rend, wbuf, state, wrote, .. } = self;
        let mut pos = *rstart;
        state.clock = std::time::Instant::now();
        while pos < *rend && !state.close_after_reply && state.blocked.is_none() {
            if wbuf.len() > srv.settings.output_buffer_limit {
                return Err(Close::Dropped(format!("output buffer over {} bytes (client-output-buffer-limit)", srv.settings.output_buffer_limit)));
            }
            let limits = Limits { max_bulk: srv.settings.max_bulk, authed: state.authed };
            match resp::parse(&rbuf[pos..*rend], &limits) {
                Parsed::Incomplete => break,
                Parsed::Empty { used } => pos += used,
                Parsed::Error(msg) => {
                    tracing::debug!(client = state.handle.id, addr = %state.handle.addr, "{msg}; closing the connection");
                    commands::protocol_error(state, wbuf, &msg);
                    state.close_after_reply = true;
                }
                Parsed::Command { args, used } => {
                    let base = &rbuf[pos..];
                    let argv: Vec<&[u8]> = args.into_iter().map(|r| &base[r]).collect();
                    commands::execute(srv, state, &argv, wbuf);
                    *wrote |= state.wrote;
                    pos += used;
                }
                Parsed::Inline { args, used } => {
                    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
                    commands::execute(srv, state, &argv, wbuf);
                    *wrote |= state.wrote;
                    pos += used;
                }
            }
        }
        *rstart = pos;
        if *rend - *rstart > srv.settings.query_buffer_limit {
            return Err(Close::Dropped(format!("query buffer over {} bytes (client-query-buffer-limit)", srv.settings.query_buffer_limit)));
        }
        if rbuf.len() > 4 * READ_CHUNK && *rend - *rstart < READ_CHUNK {
            // A big request is done: give its memory back.
            rbuf.copy_within(*rstart..*rend, 0);
            *rend -= *rstart;
            *rstart = 0;
            rbuf.truncate(READ_CHUNK);
            rbuf.shrink_to_fit();
        }
        Ok(())
    }

    pub fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Writes what the socket takes now; asks for a writable event if some
    /// is left. Ends the connection once a closing reply is out.
    pub fn flush(&mut self, srv: &Server, reg: &Registry, token: Token) -> Result<(), Close> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                // The peer finished sending (it may still read, as `nc -N`
                // does): the replies already due go out, then we close.
                Ok(0) => {
                    self.state.close_after_reply = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.wpos += n;
                    srv.counters.net_output_bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Close::Io(e)),
            }
        }
        self.wrote = false;
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > 1 << 20 {
                self.wbuf.shrink_to(64 * 1024);
            }
            if self.state.close_after_reply {
                return Err(Close::Normal);
            }
        } else if self.wbuf.len() - self.wpos > srv.settings.output_buffer_limit {
            return Err(Close::Dropped(format!("output buffer over {} bytes (client-output-buffer-limit)", srv.settings.output_buffer_limit)));
        }
        let want = !self.wbuf.is_empty();
        if want != self.writable {
            let interest = if want { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            reg.reregister(self.stream.source(), token, interest).map_err(Close::Io)?;
            self.writable = want;
        }
        Ok(())
    }

    /// Moves messages other threads queued (pub/sub) into the output.
    pub fn take_outbox(&mut self) {
        let mut out = self.state.handle.outbox();
        if !out.is_empty() {
            if self.wbuf.is_empty() {
                std::mem::swap(&mut self.wbuf, &mut out);
            } else {
                self.wbuf.extend_from_slice(&out);
                out.clear();
            }
        }
    }

    /// Drops replies not yet written (their writes could not be made
    /// durable, so they must not be acknowledged).
    pub fn discard_output(&mut self) {
        self.wbuf.clear();
        self.wpos = 0;
    }
}
