//! The real `refwire-local` at the HTTP level, with a raw TCP client: what it answers to requests
//! that are slow, oversized or malformed, and its command line.

use refwire_tests::local::{LocalProcess, local_binary};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far above every timeout these tests configure, and far below the minutes a connection stayed
/// open before there were timeouts.
const ANSWER_BOUND: Duration = Duration::from_secs(30);

/// A response as read off the socket: status, and the body as JSON (`Null` when empty).
#[derive(Debug)]
struct RawResponse {
    status: u16,
    body: Value,
}

/// Sends `request` as it is, then reads until the server closes the connection (`None` when it
/// closed without answering).
async fn exchange(local: &LocalProcess, request: &[u8]) -> Option<RawResponse> {
    let address = local.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(ANSWER_BOUND, stream.read_to_end(&mut received))
        .await
        .expect("the server neither answered nor closed the connection in time")
        .unwrap();
    if received.is_empty() {
        return None;
    }
    let text = String::from_utf8(received).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
    };
    Some(RawResponse { status, body })
}

fn assert_json_error(response: &RawResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.body["error"]["code"], code, "{response:?}");
    assert!(
        response.body["error"]["message"].is_string(),
        "{response:?}"
    );
}

fn start(extra_args: &[&str]) -> (tempfile::TempDir, LocalProcess) {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProcess::start(&dir.path().join("refwire.db"), extra_args);
    (dir, local)
}

#[tokio::test]
async fn a_request_whose_headers_stop_arriving_is_closed_after_the_header_timeout() {
    let (_dir, local) = start(&["--header-timeout", "1"]);
    let answer = exchange(&local, b"GET /health HTTP/1.1\r\nHost: refwire\r\n").await;
    assert!(answer.is_none(), "{answer:?}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_after_the_body_timeout() {
    let (_dir, local) = start(&["--body-timeout", "1"]);
    let key = local.printed("secret key:").unwrap();
    let request = format!(
        "POST /v1/api/referral/create HTTP/1.1\r\nHost: refwire\r\nConnection: close\r\n\
         X-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_id\""
    );
    let answer = exchange(&local, request.as_bytes()).await.unwrap();
    assert_json_error(&answer, 408, "request_timeout");
}

#[tokio::test]
async fn a_declared_body_over_256_kb_is_refused_before_it_is_sent() {
    // The body timeout is long: an answer within the bound means the server did not wait for it.
    let (_dir, local) = start(&["--body-timeout", "600"]);
    let key = local.printed("secret key:").unwrap();
    let request = format!(
        "POST /v1/api/referral/create HTTP/1.1\r\nHost: refwire\r\nConnection: close\r\n\
         X-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        256 * 1024 + 1
    );
    let answer = exchange(&local, request.as_bytes()).await.unwrap();
    assert_json_error(&answer, 413, "payload_too_large");
}

#[tokio::test]
async fn a_request_that_is_not_http_gets_a_json_400() {
    let (_dir, local) = start(&[]);
    for malformed in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"POST /v1/events HTTP/1.1\r\nHost: refwire\r\nContent-Length: lots\r\n\r\n",
    ] {
        let answer = exchange(&local, malformed).await.unwrap();
        assert_json_error(&answer, 400, "malformed_request");
    }
    // After a good request on the same connection: its answer, then the JSON 400.
    let address = local.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: refwire\r\n\r\nGARBAGE\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(ANSWER_BOUND, stream.read_to_end(&mut received))
        .await
        .unwrap()
        .unwrap();
    let received = String::from_utf8(received).unwrap();
    let (good, bad) = received.split_once("}HTTP/1.1 ").unwrap();
    assert!(good.starts_with("HTTP/1.1 200 OK"), "{received}");
    let (head, body) = bad.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("400 Bad Request"), "{received}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "malformed_request");
}

#[tokio::test]
async fn an_oversized_uri_or_header_section_gets_a_json_error() {
    let (_dir, local) = start(&[]);
    let long_uri = format!(
        "GET /v1/events?after={} HTTP/1.1\r\nHost: refwire\r\nConnection: close\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    let answer = exchange(&local, long_uri.as_bytes()).await.unwrap();
    assert_json_error(&answer, 414, "uri_too_long");

    let big_headers = format!(
        "GET /health HTTP/1.1\r\nHost: refwire\r\nConnection: close\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let answer = exchange(&local, big_headers.as_bytes()).await.unwrap();
    assert_json_error(&answer, 431, "headers_too_large");
}

#[test]
fn help_and_version_go_to_stdout_and_exit_zero() {
    for flag in ["--help", "-h"] {
        let output = std::process::Command::new(local_binary())
            .arg(flag)
            .output()
            .unwrap();
        assert!(output.status.success(), "{flag}: {output:?}");
        assert!(output.stderr.is_empty(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.starts_with("usage: refwire-local"), "{stdout}");
        assert!(stdout.contains("--header-timeout SECONDS"), "{stdout}");
    }
    let output = std::process::Command::new(local_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("refwire-local {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_option_is_refused_on_stderr_with_the_usage() {
    let output = std::process::Command::new(local_binary())
        .arg("--verbose")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("unknown option \"--verbose\""), "{stderr}");
    assert!(stderr.contains("usage: refwire-local"), "{stderr}");
}
