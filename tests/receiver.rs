//! A scriptable webhook receiver on 127.0.0.1: it records every request it gets and answers each
//! with the next scripted reply (status, delay, headers, body), then 200 once the script is used up.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Log {
    script: VecDeque<Reply>,
    /// Answers every request once the script is used up.
    fallback: Option<Reply>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let log = Arc::new(Mutex::new(Log::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = Router::new().fallback(answer).with_state(log.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, log }
    }

    /// Replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.log.lock().unwrap().script.extend(replies);
    }

    /// The reply to every request after the script (200 unless set).
    pub fn always(&self, reply: Reply) {
        self.log.lock().unwrap().fallback = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    /// The body of the first request that carried `event` (its `X-Webhook-Event`).
    pub fn body_of(&self, event: &str) -> String {
        let request = self
            .received()
            .into_iter()
            .find(|request| request.header("x-webhook-event") == event)
            .unwrap_or_else(|| panic!("no {event} request arrived"));
        String::from_utf8(request.body.to_vec()).unwrap()
    }

    /// Asserts a custom `link.clicked` event with `data` and a `referral.completed` with a reward of
    /// 5 arrived with exactly the digits they were given.
    pub fn assert_numbers_kept(&self, data: &str) {
        let clicked = self.body_of("link.clicked");
        assert!(
            clicked.ends_with(&format!(r#","data":{data}}}"#)),
            "{clicked}"
        );
        let completed = self.body_of("referral.completed");
        assert!(completed.contains(r#""reward_value":5,"#), "{completed}");
    }

    /// The attempt numbers received, by `X-Webhook-Attempt`, in arrival order.
    pub fn attempts(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|request| request.header("x-webhook-attempt").to_string())
            .collect()
    }

    /// The events received, by `X-Webhook-Event`, in arrival order.
    pub fn events(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|request| request.header("x-webhook-event").to_string())
            .collect()
    }
}

async fn answer(
    State(log): State<Arc<Mutex<Log>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut log = log.lock().unwrap();
        log.received.push(Received {
            method,
            uri,
            headers,
            body,
            at: Instant::now(),
        });
        let fallback = log.fallback.clone().unwrap_or(Reply::status(200));
        log.script.pop_front().unwrap_or(fallback)
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = (
        axum::http::StatusCode::from_u16(reply.status).unwrap(),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A loopback URL where nothing listens: connections are refused.
pub async fn refusing_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/hooks")
}
