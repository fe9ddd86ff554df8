//! Test support: temporary folders, profile writing, and a stub JSON API on 127.0.0.1 that
//! misbehaves on request (errors, HTML, truncated and huge bodies, dripping bodies, redirects).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bellhop::devices::DeviceHub;
use bellhop::engine::Engine;
use bellhop::profile::{self, ProfileSet};
use bellhop::secret::SecretSource;
use bytes::Bytes;
use futures_util::stream;
use warp::http::StatusCode;
use warp::{Filter, Reply as _};

pub mod oauth_server;

/// What the stub saw of the requests it answered.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    pub requests: Vec<SeenRequest>,
}

#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub api_key: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

pub struct StubApi {
    pub address: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    pub hits: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StubApi {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }
}

impl Drop for StubApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub const USER_JSON: &str =
    r#"{"id":"80351110224678912","username":"ann","email":"ann@example.com","verified":true}"#;
pub const ROOMS_JSON: &str = r#"{"home":"Test house","rooms":[{"name":"Kitchen","temp":21.5,"light":"on"},{"name":"Hall","temp":19,"light":"off"},{"name":"Attic","temp":12.25,"light":"off"}]}"#;

fn shaped(mut response: Reply, status: u16, headers: &[(&'static str, String)]) -> Reply {
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (name, value) in headers {
        if let Ok(value) = warp::http::HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

fn text(status: u16, content_type: &str, body: impl Into<String>) -> Reply {
    let body: String = body.into();
    shaped(
        Reply::new(body.into()),
        status,
        &[("content-type", content_type.to_string())],
    )
}

type Reply = warp::reply::Response;

/// Starts the stub on a free loopback port. It stops when dropped.
pub async fn start_stub() -> StubApi {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let hits = Arc::new(AtomicUsize::new(0));
    let record = {
        let seen = seen.clone();
        let hits = hits.clone();
        warp::path::full()
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::optional::<String>("authorization"))
            .and(warp::header::optional::<String>("x-api-key"))
            .and(warp::header::optional::<String>("content-type"))
            .and(warp::body::bytes())
            .map(
                move |path: warp::path::FullPath,
                      query: String,
                      authorization,
                      api_key,
                      content_type,
                      body: Bytes| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut seen) = seen.lock() {
                        seen.requests.push(SeenRequest {
                            path: path.as_str().to_string(),
                            query,
                            authorization,
                            api_key,
                            content_type,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                    }
                },
            )
            .untuple_one()
    };
    let port_cell = Arc::new(Mutex::new(None::<u16>));
    let other_origin = port_cell.clone();
    let routes = record
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |path: warp::path::FullPath, query: String| {
            match path.as_str() {
                "/user" => text(200, "application/json", USER_JSON),
                "/rooms" => text(200, "application/json", ROOMS_JSON),
                "/error500" => text(500, "text/plain", "internal trouble\nmore"),
                "/html" => text(200, "text/html", "<html><body>Login required</body></html>"),
                "/truncated" => text(200, "application/json", r#"{"email": "ann@exa"#),
                "/empty" => text(200, "application/json", ""),
                "/echo" => text(
                    200,
                    "application/json",
                    serde_json::json!({"ok": true, "query": query}).to_string(),
                ),
                "/redirect-same" => {
                    shaped(Reply::new("".into()), 302, &[("location", "/user".into())])
                }
                "/redirect-other" => {
                    let port = other_origin.lock().ok().and_then(|p| *p).unwrap_or(1);
                    let target = format!("http://localhost:{port}/user");
                    shaped(Reply::new("".into()), 302, &[("location", target)])
                }
                "/huge" => {
                    // 50 MB of JSON-ish bytes, streamed.
                    let chunk = Bytes::from(vec![b' '; 1024 * 1024]);
                    let chunks = (0..50).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
                    let body = warp::reply::stream(stream::iter(chunks)).into_response();
                    shaped(body, 200, &[("content-type", "application/json".into())])
                }
                "/pieces" => {
                    // A JSON answer sent in three pieces, without a length; the middle one
                    // splits a two-byte character.
                    let pieces = [&b"{\"email\":\"pi\xc3"[..], b"\xa9ces@example.com\"", b"}"];
                    let chunks = pieces
                        .into_iter()
                        .map(|piece| Ok::<_, std::io::Error>(Bytes::from_static(piece)));
                    let body = warp::reply::stream(stream::iter(chunks)).into_response();
                    shaped(body, 200, &[("content-type", "application/json".into())])
                }
                "/drip" => {
                    // One byte every 200 ms, forever.
                    let drip = futures_util::stream::unfold((), |_| async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), ()))
                    });
                    let body = warp::reply::stream(drip).into_response();
                    shaped(body, 200, &[("content-type", "application/json".into())])
                }
                "/latin1" => {
                    let body = Reply::new(Bytes::from_static(b"{\"city\":\"Z\xfcrich\"}").into());
                    shaped(
                        body,
                        200,
                        &[(
                            "content-type",
                            "application/json; charset=ISO-8859-1".into(),
                        )],
                    )
                }
                "/binary" => {
                    let body = Reply::new(Bytes::from_static(b"{\"email\":\"\xff\xfe\"}").into());
                    shaped(body, 200, &[("content-type", "application/json".into())])
                }
                "/gzip" => {
                    // {"email":"gz@example.com"}, gzip-encoded.
                    const GZIPPED: &[u8] = &[
                        31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 171, 86, 74, 205, 77, 204, 204, 81, 178,
                        82, 74, 175, 114, 72, 173, 72, 204, 45, 200, 73, 213, 75, 206, 207, 85,
                        170, 5, 0, 22, 132, 136, 91, 26, 0, 0, 0,
                    ];
                    let body = Reply::new(Bytes::from_static(GZIPPED).into());
                    shaped(
                        body,
                        200,
                        &[
                            ("content-type", "application/json".into()),
                            ("content-encoding", "gzip".into()),
                        ],
                    )
                }
                _ => text(404, "text/plain", "no such thing"),
            }
        });
    let (address, stop) = serve_on_loopback(routes, "the stub API").await;
    if let Ok(mut cell) = port_cell.lock() {
        *cell = Some(address.port());
    }
    StubApi {
        address,
        seen,
        hits,
        stop: Some(stop),
    }
}

/// Serves `filter` on a loopback port the system picks, until the returned sender is used or
/// dropped; `what` names the server in a panic.
pub async fn serve_on_loopback<F>(
    filter: F,
    what: &str,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>)
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{what} cannot bind a loopback port: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{what}: a bound listener has no address: {e}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = warp::serve(filter).incoming(listener).graceful(async {
        let _ = stopped.await;
    });
    tokio::spawn(server.run());
    (address, stop)
}

/// A temporary folder with a `profiles/` folder in it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::create_dir_all(dir.path().join("profiles"))
            .unwrap_or_else(|e| panic!("mkdir: {e}"));
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn profiles_dir(&self) -> PathBuf {
        self.dir.path().join("profiles")
    }

    pub fn write_profile(&self, name: &str, text: &str) -> PathBuf {
        let path = self.profiles_dir().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        path
    }

    pub fn load(&self) -> ProfileSet {
        profile::load_dir(&self.profiles_dir(), &SecretSource::default())
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("data").join("bellhop.sqlite")
    }

    pub fn hub(&self) -> Arc<DeviceHub> {
        Arc::new(
            DeviceHub::open(&self.store_path(), Duration::from_millis(10))
                .unwrap_or_else(|e| panic!("hub: {e}")),
        )
    }

    /// An engine over the workspace's profiles; fails the test if any profile has an error.
    pub fn engine(&self) -> Arc<Engine> {
        let set = self.load();
        assert!(
            !set.has_errors(),
            "profiles should load: {:#?}",
            set.diagnostics
        );
        Arc::new(Engine::new(set, None, self.hub()).unwrap_or_else(|e| panic!("engine: {e}")))
    }
}

impl Workspace {
    /// An engine over the workspace's profiles and its `events/` folder (these events written
    /// there first), with the event runner started. Fails the test on any load error.
    pub fn running_engine(&self, events: &[(&str, &str)]) -> Arc<Engine> {
        self.running_engine_on(events, bellhop::clock::Clock::system())
    }

    /// [`Workspace::running_engine`] whose runner reads `clock`.
    pub fn running_engine_on(
        &self,
        events: &[(&str, &str)],
        clock: bellhop::clock::Clock,
    ) -> Arc<Engine> {
        let dir = self.path().join("events");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        for (name, text) in events {
            std::fs::write(dir.join(format!("{name}.toml")), text)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let source = bellhop::engine::ProfileSource::new(self.profiles_dir(), None)
            .with_events_dir(dir.clone());
        let profiles = source.load();
        assert!(!profiles.has_errors(), "{:#?}", profiles.diagnostics);
        let events = bellhop::event::load_dir(&dir, &profiles);
        assert!(!events.has_errors(), "{:#?}", events.diagnostics);
        let engine = Arc::new(
            Engine::new(profiles, Some(source), self.hub())
                .unwrap_or_else(|e| panic!("{e}"))
                .with_clock(clock)
                .with_events(events, bellhop::event::Zone::Local),
        );
        engine.start_automation();
        engine
    }

    /// A new engine over the reloaded folder that shares the old engine's hub.
    pub fn engine_reloaded(&self, old: Arc<Engine>) -> Arc<Engine> {
        let set = self.load();
        Arc::new(
            Engine::new(set, None, old.hub().clone()).unwrap_or_else(|e| panic!("engine: {e}")),
        )
    }
}

/// The device boxes of the profiles that read a user's e-mail (`USER_JSON`) into device `email`.
pub const EMAIL_DEVICE: &str =
    "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'";

/// A minimal GET profile against `url` with the given `[devices]`/`[[device]]` text.
pub fn profile_text(url: &str, mapping: &str) -> String {
    format!("version = 1\n\n[request]\nmethod = \"GET\"\nurl = \"{url}\"\ntimeout_secs = 3\n\n{mapping}\n")
}

/// A `warp::test` request addressed to a loopback Bellhop, as a browser or curl would send it.
pub fn local_request() -> warp::test::RequestBuilder {
    warp::test::request().header("host", "127.0.0.1:8765")
}

/// Whether a real peer the test needs is there. Under CI (`CI=true`) a missing peer fails the
/// test with `missing` (which names the setup command); locally the test skips, loudly.
pub fn peer_present(present: bool, missing: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{missing}");
    }
    eprintln!("SKIPPED (not CI): {missing}");
    false
}

/// A loopback port free just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Serves `state` on a free loopback port until the returned sender is used (or dropped).
pub async fn serve(
    state: bellhop::web::AppState,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, _server) = bellhop::web::serve(
        state,
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        64,
        async {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (address, stop)
}

/// Like [`eventually`], moving `clock` forward by `step` between looks: what waits on the clock
/// (a device flow's interval, a token's life) comes at once, in the order it would have come.
pub async fn eventually_advancing(
    clock: &bellhop::clock::Clock,
    step: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        clock.advance(step);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}

/// Waits until `done` holds (or 8 s pass) and says whether it did.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}
