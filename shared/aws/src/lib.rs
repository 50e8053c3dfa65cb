//! Refwire's AWS adapters: the store ports on DynamoDB, and typed configuration from the
//! environment, read once at cold start.

pub mod config;
pub mod dynamo;

pub use dynamo::DynamoStore;
