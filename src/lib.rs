//! dbkv: an embedded, sharded, in-memory key-value engine made durable by a
//! write-ahead log and snapshots, exposed to C through `ffi`.
//!
//! Module dependencies point one way: `ffi` → `engine` → `persistence`.
//! `persistence` knows file formats and files, nothing of the engine.

pub mod error;
pub mod engine;
pub mod persistence;
pub mod ffi;

pub use engine::{Clock, Engine, LockOutcome, CasOutcome, Options, RecoveryMode, SyncMode};
pub use error::Error;
