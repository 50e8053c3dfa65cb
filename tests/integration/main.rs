//! Refwire's integration tests: one binary, one module per area.

mod api;
mod aws_pipeline;
mod bad_input;
mod conformance;
mod dashboard;
mod embedded_file;
mod handlers;
mod js_json;
mod lambda_runtime;
mod local_http;
mod local_process;
mod local_webhooks;
mod openapi;
mod participants;
mod races;
mod seed_receivers;
mod strict_input;
mod waitlists;
mod webhooks;
