//! On-disk formats and files: WAL segments, snapshots, recovery. Knows
//! nothing of the engine; the engine feeds it records and shard copies.

pub mod block;
pub mod coll_record;
pub mod inspect;
pub mod record;
pub mod recovery;
mod replay;
pub mod retention;
pub mod segment_writer;
pub mod snapshot;
pub mod snapshot_coll;
pub mod snapshot_load;
pub mod vfs;
#[cfg(any(test, feature = "test-util"))]
pub mod sim_vfs;
pub mod wal;

pub use recovery::RecoveryMode;
