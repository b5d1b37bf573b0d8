//! The standalone server (placeholder module list while the pipeline lands).
pub mod acl;
pub mod datatree;
pub mod session;
pub mod watch;

/// Identifies one client connection across threads: slab key in the low 32 bits, a
/// generation in the high 32 so a reused slot is never confused with the old connection.
pub type ConnId = u64;
