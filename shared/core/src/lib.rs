//! Refwire's domain: everything that decides, nothing that does I/O.
//!
//! Adapters (`shared/embedded`, later `shared/aws`) implement the port traits in [`ports`];
//! the HTTP layer calls [`service::Refwire`]. No AWS SDK and no SQL may appear in this crate.

// Features, each with its model and its use cases.
pub mod deliveries;
pub mod events;
pub mod participants;
pub mod programs;
pub mod referrals;
pub mod waitlists;
pub mod webhooks;

// What the features share.
pub mod config;
pub mod conflicts;
pub mod error;
pub mod ids;
pub mod js_json;
pub mod ports;
pub mod service;
pub mod time;
pub mod whole;

pub use error::{Error, ErrorChain, StoreError, StoreFailure};
