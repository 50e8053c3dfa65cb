//! Serves the Router over HTTP/1.1 with hyper directly (rather than `axum::serve`) for the limits
//! axum::serve does not expose: a client that sends its headers or body too slowly would otherwise
//! hold a connection, and a task, for as long as it likes.

use crate::options::Options;
use crate::parse_errors::JsonParseErrors;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long a Ctrl-C waits for requests in progress before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections until Ctrl-C, then lets the requests in progress finish.
pub async fn serve(listener: TcpListener, router: Router, options: &Options) {
    // A body that stops arriving fails the read after `body_timeout`; the API answers 408.
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(options.body_timeout))
        .service(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    // A connection whose request headers do not arrive within `header_timeout` is closed (hyper
    // offers no response there). The timeout needs hyper's timer.
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    let graceful = GracefulShutdown::new();
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Typically out of file descriptors; the next accept may succeed.
                    tracing::warn!(%err, "accepting a connection failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let connection = http.serve_connection(
            TokioIo::new(JsonParseErrors::new(stream)),
            TowerToHyperService::new(service.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress at shutdown were cut off");
    }
}
