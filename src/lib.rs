//! rzk: a ZooKeeper-compatible coordination service.
//!
//! # Architecture
//!
//! rzk follows Apache ZooKeeper's own structure, role by role:
//!
//! - [`jute`] encodes and decodes ZooKeeper's records (wire, txn log, snapshots).
//! - [`proto`] names the protocol's integers (opcodes, error codes, ids) and framing.
//! - [`persistence`] owns ZooKeeper's on-disk formats: txn logs (memory-mapped writer for the
//!   sync stage), snapshots, the tree digest, epoch files and purging; it knows no `DataTree`.
//!
//! The remaining modules (config, server, client) are documented in their own
//! module docs.
#![warn(missing_docs)]

pub mod jute;
pub mod persistence;
pub mod proto;
pub mod server;
