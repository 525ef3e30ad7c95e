//! dbkv: an embedded, sharded, in-memory key-value engine made durable by a
//! write-ahead log and snapshots, exposed to C through `ffi`.
//!
//! Module dependencies point one way: `ffi` → `engine` → `persistence`.
//! `persistence` knows file formats and files, nothing of the engine.
//!
//! Unsafe code: the C boundary (`ffi`), the one-block entry
//! (`engine::entry`) and the per-shard arena its blocks live in
//! (`engine::arena`), collections reached through an entry under the
//! shard's write lock (`engine::shard`), the snapshot thread's priority
//! call and the OS file layer (`persistence::vfs`). Every unsafe block and
//! impl says why it is sound in a `// SAFETY:` comment (clippy's
//! `undocumented_unsafe_blocks`, denied below), including inside an
//! `unsafe fn`, whose body gets no implicit unsafe context
//! (`unsafe_op_in_unsafe_fn`, denied below); every other module is
//! `#![forbid(unsafe_code)]`.

#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod engine;
pub mod persistence;
pub mod ffi;

pub use engine::{Clock, Engine, LockOutcome, CasOutcome, Options, RecoveryMode, SyncMode};
pub use error::Error;
