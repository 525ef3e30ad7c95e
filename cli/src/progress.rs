//! Progress of long work (recovery, checking files, writing a dump or a
//! load) on stderr: an `indicatif` bar with rate and ETA when stderr is a
//! terminal, else a plain line every two seconds and one at the end (logs
//! and CI output stay readable), or nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbkv::engine::{Phase, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain (non-terminal) form prints a line.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// What is counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    Bytes,
    /// Keys or entries.
    Items,
}

enum Out {
    Off,
    Bar(ProgressBar),
    Lines(Lines),
}

/// The plain form: a line per `LINE_EVERY`, and one when finished.
struct Lines {
    started: Instant,
    last: Instant,
    done: u64,
    total: u64,
    printed_done: Option<u64>,
}

/// One progress display; cloneable handles share it (the engine's hook
/// runs on the opening thread, but must be `Send + Sync`).
#[derive(Clone)]
pub struct Progress {
    state: Arc<Mutex<State>>,
}

struct State {
    out: Out,
    unit: Unit,
    label: String,
    /// Something was reported: an untouched display (recovery of an
    /// empty directory) finishes without drawing anything.
    touched: bool,
}

impl Progress {
    /// A display for `label`, chosen by whether stderr is a terminal.
    pub fn new(label: &str, unit: Unit, total: u64, quiet: bool) -> Progress {
        let out = if quiet {
            Out::Off
        } else if std::io::stderr().is_terminal() {
            Out::Bar(bar(label, unit, total))
        } else {
            let now = Instant::now();
            Out::Lines(Lines { started: now, last: now, done: 0, total, printed_done: None })
        };
        Progress { state: Arc::new(Mutex::new(State { out, unit, label: label.to_string(), touched: false })) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Starts a new stage of the same display (another label, unit and total).
    pub fn stage(&self, label: &str, unit: Unit, total: u64) {
        self.with(|s| {
            if let Out::Lines(l) = &mut s.out {
                if l.printed_done != Some(l.done) && l.done > 0 {
                    print_line(&s.label, s.unit, l, true);
                }
                *l = Lines { started: Instant::now(), last: Instant::now(), done: 0, total, printed_done: None };
            }
            if let Out::Bar(b) = &s.out {
                // The finished stage stays on its own line; the new one is
                // hidden until it reports something, so a stage with nothing
                // to do (an empty directory) draws nothing.
                end_bar(b);
                b.set_draw_target(ProgressDrawTarget::hidden());
                b.reset();
                b.set_length(total);
                b.set_style(style(unit));
                b.set_message(label.to_string());
            }
            s.label = label.to_string();
            s.unit = unit;
            s.touched = false;
        })
    }

    pub fn set(&self, done: u64, total: u64) {
        self.with(|s| {
            s.touched |= done > 0 || total > 0;
            s.set(done, total)
        })
    }

    pub fn inc(&self, n: u64) {
        if n == 0 {
            return;
        }
        let (done, total) = self.with(|s| match &s.out {
            Out::Bar(b) => (b.position() + n, b.length().unwrap_or(0)),
            Out::Lines(l) => (l.done + n, l.total),
            Out::Off => (0, 0),
        });
        self.set(done, total);
    }

    /// Leaves the final state on screen (or prints the closing line).
    pub fn finish(&self) {
        self.with(|s| match &mut s.out {
            Out::Off => {}
            Out::Bar(b) if !s.touched => b.finish_and_clear(),
            Out::Lines(_) if !s.touched => {}
            Out::Bar(b) => end_bar(b),
            Out::Lines(l) => {
                if l.printed_done != Some(l.done) {
                    print_line(&s.label, s.unit, l, true)
                }
            }
        })
    }

    /// A hook for `Options.progress`: recovery's phases, in bytes.
    pub fn recovery_hook(&self) -> ProgressFn {
        let me = self.clone();
        let last_phase = Mutex::new(None::<Phase>);
        Arc::new(move |p: dbkv::engine::Progress| {
            let mut last = last_phase.lock().unwrap_or_else(|e| e.into_inner());
            if *last != Some(p.phase) {
                *last = Some(p.phase);
                me.stage(&format!("recovery: {}", p.phase.name()), Unit::Bytes, p.total);
            }
            me.set(p.done, p.total);
        })
    }
}

impl State {
    fn set(&mut self, done: u64, total: u64) {
        match &mut self.out {
            Out::Off => {}
            Out::Bar(b) => {
                if b.is_hidden() && self.touched {
                    b.set_draw_target(ProgressDrawTarget::stderr());
                }
                b.set_length(total);
                b.set_position(done);
            }
            Out::Lines(l) => {
                (l.done, l.total) = (done, total);
                if l.last.elapsed() >= LINE_EVERY {
                    print_line(&self.label, self.unit, l, false);
                }
            }
        }
    }
}

/// Draws a visible bar's final state and moves to the next line.
fn end_bar(b: &ProgressBar) {
    if !b.is_hidden() {
        b.finish();
        let _ = writeln!(std::io::stderr());
        b.set_draw_target(ProgressDrawTarget::hidden());
    }
}

fn style(unit: Unit) -> ProgressStyle {
    let counts = match unit {
        Unit::Bytes => "{bytes}/{total_bytes} ({binary_bytes_per_sec})",
        Unit::Items => "{human_pos}/{human_len} ({rate})",
    };
    // Short enough for an 80-column terminal, so the line never wraps.
    ProgressStyle::with_template(&format!("{{msg}} [{{bar:20}}] {counts} ETA {{eta}}"))
        .expect("valid template")
        .with_key("rate", |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", st.per_sec());
        })
        .progress_chars("=> ")
}

fn bar(label: &str, unit: Unit, total: u64) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    b.set_style(style(unit));
    b.set_message(label.to_string());
    b
}

fn print_line(label: &str, unit: Unit, l: &mut Lines, last: bool) {
    let secs = l.started.elapsed().as_secs_f64().max(0.001);
    let rate = l.done as f64 / secs;
    let pct = if l.total > 0 { format!(" ({:.0}%)", 100.0 * l.done as f64 / l.total as f64) } else { String::new() };
    let (done, total, rate) = match unit {
        Unit::Bytes => (human_bytes(l.done), human_bytes(l.total), format!("{}/s", human_bytes(rate as u64))),
        Unit::Items => (l.done.to_string(), l.total.to_string(), format!("{rate:.0}/s")),
    };
    let tail = if last { format!(", done in {secs:.1} s") } else { String::new() };
    let _ = writeln!(std::io::stderr(), "{label}: {done} of {total}{pct}, {rate}{tail}");
    l.last = Instant::now();
    l.printed_done = Some(l.done);
}

/// Bytes in binary units with one decimal ("3.2 MiB").
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
