//! Configuration from the environment, read once per cold start.

use aws_config::BehaviorVersion;

/// `REFWIRE_TABLE`: the DynamoDB table (template.yaml sets it).
pub const TABLE_ENV: &str = "REFWIRE_TABLE";
/// `AWS_ENDPOINT_URL` (read by the SDK itself) points every client at an emulator such as moto.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, String> {
        let table = std::env::var(TABLE_ENV)
            .ok()
            .filter(|table| !table.is_empty())
            .ok_or_else(|| format!("{TABLE_ENV} is not set"))?;
        Ok(AwsSettings { table })
    }
}

/// The SDK configuration from the standard sources (env, instance role), once per process.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
