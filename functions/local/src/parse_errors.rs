//! hyper answers a request it cannot parse itself, before any service runs, with a body-less
//! `400 Bad Request` (hyper 1.x has no hook for that answer). This wrapper around the connection
//! replaces exactly that answer with the API's JSON error, so every error refwire-local sends has the
//! one error shape. The Router never sends a body-less 400 (its errors all have JSON bodies), so the
//! answer is recognised by its head alone.

use axum::http::StatusCode;
use refwire_api::ApiError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const HYPER_BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";

pub struct JsonParseErrors<S> {
    inner: S,
    /// The replacement answer, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonParseErrors<S> {
    pub fn new(inner: S) -> Self {
        JsonParseErrors {
            inner,
            pending: None,
        }
    }
}

/// hyper's own 400: its status line and a head saying the body is empty.
fn is_hypers_bad_request(written: &[u8]) -> bool {
    let Some(head_end) = written.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    written.starts_with(HYPER_BAD_REQUEST)
        && written[..head_end]
            .to_ascii_lowercase()
            .windows(18)
            .any(|window| window == b"content-length: 0\r")
}

fn json_bad_request() -> Vec<u8> {
    let error = ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_request",
        "the request is not valid HTTP/1.1",
    );
    let body = error.body();
    let mut answer = format!(
        "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl<S: AsyncWrite + Unpin> JsonParseErrors<S> {
    /// Writes what is left of the replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.pending {
            if *written == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if is_hypers_bad_request(buf) {
            // hyper closes the connection after this answer, so nothing follows it.
            self.pending = Some((json_bad_request(), 0));
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_body_less_400_is_recognised() {
        assert!(is_hypers_bad_request(
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 26 Nov 2026 01:08:22 GMT\r\n\r\n"
        ));
        // The Router's own 400s carry a JSON body.
        assert!(!is_hypers_bad_request(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 70\r\n\r\n{}"
        ));
        assert!(!is_hypers_bad_request(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        ));
    }
}
