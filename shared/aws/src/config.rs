//! Configuration from the environment, read once per cold start. template.yaml sets every variable;
//! `AWS_ENDPOINT_URL` (read by the SDK itself) points the clients at an emulator such as moto.

use crate::queue::QueueTarget;
use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `REFWIRE_TABLE`
    pub table: String,
    /// `REFWIRE_QUEUE_URL`, `REFWIRE_QUEUE_ARN`, `REFWIRE_SCHEDULE_GROUP`, `REFWIRE_SCHEDULER_ROLE_ARN`
    pub queue: QueueTarget,
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Every missing variable is named in the error, so one failed cold start tells all.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut missing = Vec::new();
        let mut read = |name: &'static str| {
            let value = lookup(name).filter(|value| !value.is_empty());
            if value.is_none() {
                missing.push(name);
            }
            value.unwrap_or_default()
        };
        let settings = AwsSettings {
            table: read("REFWIRE_TABLE"),
            queue: QueueTarget {
                queue_url: read("REFWIRE_QUEUE_URL"),
                queue_arn: read("REFWIRE_QUEUE_ARN"),
                schedule_group: read("REFWIRE_SCHEDULE_GROUP"),
                scheduler_role_arn: read("REFWIRE_SCHEDULER_ROLE_ARN"),
            },
        };
        if missing.is_empty() {
            Ok(settings)
        } else {
            Err(format!(
                "missing environment variables: {}",
                missing.join(", ")
            ))
        }
    }
}

/// The SDK configuration from the standard sources (env, the function's role), once per process.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_loader().load().await
}

/// The SDK's configuration loader with its HTTPS client: rustls on ring, as the webhook sender's
/// reqwest uses, so no second crypto library (the SDK's default, aws-lc-rs) is linked. Trusts the
/// system's root certificates (`SSL_CERT_FILE` names others).
pub fn sdk_loader() -> aws_config::ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(https)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_variable_is_named() {
        let err =
            AwsSettings::from_lookup(|name| (name == "REFWIRE_TABLE").then(|| "t".to_string()))
                .unwrap_err();
        assert_eq!(
            err,
            "missing environment variables: REFWIRE_QUEUE_URL, REFWIRE_QUEUE_ARN, REFWIRE_SCHEDULE_GROUP, REFWIRE_SCHEDULER_ROLE_ARN"
        );
        let settings = AwsSettings::from_lookup(|name| Some(format!("{name}-value"))).unwrap();
        assert_eq!(settings.table, "REFWIRE_TABLE-value");
        assert_eq!(
            settings.queue.scheduler_role_arn,
            "REFWIRE_SCHEDULER_ROLE_ARN-value"
        );
    }
}
