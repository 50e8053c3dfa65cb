//! Refwire's AWS adapters: the store ports on DynamoDB, the job queue on SQS and EventBridge
//! Scheduler, and typed configuration from the environment, read once at cold start.

pub mod config;
pub mod dynamo;
pub mod queue;
pub mod wiring;

pub use dynamo::DynamoStore;
pub use queue::{QueueTarget, SqsJobQueue};
