//! The HTTP sender for webhook attempts.
//!
//! - Every address a host name resolves to is vetted by the SSRF rules before any connection, and
//!   the connection goes to those vetted addresses (reqwest connects to what the resolver returns),
//!   so a name cannot be re-pointed between the check and the connect (DNS rebinding).
//! - Redirects are never followed: a 3xx is a failed attempt.
//! - The whole attempt (connect, send, response head, excerpt) runs under the webhook's timeout.

use refwire_core::deliveries::outgoing::{OutgoingRequest, USER_AGENT};
use refwire_core::deliveries::{RESPONSE_EXCERPT_BYTES, SendResult};
use refwire_core::ports::Sender;
use refwire_core::webhooks::HttpMethod;
use refwire_core::webhooks::url_rules::{TargetPolicy, check_resolved_address};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    /// One client per process: its connection pool is reused across attempts (and invocations).
    pub fn new(policy: TargetPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(VettingResolver { policy }))
            .user_agent(USER_AGENT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(HttpSender { client })
    }
}

/// Resolves with the system resolver, then refuses the whole name if any address is not allowed.
struct VettingResolver {
    policy: TargetPolicy,
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(refused) = addrs
                .iter()
                .find_map(|addr| check_resolved_address(addr.ip(), policy).err())
            {
                return Err(format!(
                    "refused to connect: {host} resolves to a disallowed address ({refused})"
                )
                .into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[async_trait::async_trait]
impl Sender for HttpSender {
    async fn send(&self, request: &OutgoingRequest, timeout: Duration) -> SendResult {
        let started = Instant::now();
        let mut builder = match request.method {
            HttpMethod::Post => self.client.post(&request.url).body(request.body.clone()),
            HttpMethod::Get => self.client.get(&request.url),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let attempt = tokio::time::timeout(timeout, async {
            let mut response = builder.send().await?;
            let status = response.status();
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                    .map(str::to_string)
            };
            let retry_after = header(reqwest::header::RETRY_AFTER);
            let location = header(reqwest::header::LOCATION);
            let mut excerpt = Vec::new();
            while excerpt.len() < RESPONSE_EXCERPT_BYTES {
                match response.chunk().await? {
                    Some(chunk) => excerpt.extend_from_slice(&chunk),
                    None => break,
                }
            }
            excerpt.truncate(RESPONSE_EXCERPT_BYTES);
            Ok::<_, reqwest::Error>((status, retry_after, location, excerpt))
        })
        .await;
        let response_ms = started.elapsed().as_millis() as u64;
        match attempt {
            Err(_) => SendResult {
                response_ms,
                error: Some(format!("timed out after {} s", timeout.as_secs())),
                ..SendResult::default()
            },
            Ok(Err(err)) => SendResult {
                response_ms,
                error: Some(describe(&err)),
                ..SendResult::default()
            },
            Ok(Ok((status, retry_after, location, excerpt))) => SendResult {
                status: Some(status.as_u16()),
                retry_after,
                response_ms,
                error: if status.is_redirection() {
                    Some(format!(
                        "redirects are not followed (Location: {})",
                        location.unwrap_or_default()
                    ))
                } else if status.is_success() {
                    None
                } else {
                    Some(format!("receiver answered {status}"))
                },
                response_excerpt: (!excerpt.is_empty())
                    .then(|| String::from_utf8_lossy(&excerpt).into_owned()),
            },
        }
    }
}

/// The error and its causes, without the URL (which may carry a receiver's token).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_connect() {
        "connection failed"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = StdError::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    match causes.last() {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A loopback listener that counts the connections it accepts and answers each with 200.
    async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        (port, accepted)
    }

    fn post(url: String) -> OutgoingRequest {
        OutgoingRequest {
            method: HttpMethod::Post,
            url,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_non_global_address_is_never_connected_to() {
        let (port, accepted) = counting_listener().await;
        let strict = HttpSender::new(TargetPolicy::Strict).unwrap();
        let result = strict
            .send(
                &post(format!("http://localhost:{port}/hook")),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(result.status, None);
        let error = result.error.unwrap();
        assert!(error.contains("disallowed address"), "{error}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);

        let loopback = HttpSender::new(TargetPolicy::AllowLoopbackHttp).unwrap();
        let result = loopback
            .send(
                &post(format!("http://localhost:{port}/hook")),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(result.status, Some(200), "{result:?}");
        assert_eq!(result.response_excerpt.as_deref(), Some("ok"));
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
