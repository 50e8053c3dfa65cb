//! Refwire's integration tests: one binary, one module per area.

mod api;
mod bad_input;
mod conformance;
mod local_process;
mod local_webhooks;
mod openapi;
mod races;
mod webhooks;
