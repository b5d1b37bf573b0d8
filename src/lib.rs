//! rzk: a ZooKeeper-compatible coordination service.
//!
//! # Architecture
//!
//! rzk follows Apache ZooKeeper's own structure, role by role:
//!
//! - [`jute`] encodes and decodes ZooKeeper's records (wire, txn log, snapshots).
//! - [`proto`] names the protocol's integers (opcodes, error codes, ids) and framing.
//!
//! The remaining modules (config, server, persistence, client) are documented in their own
//! module docs.
#![warn(missing_docs)]

pub mod client;
pub mod jute;
pub mod proto;
