//! Refwire's domain: everything that decides, nothing that does I/O.
//!
//! Adapters (`shared/embedded`, later `shared/aws`) implement the port traits in [`ports`];
//! the HTTP layer calls [`service::Refwire`]. No AWS SDK and no SQL may appear in this crate.

pub mod clock;
pub mod counts;
pub mod delivery;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod ids;
pub mod js_json;
pub mod outgoing;
pub mod participants;
pub mod ports;
pub mod program;
pub mod referral;
pub mod retry;
pub mod service;
pub mod sessions;
pub mod settings;
pub mod signing;
pub mod time;
pub mod url_rules;
pub mod waitlists;
pub mod webhook;
pub mod webhooks;
pub mod whole;

pub use error::{Error, StoreError};
