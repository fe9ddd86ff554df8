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
use crate::sync::Locked;

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
    let close_requests = Arc::new(CloseRequests::default());
    let mut shutdown = std::pin::pin!(shutdown);
    let ask_idle_to_close = || close_requests.ask_all(Close::ForRoom);
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
        let (ticket, mut asked_to_close) = close_requests.listen();
        let close_requests = close_requests.clone();
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
                    asked = &mut asked_to_close, if !closing && !close_after_first => {
                        // The server gone without a word is a shutdown too.
                        let shutting_down = asked.unwrap_or(Close::ForShutdown) == Close::ForShutdown;
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
            close_requests.forget(ticket);
            if let Err(error) = outcome {
                tracing::debug!(remote = %remote, error = %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Shutdown: idle connections close now; requests in flight get a while to finish.
    close_requests.ask_all(Close::ForShutdown);
    let everyone = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(everyone)).await;
}

/// Why a connection is asked to close.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Close {
    /// Places are running out: close once the request in flight (or the first one) is answered.
    ForRoom,
    /// The server is stopping: close now unless a request is in flight.
    ForShutdown,
}

/// Where the server asks its open connections to close: one one-shot channel per connection.
///
/// A connection polls its own receiver each time its task runs, and a pending one-shot receiver
/// is polled with atomics alone. A shared `watch` channel took a mutex on every poll of every
/// connection (tokio's `Notified` locks its waiter list while pending), one both worker threads
/// contended for on every request.
#[derive(Default)]
struct CloseRequests {
    waiting: std::sync::Mutex<CloseWaiting>,
}

#[derive(Default)]
struct CloseWaiting {
    next_ticket: u64,
    senders: std::collections::HashMap<u64, tokio::sync::oneshot::Sender<Close>>,
}

impl CloseRequests {
    /// A new connection's ticket and the receiver it listens on.
    fn listen(&self) -> (u64, tokio::sync::oneshot::Receiver<Close>) {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut waiting = self.waiting.locked();
        let ticket = waiting.next_ticket;
        waiting.next_ticket = waiting.next_ticket.wrapping_add(1);
        waiting.senders.insert(ticket, sender);
        (ticket, receiver)
    }

    /// A connection has ended: nothing to ask it any more.
    fn forget(&self, ticket: u64) {
        self.waiting.locked().senders.remove(&ticket);
    }

    /// Asks every open connection once; each stops listening after its first request to close.
    fn ask_all(&self, why: Close) {
        let senders = std::mem::take(&mut self.waiting.locked().senders);
        for sender in senders.into_values() {
            // A connection that has just ended has dropped its receiver: nothing to ask.
            let _ = sender.send(why);
        }
    }
}

/// The bound address, for callers that listen on port 0.
pub fn local_address(listener: &tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
