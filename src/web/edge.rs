//! The web trust boundary: which hosts and origins a request may name, who is an admin (the
//! admin token, or a server-side session made by signing in with it), and how fast sign-in may be
//! tried. Every route passes through [`Edge::check`] before anything else runs.
//!
//! - **Host**: a request must be addressed to a loopback name (`localhost`, `127.0.0.0/8`,
//!   `[::1]`), the listen address, the host of `web.public_base_url`, or a name listed in
//!   `web.allowed_hosts`. A page on another domain that re-resolves to 127.0.0.1 (DNS rebinding)
//!   sends its own name as Host and is refused.
//! - **Origin**: a request that carries `Origin` (every cross-origin request a browser makes, and
//!   every same-origin write) must come from one of those hosts over http(s); `Origin: null` is
//!   refused.
//! - **Admin**: with `web.admin_token` set, a request needs `Authorization: Bearer <token>` or a
//!   session cookie. The cookie holds a random session id, never the token; sessions expire, are
//!   dropped on sign-out, and are bounded in number.

use crate::sync::Locked;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;

use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bellhop_session";
/// Most sessions alive at once; signing in past that ends the oldest.
const MAX_SESSIONS: usize = 64;
/// Sign-in attempts: a burst of this many, then one more per [`LOGIN_REFILL`].
const LOGIN_BURST: u32 = 5;
const LOGIN_REFILL: Duration = Duration::from_secs(2);

/// Why the edge refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The Host names a server this is not (DNS rebinding, a mistyped proxy).
    ForeignHost(String),
    /// The Origin is not one of this server's.
    ForeignOrigin(String),
    /// No admin token or session.
    NotAdmitted,
    /// A browser asked for a page without a session: it is sent to the sign-in form.
    SignInFirst,
}

/// The peer address of the connection a request came on (set by `web::server`).
#[derive(Debug, Clone, Copy)]
pub struct ClientSocket(pub SocketAddr);

/// What the server is known as and who may use it.
pub struct Edge {
    hosts: HashSet<String>,
    admin_token: Option<Secret>,
    secure_cookies: bool,
    session_lifetime: Duration,
    sessions: Mutex<Sessions>,
    login: Mutex<LoginThrottle>,
    /// Proxies whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<IpAddr>,
    /// What sessions and the sign-in throttle read the time from.
    clock: Clock,
}

/// Sign-in attempts, counted per client address (a burst of 5, then one per 2 s each), under a
/// cap for everyone together far above what people type (a burst of 200, 20 a second), so
/// wrong guesses from one address never lock the admin out of the form.
struct LoginThrottle {
    clients: HashMap<Option<IpAddr>, TokenBucket>,
    everyone: TokenBucket,
}

/// Most client addresses remembered; beyond, the ones whose bucket has refilled are forgotten
/// (and, if none has, the throttle keeps counting under the cap for everyone).
const LOGIN_CLIENTS: usize = 4096;
const LOGIN_EVERYONE_BURST: f64 = 200.0;
const LOGIN_EVERYONE_PER_SECOND: f64 = 20.0;

impl LoginThrottle {
    fn new() -> LoginThrottle {
        LoginThrottle {
            clients: HashMap::new(),
            everyone: TokenBucket::full(LOGIN_EVERYONE_BURST, 0),
        }
    }

    fn take(&mut self, client: Option<IpAddr>, now_ms: i64) -> Result<(), Duration> {
        let (burst, per_second) = (f64::from(LOGIN_BURST), 1.0 / LOGIN_REFILL.as_secs_f64());
        if self.clients.len() >= LOGIN_CLIENTS && !self.clients.contains_key(&client) {
            let full_after_ms = (burst / per_second * 1000.0) as i64;
            self.clients
                .retain(|_, bucket| now_ms - bucket.last_ms < full_after_ms);
        }
        if self.clients.len() < LOGIN_CLIENTS || self.clients.contains_key(&client) {
            self.clients
                .entry(client)
                .or_insert_with(|| TokenBucket::full(burst, now_ms))
                .take(burst, per_second, now_ms)?;
        }
        self.everyone
            .take(LOGIN_EVERYONE_BURST, LOGIN_EVERYONE_PER_SECOND, now_ms)
    }
}

#[derive(Default)]
struct Sessions {
    /// Until when (the clock's ms) each session lives.
    expiry: HashMap<String, i64>,
    order: VecDeque<String>,
}

/// A token bucket: a burst of `capacity` calls, refilled at `per_second` (the sign-in form's
/// and each listening path's rate limit).
pub struct TokenBucket {
    tokens: f64,
    /// When it was last taken from (a clock's ms).
    last_ms: i64,
}

impl TokenBucket {
    /// A bucket full at `now_ms`.
    pub fn full(capacity: f64, now_ms: i64) -> TokenBucket {
        TokenBucket {
            tokens: capacity,
            last_ms: now_ms,
        }
    }

    /// Takes one token at `now_ms`; `Err(wait)` when there is none, with how long until there is.
    pub fn take(&mut self, capacity: f64, per_second: f64, now_ms: i64) -> Result<(), Duration> {
        let elapsed_ms = now_ms.saturating_sub(self.last_ms).max(0);
        let refill = elapsed_ms as f64 / 1000.0 * per_second;
        self.tokens = (self.tokens + refill).min(capacity);
        self.last_ms = self.last_ms.max(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / per_second.max(f64::MIN_POSITIVE),
            ))
        }
    }
}

/// The host name of a `Host` header or URL authority, lowercased, without port or brackets
/// (borrowed from `authority` unless it had to be lowercased: this runs on every request).
fn host_name(authority: &str) -> Cow<'_, str> {
    let authority = authority.trim();
    let name = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Edge {
    /// An edge for a server listening on `listen`, known publicly as `public_base_url`, also
    /// reachable under `allowed_hosts`.
    pub fn new(
        listen: Option<SocketAddr>,
        public_base_url: Option<&url::Url>,
        allowed_hosts: &[String],
        admin_token: Option<Secret>,
        session_lifetime: Duration,
    ) -> Edge {
        let mut hosts: HashSet<String> = allowed_hosts
            .iter()
            .map(|h| host_name(h).into_owned())
            .collect();
        if let Some(host) = public_base_url.and_then(|u| u.host_str()) {
            hosts.insert(host_name(host).into_owned());
        }
        if let Some(address) = listen.filter(|a| !a.ip().is_unspecified()) {
            hosts.insert(address.ip().to_string());
        }
        Edge {
            hosts,
            admin_token,
            secure_cookies: public_base_url.is_some_and(|u| u.scheme() == "https"),
            session_lifetime,
            sessions: Mutex::new(Sessions::default()),
            login: Mutex::new(LoginThrottle::new()),
            clock: Clock::system(),
            trusted_proxies: Vec::new(),
        }
    }

    /// Proxies whose `X-Forwarded-For` header names the client.
    /// Reads the time from `clock` (the system's by default): sessions and sign-in attempts.
    pub fn with_clock(mut self, clock: Clock) -> Edge {
        self.clock = clock;
        self
    }

    pub fn with_trusted_proxies(mut self, proxies: &[IpAddr]) -> Edge {
        self.trusted_proxies = proxies.to_vec();
        self
    }

    /// The client a request comes from: the socket's peer, or, when that peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one (the proxy appends
    /// what it saw; what comes before may be made up by the client).
    pub fn client_of(
        &self,
        socket: Option<SocketAddr>,
        forwarded_for: Option<&str>,
    ) -> Option<IpAddr> {
        let peer = socket.map(|s| s.ip())?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded = forwarded_for.unwrap_or_default();
        forwarded
            .rsplit(',')
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .find(|hop| !self.trusted_proxies.contains(hop))
            .or(Some(peer))
    }

    /// An edge for tests and embedding: loopback only, no admin token.
    pub fn loopback() -> Edge {
        Edge::new(None, None, &[], None, Duration::from_secs(3600))
    }

    pub fn with_admin_token(mut self, token: Option<Secret>) -> Edge {
        self.admin_token = token;
        self
    }

    pub fn admin_required(&self) -> bool {
        self.admin_token.is_some()
    }

    fn known_host(&self, host: &str) -> bool {
        is_loopback_name(host) || self.hosts.contains(host)
    }

    /// Host and Origin: the checks every request passes, admin or not.
    pub fn check_addressing(
        &self,
        host: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), Refusal> {
        // HTTP/1.1 requires Host; a request without one names no server and is not a browser's.
        let host = host.unwrap_or_default();
        if !self.known_host(&host_name(host)) {
            return Err(Refusal::ForeignHost(host.to_string()));
        }
        if let Some(origin) = origin {
            let allowed = url::Url::parse(origin).ok().is_some_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url
                        .host_str()
                        .is_some_and(|h| self.known_host(&host_name(h)))
            });
            if !allowed {
                return Err(Refusal::ForeignOrigin(origin.to_string()));
            }
        }
        Ok(())
    }

    /// Whether a request is an admin's: the bearer token, or a live session.
    pub fn admitted(&self, authorization: Option<&str>, session: Option<&str>) -> bool {
        let Some(expected) = &self.admin_token else {
            return true;
        };
        let bearer = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|given| token_matches(expected, given.trim()));
        bearer || session.is_some_and(|id| self.session_alive(id))
    }

    fn session_alive(&self, id: &str) -> bool {
        let mut sessions = self.sessions.locked();
        match sessions.expiry.get(id) {
            Some(until_ms) if *until_ms > self.clock.now_ms() => true,
            Some(_) => {
                sessions.expiry.remove(id);
                false
            }
            None => false,
        }
    }

    /// One sign-in attempt with `token` from `client`: a new session id, `Err(None)` for a
    /// wrong token, or `Err(Some(wait))` when this client's attempts (or everyone's together)
    /// come too fast.
    pub fn sign_in(&self, client: Option<IpAddr>, token: &str) -> Result<String, Option<Duration>> {
        let now_ms = self.clock.now_ms();
        self.login.locked().take(client, now_ms).map_err(Some)?;
        let Some(expected) = &self.admin_token else {
            return Err(None);
        };
        if !token_matches(expected, token.trim()) {
            return Err(None);
        }
        let id = crate::secret::random_token();
        let mut sessions = self.sessions.locked();
        sessions.expiry.retain(|_, until_ms| *until_ms > now_ms);
        let Sessions { expiry, order } = &mut *sessions;
        order.retain(|s| expiry.contains_key(s));
        while order.len() >= MAX_SESSIONS {
            if let Some(oldest) = order.pop_front() {
                expiry.remove(&oldest);
            }
        }
        let lifetime_ms = i64::try_from(self.session_lifetime.as_millis()).unwrap_or(i64::MAX);
        expiry.insert(id.clone(), now_ms.saturating_add(lifetime_ms));
        order.push_back(id.clone());
        Ok(id)
    }

    /// Sign-out: the session ends now.
    pub fn sign_out(&self, session: &str) {
        let mut sessions = self.sessions.locked();
        sessions.expiry.remove(session);
        sessions.order.retain(|s| s != session);
    }

    /// The `Set-Cookie` value for a new session.
    pub fn session_cookie(&self, id: &str) -> String {
        format!(
            "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.session_lifetime.as_secs(),
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn expired_cookie(&self) -> String {
        format!(
            "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }
}

fn token_matches(expected: &Secret, given: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(token: Option<&str>) -> Edge {
        let base = url::Url::parse("https://home.example.org/").unwrap_or_else(|e| panic!("{e}"));
        Edge::new(
            "192.168.1.5:8765".parse().ok(),
            Some(&base),
            &["proxy.lan:8443".to_string()],
            token.map(Secret::new),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_host_name_is_lowercased_without_port_or_brackets_and_borrowed_when_it_can_be() {
        let cases = [
            ("localhost", "localhost", true),
            (" Home.Example.ORG:8765 ", "home.example.org", false),
            ("[::1]:8765", "::1", true),
            ("[::1]", "::1", true),
            ("[::1", "::1", true),
            ("[", "", true),
            ("", "", true),
            // A "port" that is not digits is part of the name (and the name is then unknown).
            ("evil.example:http", "evil.example:http", true),
        ];
        for (authority, name, borrowed) in cases {
            let got = host_name(authority);
            assert_eq!(got, name, "{authority:?}");
            assert_eq!(matches!(got, Cow::Borrowed(_)), borrowed, "{authority:?}");
        }
    }

    #[test]
    fn hosts_and_origins_are_checked_against_what_the_server_is_known_as() {
        let edge = edge(None);
        for host in [
            "127.0.0.1:8765",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8765",
            "192.168.1.5:8765",
            "home.example.org",
            "proxy.lan",
        ] {
            assert_eq!(edge.check_addressing(Some(host), None), Ok(()), "{host}");
        }
        for host in [
            "evil.example:8765",
            "127.0.0.1.evil.example",
            "",
            "192.168.1.6",
        ] {
            assert!(edge.check_addressing(Some(host), None).is_err(), "{host}");
        }
        assert!(edge.check_addressing(None, None).is_err());
        let ok = Some("127.0.0.1:8765");
        assert_eq!(
            edge.check_addressing(ok, Some("https://home.example.org")),
            Ok(())
        );
        for origin in [
            "http://evil.example:8765",
            "null",
            "file://",
            "chrome-extension://x",
        ] {
            assert!(edge.check_addressing(ok, Some(origin)).is_err(), "{origin}");
        }
    }

    #[test]
    fn sessions_are_random_revocable_and_the_cookie_is_not_the_token() {
        let edge = edge(Some("a-long-admin-token-123"));
        assert!(!edge.admitted(None, None));
        assert!(edge.admitted(Some("Bearer a-long-admin-token-123"), None));
        assert_eq!(edge.sign_in(None, "wrong"), Err(None));
        let id = edge
            .sign_in(None, "a-long-admin-token-123")
            .unwrap_or_default();
        assert!(id.len() >= 40 && !id.contains("admin-token"));
        let cookie = edge.session_cookie(&id);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("; Secure"), "https public URL: {cookie}");
        assert!(edge.admitted(None, Some(&id)));
        assert!(!edge.admitted(None, Some("a-long-admin-token-123")));
        edge.sign_out(&id);
        assert!(!edge.admitted(None, Some(&id)));
    }

    #[test]
    fn sign_in_attempts_are_throttled() {
        let edge = edge(Some("a-long-admin-token-123"));
        let refused = (0..100)
            .map(|_| edge.sign_in(None, "guess"))
            .filter(|r| matches!(r, Err(Some(_))))
            .count();
        assert!(refused >= 100 - LOGIN_BURST as usize, "{refused}");
    }

    /// Wrong guesses from one address do not lock out another; a flood from many addresses
    /// meets the cap for everyone.
    #[test]
    fn sign_in_attempts_are_throttled_per_client() {
        let edge = edge(Some("a-long-admin-token-123"));
        let attacker: IpAddr = "192.0.2.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let admin: IpAddr = "192.0.2.8".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        for _ in 0..20 {
            let _ = edge.sign_in(Some(attacker), "guess");
        }
        assert!(matches!(
            edge.sign_in(Some(attacker), "a-long-admin-token-123"),
            Err(Some(_))
        ));
        assert!(edge.sign_in(Some(admin), "a-long-admin-token-123").is_ok());
        let flooded = (0..1000u32)
            .map(|n| IpAddr::from(n.to_be_bytes()))
            .filter(|client| matches!(edge.sign_in(Some(*client), "guess"), Err(Some(_))))
            .count();
        assert!(flooded >= 700, "the cap for everyone: {flooded}");
    }

    /// The forwarded address counts only when the socket's peer is a trusted proxy, and then
    /// the nearest hop that is not one.
    #[test]
    fn the_client_is_the_socket_unless_a_trusted_proxy_forwards() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let edge = edge(None).with_trusted_proxies(&[proxy]);
        let from = |ip: &str| Some(SocketAddr::new(ip.parse().unwrap_or(proxy), 40000));
        let lie = Some("203.0.113.9");
        assert_eq!(
            edge.client_of(from("198.51.100.4"), lie),
            "198.51.100.4".parse().ok()
        );
        assert_eq!(
            edge.client_of(from("10.0.0.2"), Some("203.0.113.9, 198.51.100.4")),
            "198.51.100.4".parse().ok()
        );
        assert_eq!(edge.client_of(from("10.0.0.2"), Some("junk")), Some(proxy));
        assert_eq!(edge.client_of(None, lie), None);
    }
}
