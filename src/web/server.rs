//! The HTTP server loop: accepts connections on the listener and serves the routes on each with
//! hyper, within bounds. At most `max_connections` are served at once (more wait in the
//! listener's backlog), so running out of file descriptors never locks out the API; a client
//! must send its request head within a time limit; under pressure, idle keep-alive connections
//! are closed; a connection a browser closes mid-keep-alive is routine and logged at debug, not
//! as an error. Shutdown stops accepting and lets the open connections finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Either;
use hyper::body::Incoming;
use warp::Filter;

use super::shortcut::{Offered, Shortcut};

/// How long a client may take to send a request's head, by default.
pub(super) const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a connection asked to close before its first request checks whether it came.
const CLOSE_CHECK: Duration = Duration::from_millis(100);

/// Serves `filter` on `listener` until `shutdown` resolves.
///
/// When fewer than an eighth of the places are free (and again whenever none is), every
/// connection is asked to close once its request in flight is answered (a connection still
/// waiting for its first request, once that one is): idle keep-alive connections go, streams and
/// requests in progress finish, and new clients get the places.
pub(super) async fn run<F>(
    listener: tokio::net::TcpListener,
    head_timeout: Duration,
    filter: F,
    shortcut: Shortcut,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    // Bumped to ask every open connection to close when idle (pressure or shutdown).
    let (close_idle, _) = tokio::sync::watch::channel(0u64);
    let close_idle = Arc::new(close_idle);
    let mut shutdown = std::pin::pin!(shutdown);
    let ask_idle_to_close = || {
        close_idle
            .send_modify(|generation| *generation = generation.wrapping_add(1) % (u64::MAX - 1));
    };
    loop {
        // Every place is taken: idle keep-alive connections are asked to make room.
        if permits.available_permits() == 0 {
            ask_idle_to_close();
        }
        // A free place first, then a connection: beyond the bound, clients wait in the backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if permits.available_permits() < max_connections / 8 {
            ask_idle_to_close();
        }
        // Whether the connection has sent a request: only those are asked to close under
        // pressure (a connection just accepted has its first request still to come).
        let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let service = {
            // Shared: a request the shortcut answers never clones the filter tree.
            let (warp_service, served) = (Arc::new(warp::service(filter.clone())), served.clone());
            let shortcut = shortcut.clone();
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                served.store(true, std::sync::atomic::Ordering::Relaxed);
                let warp_service = warp_service.clone();
                let shortcut = shortcut.clone();
                async move {
                    let mut request = match shortcut.offer(request).await {
                        Offered::Answered(response) => return Ok(response),
                        Offered::Declined(request) => request.map(Either::Left),
                        Offered::Reread(request) => request.map(Either::Right),
                    };
                    // Who is on the other end of the socket, for filters that count per client.
                    request
                        .extensions_mut()
                        .insert(super::edge::ClientSocket(remote));
                    let mut warp_service = (*warp_service).clone();
                    tower_service::Service::call(&mut warp_service, request).await
                }
            })
        };
        let mut asked_to_close = close_idle.subscribe();
        tokio::spawn(async move {
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(head_timeout);
            let connection = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            // Asked to close before its first request: it closes once that is answered.
            let mut close_after_first = false;
            let outcome = loop {
                tokio::select! {
                    outcome = connection.as_mut() => break outcome,
                    changed = asked_to_close.changed(), if !closing && !close_after_first => {
                        let shutting_down = changed.is_err() || *asked_to_close.borrow() == u64::MAX;
                        if shutting_down || served.load(std::sync::atomic::Ordering::Relaxed) {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        } else {
                            close_after_first = true;
                        }
                    }
                    () = tokio::time::sleep(CLOSE_CHECK), if close_after_first && !closing => {
                        if served.load(std::sync::atomic::Ordering::Relaxed) {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            };
            if let Err(error) = outcome {
                tracing::debug!(remote = %remote, error = %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Shutdown: idle connections close now; requests in flight get a while to finish.
    close_idle.send_replace(u64::MAX);
    let everyone = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(everyone)).await;
}

/// The bound address, for callers that listen on port 0.
pub fn local_address(listener: &tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
