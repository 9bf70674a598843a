//! One module per command family: each resolves its settings, calls the libraries and prints
//! typed results.

pub mod approve;
pub mod bench;
pub mod bootstrap;
pub mod exempt;
pub mod ledger;
pub mod policy;
pub mod policy_oci;
pub mod sign;
pub mod test;
pub mod token;
pub mod trendal;
pub mod trial;
pub mod verify;
pub mod webhook;
