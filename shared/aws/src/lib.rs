//! Refwire's AWS adapters: the store ports on DynamoDB, the job queue on SQS and EventBridge
//! Scheduler, and their settings from the environment. The functions' composition is in
//! `refwire-lambda`.

pub mod config;
pub mod dynamo;
pub mod queue;

pub use dynamo::DynamoStore;
pub use queue::{QueueTarget, SqsJobQueue};
