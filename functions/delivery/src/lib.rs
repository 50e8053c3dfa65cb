//! The SQS-triggered delivery Lambda's handler (the HTTP sender is `refwire-sender`, shared with
//! refwire-local).

mod handler;

pub use handler::{UnnamedFailure, handle};
