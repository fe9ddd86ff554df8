//! The MQTT bridge against a real broker (Debian's mosquitto, started here on a free loopback
//! port): retained states and Home Assistant discovery configs, availability, commands with
//! their answers, bad commands, and a broker restart that loses nothing.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::support::free_port;
use crate::support::{profile_text, start_stub, Workspace, EMAIL_DEVICE};

/// Whether mosquitto is installed; under CI its absence fails the test.
pub(crate) fn mosquitto_ready() -> bool {
    crate::support::peer_present(
        std::path::Path::new("/usr/sbin/mosquitto").exists(),
        "mosquitto is missing: run `bash .ci/run` (apt-get install -y mosquitto)",
    )
}

/// A mosquitto of our own on 127.0.0.1:`port`, anonymous, without persistence (as a plain
/// install is: retained messages die with it). Stopped on drop.
///
/// mosquitto cannot listen on port 0 and say which port it got (its `listener 0` is a Unix
/// socket), so it is given a port free a moment ago; when another process took that port in
/// between, mosquitto exits and is started again on another.
pub(crate) struct Broker {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub(crate) fn start() -> Broker {
        Broker::start_with(None)
    }

    /// A broker on `port`, where one ran before (a restart): no other port will do.
    pub(crate) fn start_on(port: u16) -> Broker {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let text = "persistence false\nmax_queued_messages 0\nallow_anonymous true\n".to_string();
        Broker::run(Some(port), dir, text)
    }

    /// With `login`: anonymous clients are refused, this user and password let in.
    fn start_with(login: Option<(&str, &str)>) -> Broker {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // No cap on queued messages per client: the test's observer takes a burst of thousands
        // (mosquitto's default of 1,000 would drop the observer's share, not the bridge's).
        let mut text = "persistence false\nmax_queued_messages 0\n".to_string();
        match login {
            None => text.push_str("allow_anonymous true\n"),
            Some((user, password)) => {
                // mosquitto, started as root, reads the file as its own user.
                use std::os::unix::fs::PermissionsExt;
                let _ =
                    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
                let file = dir.path().join("passwords");
                let made = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, password])
                    .output()
                    .unwrap_or_else(|e| panic!("mosquitto_passwd: {e}"));
                assert!(made.status.success(), "{made:?}");
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644));
                text.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
        }
        Broker::run(None, dir, text)
    }

    /// TLS with a certificate for 127.0.0.1 from a CA made here; the CA's PEM. With
    /// `clients_show_certificates`, clients must show one the CA signed; one is made too.
    fn start_tls(clients_show_certificates: bool) -> (Broker, Vec<u8>, (Vec<u8>, String)) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        }
        let ca = make_ca(dir.path(), "ca");
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        for file in ["server.key", "server.pem", "ca.pem"] {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(d.join(file), std::fs::Permissions::from_mode(0o644));
        }
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n")
            .unwrap_or_else(|e| panic!("{e}"));
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/CN=bellhop",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.pem",
                "-days",
                "2",
                "-extfile",
                "client.ext",
            ],
        );
        let client = (
            std::fs::read(d.join("client.pem")).unwrap_or_else(|e| panic!("{e}")),
            std::fs::read_to_string(d.join("client.key")).unwrap_or_else(|e| panic!("{e}")),
        );
        let mut text = format!(
            "persistence false\nallow_anonymous true\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            d.display()
        );
        if clients_show_certificates {
            text.push_str("require_certificate true\n");
        }
        (Broker::run(None, dir, text), ca, client)
    }

    /// Starts mosquitto with `settings` and a listener on `port` (a free one when `None`).
    fn run(port: Option<u16>, dir: tempfile::TempDir, settings: String) -> Broker {
        let config = dir.path().join("mosquitto.conf");
        for _attempt in 0..5 {
            let fixed = port;
            let port = fixed.unwrap_or_else(free_port);
            std::fs::write(&config, format!("listener {port} 127.0.0.1\n{settings}"))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut child = Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("mosquitto: {e}"));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let listening = loop {
                if !matches!(child.try_wait(), Ok(None)) {
                    break false; // it could not listen there
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Someone answers: mosquitto, unless it is about to exit for want of it.
                    std::thread::sleep(Duration::from_millis(100));
                    break matches!(child.try_wait(), Ok(None));
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "mosquitto did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            if listening {
                return Broker {
                    child,
                    port,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                fixed.is_none(),
                "mosquitto could not listen on {port} again"
            );
        }
        panic!("mosquitto found no free port in five tries")
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let made = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(made.status.success(), "openssl {args:?}: {made:?}");
}

/// A self-signed CA (`<name>.pem`, `<name>.key` in `dir`); its PEM.
fn make_ca(dir: &std::path::Path, name: &str) -> Vec<u8> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=bellhop test {name}"),
        ],
    );
    std::fs::read(dir.join(format!("{name}.pem"))).unwrap_or_else(|e| panic!("{e}"))
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that records the last message of every topic it sees, and every message in the
/// order it arrived.
pub(crate) struct Observer {
    client: AsyncClient,
    seen: Arc<Mutex<HashMap<String, (String, bool)>>>,
    wire: Arc<Mutex<Vec<(String, String, bool)>>>,
}

impl Observer {
    pub(crate) async fn connect(port: u16, name: &str, filters: &[&str]) -> Observer {
        let mut options = MqttOptions::new(name, "127.0.0.1", port);
        options.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        for filter in filters {
            client
                .subscribe(*filter, QoS::AtLeastOnce)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let seen: Arc<Mutex<HashMap<String, (String, bool)>>> = Arc::default();
        let wire: Arc<Mutex<Vec<(String, String, bool)>>> = Arc::default();
        let (record, in_order) = (seen.clone(), wire.clone());
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        if let Ok(mut wire) = in_order.lock() {
                            wire.push((p.topic.clone(), payload.clone(), p.retain));
                        }
                        if let Ok(mut seen) = record.lock() {
                            seen.insert(p.topic.clone(), (payload, p.retain));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Observer { client, seen, wire }
    }

    /// Where on the wire the last message on `topic` that `holds` came (its position among
    /// everything received), if one did.
    fn position(&self, topic: &str, holds: impl Fn(&str) -> bool) -> Option<usize> {
        self.wire
            .lock()
            .ok()?
            .iter()
            .rposition(|(t, payload, _)| t == topic && holds(payload))
    }

    /// Every message received on `topic`, in order, with its retain flag.
    fn messages(&self, topic: &str) -> Vec<(String, bool)> {
        self.wire
            .lock()
            .map(|wire| {
                wire.iter()
                    .filter(|(t, ..)| t == topic)
                    .map(|(_, payload, retain)| (payload.clone(), *retain))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn get(&self, topic: &str) -> Option<(String, bool)> {
        self.seen.lock().ok()?.get(topic).cloned()
    }

    fn forget(&self, topic: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(topic);
        }
    }

    pub(crate) async fn wait_for(&self, topic: &str, holds: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((payload, _)) = self.get(topic) {
                if holds(&payload) {
                    return payload;
                }
            }
            if std::time::Instant::now() > deadline {
                let topics: Vec<String> = self
                    .seen
                    .lock()
                    .map(|s| s.keys().cloned().collect())
                    .unwrap_or_default();
                panic!(
                    "{topic} never held the expected payload ({:?}); topics seen: {topics:?}",
                    self.get(topic)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) fn bridge_config(port: u16) -> bellhop::mqtt::BridgeConfig {
    bellhop::mqtt::BridgeConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        client_id: "bellhop-test".into(),
        base_topic: "bellhop".into(),
        discovery_prefix: Some("homeassistant".into()),
        qos: 1,
        keepalive: Duration::from_secs(5),
        commands: true,
        allow: Vec::new(),
        tls: None,
        protocol: bellhop::mqtt::Protocol::V311,
    }
}

/// Waits until the bridge's health says `ok` (or, with `false`, a failure); the health.
async fn bridge_health(
    engine: &bellhop::engine::Engine,
    ok: bool,
) -> bellhop::engine::door::AdapterHealth {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(health) = engine.adapters().get("mqtt").filter(|h| h.ok == ok) {
            return health.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge never said ok = {ok}: {:?}",
            engine.adapters()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first message a client with these options gets on `topic`.
async fn first_message(options: MqttOptions, topic: &str) -> String {
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    return String::from_utf8_lossy(&p.payload).into_owned()
                }
                Ok(_) => {}
                Err(e) => panic!("the checking client cannot connect: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing on {topic}"))
}

/// A workspace and a running engine with the `user` profile of the stub.
fn user_engine(stub: &crate::support::StubApi) -> (Workspace, Arc<bellhop::engine::Engine>) {
    let ws = Workspace::new();
    ws.write_profile("user", &profile_text(&stub.url("/user"), EMAIL_DEVICE));
    let engine = ws.running_engine(&[]);
    (ws, engine)
}

/// Devices appear retained, with Home Assistant discovery configs and the bridge online;
/// commands run events, actions and device changes and are answered; bad commands run nothing.
#[tokio::test]
async fn devices_and_commands_meet_a_real_broker() {
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start();
    let port = broker.port;
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile("user", &profile_text(&stub.url("/user"), EMAIL_DEVICE));
    let engine = ws.running_engine(&[(
        "hello",
        "[[action]]\nset_global = \"greeting\"\nstring = 'input'\n",
    )]);
    // A retained command waits on the broker: the broker replays it when the bridge subscribes,
    // and the bridge must not run it (nor at any reconnect).
    let early = Observer::connect(port, "early", &[]).await;
    early
        .client
        .publish(
            "bellhop/event/hello/run",
            QoS::AtLeastOnce,
            true,
            "replayed",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _bridge =
        bellhop::mqtt::start(&engine, bridge_config(port)).unwrap_or_else(|e| panic!("{e}"));
    let record = engine
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    let reference = record.changes[0].device.reference;

    let observer = Observer::connect(port, "observer", &["bellhop/#", "homeassistant/#"]).await;
    let state = observer
        .wait_for("bellhop/user/email/state", |p| {
            p.contains("ann@example.com")
        })
        .await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
    assert_eq!(state["ref"], reference);
    assert_eq!(
        observer.get("bellhop/user/email/state").map(|(_, r)| r),
        Some(true),
        "retained"
    );
    observer
        .wait_for("bellhop/bridge/state", |p| p == "online")
        .await;
    let config_topic = format!("homeassistant/sensor/bellhop-test/{reference}/config");
    let config = observer.wait_for(&config_topic, |p| !p.is_empty()).await;
    let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
    validate_sensor_config(&config);
    assert_eq!(config["uniq_id"], format!("bellhop-test_{reference}"));
    // The profile's last run is an entity of its own.
    observer
        .wait_for("bellhop/profile/user/last_run", |p| {
            p.contains("\"state\":\"ok\"")
        })
        .await;
    let run_config = observer
        .wait_for(
            "homeassistant/sensor/bellhop-test/profile_user_last_run/config",
            |p| !p.is_empty(),
        )
        .await;
    validate_sensor_config(&serde_json::from_str(&run_config).unwrap_or_default());

    assert!(
        observer.get("bellhop/event/hello/result").is_none()
            && !engine.globals().iter().any(|g| g.name == "greeting"),
        "a retained command ran"
    );
    early
        .client
        .publish(
            "bellhop/event/hello/run",
            QoS::AtLeastOnce,
            true,
            Vec::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // (Clearing it reaches the bridge as a live command with an empty input, as MQTT has it.)
    observer
        .wait_for("bellhop/event/hello/result", |p| !p.is_empty())
        .await;
    observer.forget("bellhop/event/hello/result");
    // An event, by command; its answer is its run record.
    let publish = |topic: String, payload: Vec<u8>, retain: bool| {
        let client = observer.client.clone();
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    publish(
        "bellhop/event/hello/run".into(),
        b"hi there".to_vec(),
        false,
    )
    .await;
    let answer = observer
        .wait_for("bellhop/event/hello/result", |p| !p.is_empty())
        .await;
    assert!(answer.contains("\"outcome\":\"ok\""), "{answer}");
    assert!(engine
        .globals()
        .iter()
        .any(|g| g.name == "greeting" && g.string == "hi there"));
    observer
        .wait_for("bellhop/global/greeting", |p| p.contains("hi there"))
        .await;
    // A profile's action and a device, by command.
    publish("bellhop/action/user/run".into(), Vec::new(), false).await;
    let answer = observer
        .wait_for("bellhop/action/user/result", |p| !p.is_empty())
        .await;
    assert!(answer.contains("\"ok\":true"), "{answer}");
    publish(
        format!("bellhop/device/{reference}/set"),
        br#"{"string":"bob@example.com"}"#.to_vec(),
        false,
    )
    .await;
    observer
        .wait_for("bellhop/user/email/state", |p| {
            p.contains("bob@example.com")
        })
        .await;
    // Bad commands: an unknown event, a payload that is not text, a retained command.
    publish("bellhop/event/nobody/run".into(), b"x".to_vec(), false).await;
    let answer = observer
        .wait_for("bellhop/event/nobody/result", |p| !p.is_empty())
        .await;
    assert!(
        answer.contains("\"error\"") && answer.contains("nobody"),
        "{answer}"
    );
    observer.forget("bellhop/event/hello/result");
    publish("bellhop/event/hello/run".into(), vec![0xff, 0xfe], false).await;
    let answer = observer
        .wait_for("bellhop/event/hello/result", |p| !p.is_empty())
        .await;
    assert!(answer.contains("not UTF-8"), "{answer}");
    // 10 MB: refused with an answer, and the bridge stays connected (the next command runs).
    observer.forget("bellhop/event/hello/result");
    publish(
        "bellhop/event/hello/run".into(),
        vec![b'x'; 10 * 1024 * 1024],
        false,
    )
    .await;
    let answer = observer
        .wait_for("bellhop/event/hello/result", |p| !p.is_empty())
        .await;
    assert!(
        answer.contains("over the limit"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    observer.forget("bellhop/event/hello/result");
    publish("bellhop/event/hello/run".into(), b"after".to_vec(), false).await;
    observer
        .wait_for("bellhop/event/hello/result", |p| {
            p.contains("\"outcome\":\"ok\"")
        })
        .await;
    // Home Assistant comes online: the configs come again.
    observer.forget(&config_topic);
    publish("homeassistant/status".into(), b"online".to_vec(), false).await;
    observer.wait_for(&config_topic, |p| !p.is_empty()).await;
    // A deleted device's entity goes (an empty retained config), then its retained state: in
    // that order on the wire, so Home Assistant never reads an empty state as a value.
    engine
        .remove_device(reference)
        .unwrap_or_else(|e| panic!("{e}"));
    observer.wait_for(&config_topic, str::is_empty).await;
    observer
        .wait_for("bellhop/user/email/state", str::is_empty)
        .await;
    let config_cleared = observer.position(&config_topic, str::is_empty);
    let state_cleared = observer.position("bellhop/user/email/state", str::is_empty);
    assert!(
        config_cleared.is_some() && config_cleared < state_cleared,
        "the config must be cleared before the state: {config_cleared:?} vs {state_cleared:?}"
    );
}

/// A thermostat whose root only carries features, with a settable setpoint (a `number`) and
/// mode (a `text`), a profile with a button, an event with a button and one without.
pub(crate) const THERMO_PROFILE: &str = r#"version = 1
listen = "/thermo"

[[device]]
name = '"Thermo"'
[[device.feature]]
name = '"temperature"'
value = 'ParseNumber(Query(input, "t"))'
[[device.feature]]
name = '"setpoint"'
value = 'ParseNumber(Query(input, "s"))'
[[device.feature]]
name = '"mode"'
string = 'Query(input, "m")'

[devices.units]
temperature = "°C"
setpoint = "°C"
[devices.settable]
setpoint = { min = 5, max = 30, step = 0.5, mode = "slider" }
mode = { kind = "text", max = 16 }
"#;

/// Home Assistant controls: buttons run actions and fire events, settable devices are `number`
/// and `text` entities set through their command topic (and their change fires events), every
/// event run is published for HA's `event` entity, the bridge has its connectivity entity, a
/// root without a value of its own is a device only, and whole numbers are integers.
#[tokio::test]
async fn home_assistant_controls_meet_a_real_broker() {
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start();
    let port = broker.port;
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile("user", &profile_text(&stub.url("/user"), EMAIL_DEVICE));
    ws.write_profile("thermo", THERMO_PROFILE);
    ws.write_profile(
        "hidden",
        &format!(
            "home_assistant_button = false\n{}",
            profile_text(&stub.url("/user"), EMAIL_DEVICE)
        ),
    );
    let engine = ws.running_engine(&[
        (
            "too-warm",
            "[[trigger]]\nprofile = \"thermo\"\nroot = \"Thermo\"\nfeature = \"setpoint\"\ncompare = \">\"\nto = 25\n[[action]]\nset_global = \"alert\"\nstring = '\"set to \" + input'\n",
        ),
        (
            "quiet",
            "home_assistant_button = false\nconditions = ['GVval(\"never\", 0) == 1']\n[[trigger]]\nwebhook = true\n[[action]]\nwait = \"1ms\"\n",
        ),
    ]);
    let observer = Observer::connect(port, "observer", &["bellhop/#", "homeassistant/#"]).await;
    let _bridge =
        bellhop::mqtt::start(&engine, bridge_config(port)).unwrap_or_else(|e| panic!("{e}"));
    let thermo = engine
        .listener("/thermo")
        .unwrap_or_else(|| panic!("not listening"));
    let call = bellhop::engine::listening::IncomingCall {
        method: bellhop::profile::Method::Get,
        token: None,
        input: "t=21.0&s=20&m=heat".into(),
        headers: Default::default(),
    };
    let received = engine
        .receive(thermo, call)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(received.record.ok, "{:?}", received.record.errors);
    let reference = |feature: Option<&str>| {
        engine
            .devices()
            .into_iter()
            .find(|d| &*d.key.root == "Thermo" && d.key.feature.as_deref() == feature)
            .map(|d| d.reference)
            .unwrap_or_else(|| panic!("no Thermo {feature:?}: {:?}", engine.devices()))
    };
    let (root, temperature, setpoint, mode) = (
        reference(None),
        reference(Some("temperature")),
        reference(Some("setpoint")),
        reference(Some("mode")),
    );
    let config = |component: &str, name: &str| {
        format!("homeassistant/{component}/bellhop-test/{name}/config")
    };
    let json = |text: String| -> serde_json::Value {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };

    // Whole numbers are integers on the wire.
    let state = observer
        .wait_for("bellhop/thermo/Thermo/temperature/state", |p| !p.is_empty())
        .await;
    assert!(state.contains("\"value\":21}"), "{state}");
    let sensor = json(
        observer
            .wait_for(&config("sensor", &temperature.to_string()), |p| {
                !p.is_empty()
            })
            .await,
    );
    validate_sensor_config(&sensor);
    assert_eq!(sensor["def_ent_id"], "sensor.thermo_temperature");
    // The setpoint is a number, the mode a text, both commanded on their set topic.
    let number = json(
        observer
            .wait_for(&config("number", &setpoint.to_string()), |p| !p.is_empty())
            .await,
    );
    assert_eq!(number["cmd_t"], format!("bellhop/device/{setpoint}/set"));
    assert_eq!(
        (
            number["min"].as_f64(),
            number["max"].as_f64(),
            number["step"].as_f64()
        ),
        (Some(5.0), Some(30.0), Some(0.5))
    );
    assert_eq!(number["unit_of_meas"], "°C");
    assert_eq!(number["def_ent_id"], "number.thermo_setpoint");
    let text = json(
        observer
            .wait_for(&config("text", &mode.to_string()), |p| !p.is_empty())
            .await,
    );
    assert_eq!(text["cmd_t"], format!("bellhop/device/{mode}/set"));
    assert_eq!(text["max"], 16);
    // The bridge's own device and its connectivity.
    let bridge = json(
        observer
            .wait_for(&config("binary_sensor", "bridge_connectivity"), |p| {
                !p.is_empty()
            })
            .await,
    );
    assert_eq!(bridge["dev_cla"], "connectivity");
    assert_eq!(bridge["pl_on"], "online");
    // Buttons: the user profile's, the too-warm event's; none for the profile and event that
    // opt out, nor for a listening profile.
    let run_button = json(
        observer
            .wait_for(&config("button", "profile_user_run"), |p| !p.is_empty())
            .await,
    );
    assert_eq!(run_button["cmd_t"], "bellhop/action/user/run");
    let fire_button = json(
        observer
            .wait_for(&config("button", "event_too-warm_fire"), |p| !p.is_empty())
            .await,
    );
    assert_eq!(fire_button["cmd_t"], "bellhop/event/too-warm/run");
    let quiet = json(
        observer
            .wait_for(&config("event", "event_quiet_run"), |p| !p.is_empty())
            .await,
    );
    assert_eq!(quiet["stat_t"], "bellhop/event/quiet/outcome");
    for (component, name) in [
        ("button", "event_quiet_fire".to_string()),
        ("button", "profile_hidden_run".to_string()),
        ("button", "profile_thermo_run".to_string()),
        ("sensor", root.to_string()),
    ] {
        let topic = config(component, &name);
        assert!(
            observer
                .get(&topic)
                .is_none_or(|(payload, _)| payload.is_empty()),
            "{topic} should have no config: {:?}",
            observer.get(&topic)
        );
    }

    // Pressing the user profile's button runs its action.
    observer
        .client
        .publish("bellhop/action/user/run", QoS::AtLeastOnce, false, "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    observer
        .wait_for("bellhop/action/user/result", |p| p.contains("\"ok\":true"))
        .await;
    assert_eq!(engine.history(Some("user"), 5).len(), 1);
    // Setting the number sets the device, and the change fires the event, whose outcome is
    // published (not retained) for HA's event entity.
    observer
        .client
        .publish(
            format!("bellhop/device/{setpoint}/set"),
            QoS::AtLeastOnce,
            false,
            "26.5",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = json(
        observer
            .wait_for("bellhop/event/too-warm/outcome", |p| !p.is_empty())
            .await,
    );
    assert_eq!(outcome["event_type"], "finished");
    assert_eq!(outcome["trigger"], "device");
    assert!(observer
        .messages("bellhop/event/too-warm/outcome")
        .iter()
        .all(|(_, retained)| !retained));
    assert_eq!(engine.device(setpoint).map(|d| d.value), Some(26.5));
    assert!(engine
        .globals()
        .iter()
        .any(|g| g.name == "alert" && g.string == "set to 26.5"));
    // A text takes its payload as text, even when it reads as a number; too long is refused.
    observer
        .client
        .publish(
            format!("bellhop/device/{mode}/set"),
            QoS::AtLeastOnce,
            false,
            "42",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    observer
        .wait_for(&format!("bellhop/device/{mode}/result"), |p| {
            p.contains("\"string\":\"42\"")
        })
        .await;
    assert_eq!(
        engine.device(mode).map(|d| (d.value, d.string)),
        Some((0.0, "42".into()))
    );
    observer
        .client
        .publish(
            format!("bellhop/device/{mode}/set"),
            QoS::AtLeastOnce,
            false,
            "x".repeat(17),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    observer
        .wait_for(&format!("bellhop/device/{mode}/result"), |p| {
            p.contains("error")
        })
        .await;
    assert_eq!(engine.device(mode).map(|d| d.string), Some("42".into()));
    // The quiet event, fired by hand: its conditions are false, and HA hears so.
    observer
        .client
        .publish("bellhop/event/quiet/run", QoS::AtLeastOnce, false, "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = json(
        observer
            .wait_for("bellhop/event/quiet/outcome", |p| !p.is_empty())
            .await,
    );
    assert_eq!(outcome["event_type"], "conditions_false");
}

/// The broker restarts (losing every retained message) while devices change: afterwards it
/// holds the latest state of every one, every discovery config and the bridge online again.
#[tokio::test]
async fn a_broker_restart_loses_nothing() {
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start();
    let port = broker.port;
    let ws = Workspace::new();
    ws.write_profile(
        "many",
        "version = 1\nlisten = \"/many\"\n[devices]\nroot_names = 'Split(input, \",\")'\nvalues = '0'\n",
    );
    let engine = ws.running_engine(&[]);
    let profile = engine
        .listener("/many")
        .unwrap_or_else(|| panic!("not listening"));
    let names: Vec<String> = (0..1000).map(|i| format!("d{i}")).collect();
    let call = |input: String| bellhop::engine::listening::IncomingCall {
        method: bellhop::profile::Method::Post,
        token: None,
        input: input.into(),
        headers: Default::default(),
    };
    let received = engine
        .receive(profile.clone(), call(names.join(",")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(received.record.ok, "{:?}", received.record.errors);
    let _bridge =
        bellhop::mqtt::start(&engine, bridge_config(port)).unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(broker);
    // While the broker is down, every device changes ten times (a burst of 10,000 changes), and
    // the engine goes on.
    let devices = engine.devices();
    for round in 1..=10 {
        for device in &devices {
            engine
                .set_device(device.reference, Some(f64::from(round)), None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let _broker = Broker::start_on(port);
    let observer =
        Observer::connect(port, "after-restart", &["bellhop/#", "homeassistant/#"]).await;
    for device in &devices {
        let topic = format!("bellhop/many/{}/state", device.key.root);
        observer
            .wait_for(&topic, |p| p.contains("\"value\":10}"))
            .await;
        observer
            .wait_for(
                &format!(
                    "homeassistant/sensor/bellhop-test/{}/config",
                    device.reference
                ),
                |p| !p.is_empty(),
            )
            .await;
    }
    observer
        .wait_for("bellhop/bridge/state", |p| p == "online")
        .await;
}

/// What Home Assistant's MQTT sensor schema requires of a discovery config, with its
/// abbreviations: `stat_t`, a `unique_id`, a device with identifiers and a name, an origin with a
/// name, and only keys HA knows.
fn validate_sensor_config(config: &serde_json::Value) {
    const KNOWN: &[&str] = &[
        "name",
        "uniq_id",
        "def_ent_id",
        "stat_t",
        "val_tpl",
        "json_attr_t",
        "json_attr_tpl",
        "avty_t",
        "avty",
        "avty_mode",
        "dev",
        "o",
        "dev_cla",
        "unit_of_meas",
        "stat_cla",
        "ic",
        "exp_aft",
        "frc_upd",
        "en",
        "ent_cat",
        "qos",
        "sug_dsp_prc",
    ];
    let object = config
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {config}"));
    for key in object.keys() {
        assert!(
            KNOWN.contains(&key.as_str()),
            "unknown discovery key `{key}`"
        );
    }
    assert!(config["stat_t"]
        .as_str()
        .is_some_and(|t| !t.contains(['+', '#'])));
    assert!(config["uniq_id"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(config["dev"]["ids"]
        .as_array()
        .is_some_and(|ids| !ids.is_empty()));
    assert!(config["dev"]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    assert!(config["o"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(config["avty_t"].as_str().is_some());
}

/// A broker that wants a login: a wrong password is a clear, retried error the health API shows,
/// while actions go on; the right one connects and publishes.
#[tokio::test]
async fn a_refused_login_is_reported_and_actions_go_on() {
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start_with(Some(("ann", "right-password")));
    let port = broker.port;
    let stub = start_stub().await;
    let (_ws, wrong) = user_engine(&stub);
    let mut config = bridge_config(port);
    config.username = Some("ann".into());
    config.password = Some(bellhop::secret::Secret::new("wrong-password"));
    let _bridge = bellhop::mqtt::start(&wrong, config.clone()).unwrap_or_else(|e| panic!("{e}"));
    let health = bridge_health(&wrong, false).await;
    assert!(
        health.detail.contains("refused the user name or password"),
        "{health:?}"
    );
    assert!(!health.detail.contains("wrong-password"));
    let record = wrong
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "actions go on: {:?}", record.errors);
    drop(_bridge);
    drop(wrong);

    let (_ws, right) = user_engine(&stub);
    config.password = Some(bellhop::secret::Secret::new("right-password"));
    let _bridge = bellhop::mqtt::start(&right, config).unwrap_or_else(|e| panic!("{e}"));
    right
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut options = MqttOptions::new("checker", "127.0.0.1", port);
    options.set_credentials("ann", "right-password");
    let got = first_message(options, "bellhop/user/email/state").await;
    assert!(got.contains("ann@example.com"), "{got}");
    bridge_health(&right, true).await;
}

/// MQTT profiles: messages on a filter become devices (the topic is `Topic()`) and fire input
/// triggers; an action publishes its text; broken `[mqtt]` tables are load errors.
#[tokio::test]
async fn mqtt_profiles_take_messages_in_and_publish_actions() {
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start();
    let port = broker.port;
    let ws = Workspace::new();
    ws.write_profile(
        "thermometers",
        "version = 1\n[mqtt]\nsubscribe = \"sensors/+/temperature\"\n[devices]\nroot_names = 'Split(Topic(), \"/\")[1]'\nvalues = 'ParseNumber(input)'\n[devices.units]\nkitchen = \"°C\"\n[devices.device_classes]\nkitchen = \"temperature\"\n",
    );
    ws.write_profile(
        "lamp",
        "version = 1\n[mqtt]\npublish = \"lamps/${input}/set\"\nqos = 1\n",
    );
    let engine = ws.running_engine(&[(
            "warm",
            "[[trigger]]\ninput = \"thermometers\"\nnumber = 0\ncompare = \">\"\nto = 25\n[[action]]\nrun = \"lamp\"\ntext = 'hall'\n",
        )],
    );
    // Without the bridge, publishing is a clear error.
    let record = engine
        .run("lamp", "hall")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !record.ok && record.errors[0].message.contains("mqtt.url"),
        "{record:?}"
    );
    let _bridge =
        bellhop::mqtt::start(&engine, bridge_config(port)).unwrap_or_else(|e| panic!("{e}"));
    let observer = Observer::connect(port, "observer", &["lamps/#"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    observer
        .client
        .publish(
            "sensors/kitchen/temperature",
            QoS::AtLeastOnce,
            false,
            "21.5",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    observer
        .client
        .publish("sensors/hall/temperature", QoS::AtLeastOnce, false, "27")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let value = |root: &str| {
        engine
            .devices()
            .into_iter()
            .find(|d| &*d.key.profile == "thermometers" && &*d.key.root == root)
            .map(|d| d.value)
    };
    while value("kitchen") != Some(21.5) || value("hall") != Some(27.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            engine.devices()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The profile's unit and class reach Home Assistant's config of the kitchen.
    let kitchen = engine
        .devices()
        .into_iter()
        .find(|d| &*d.key.root == "kitchen")
        .map_or(0, |d| d.reference);
    let configs = Observer::connect(port, "configs", &["homeassistant/#"]).await;
    let config = configs
        .wait_for(
            &format!("homeassistant/sensor/bellhop-test/{kitchen}/config"),
            |p| !p.is_empty(),
        )
        .await;
    let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
    validate_sensor_config(&config);
    assert_eq!(config["unit_of_meas"], "°C", "{config}");
    assert_eq!(config["dev_cla"], "temperature", "{config}");
    assert_eq!(config["stat_cla"], "measurement", "{config}");
    // The hall's 27 fired the event, whose action published through the lamp profile.
    let published = observer.wait_for("lamps/hall/set", |p| p == "hall").await;
    assert_eq!(published, "hall");
    let runs = engine.history(Some("lamp"), 1);
    assert!(
        runs[0].ok && runs[0].exchanges[0].url == "(mqtt) lamps/hall/set",
        "{runs:?}"
    );

    // Broken tables are named by key; the others load.
    let bad = Workspace::new();
    bad.write_profile("wild", "version = 1\n[mqtt]\nsubscribe = \"a/#/b\"\n");
    bad.write_profile("plus", "version = 1\n[mqtt]\npublish = \"a/+/set\"\n");
    bad.write_profile("empty", "version = 1\n[mqtt]\nqos = 1\n");
    bad.write_profile(
        "both",
        "version = 1\nlisten = \"/x\"\n[mqtt]\nsubscribe = \"a\"\n",
    );
    bad.write_profile(
        "classy",
        "version = 1\n[mqtt]\nsubscribe = \"a\"\n[devices.device_classes]\nx = \"Temperature!\"\n",
    );
    let set = bad.load();
    assert!(set.profiles.is_empty(), "{:?}", set.profiles.keys());
    for (file, key) in [
        ("wild", "mqtt.subscribe"),
        ("plus", "mqtt.publish"),
        ("empty", "mqtt"),
        ("both", "listen"),
        ("classy", "devices.device_classes.x"),
    ] {
        assert!(
            set.diagnostics
                .iter()
                .any(|d| d.file.ends_with(format!("{file}.toml")) && d.key == key),
            "{file} {key}: {:#?}",
            set.diagnostics
        );
    }
}

/// `mqtts://`: the broker is verified against the configured CA; a broker whose certificate
/// another CA signed is refused, said in the health report, and nothing is published to it.
#[tokio::test]
async fn tls_brokers_are_verified_against_the_configured_ca() {
    if !mosquitto_ready() {
        return;
    }
    let (broker, ca, _) = Broker::start_tls(false);
    let port = broker.port;
    let stub = start_stub().await;
    // The wrong CA first.
    let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let wrong_ca = make_ca(elsewhere.path(), "other");
    let (_ws, wrong) = user_engine(&stub);
    let mut config = bridge_config(port);
    config.tls = Some(bellhop::mqtt::Tls::Ca {
        ca: wrong_ca,
        client: None,
    });
    let _bridge = bellhop::mqtt::start(&wrong, config.clone()).unwrap_or_else(|e| panic!("{e}"));
    let health = bridge_health(&wrong, false).await;
    assert!(health.detail.contains("TLS"), "{health:?}");
    assert!(
        wrong.run("user", "").await.is_ok_and(|r| r.ok),
        "actions go on"
    );
    drop(wrong);
    // The right CA.
    let (_ws, right) = user_engine(&stub);
    config.tls = Some(bellhop::mqtt::Tls::Ca {
        ca: ca.clone(),
        client: None,
    });
    let _bridge = bellhop::mqtt::start(&right, config).unwrap_or_else(|e| panic!("{e}"));
    right
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut options = MqttOptions::new("tls-checker", "127.0.0.1", port);
    options.set_transport(rumqttc::Transport::tls(ca, None, None));
    let got = first_message(options, "bellhop/user/email/state").await;
    assert!(got.contains("ann@example.com"), "{got}");
    bridge_health(&right, true).await;
}

/// MQTT 5: a command's answer goes to the response topic the request names, with its
/// correlation data; states and discovery work as with 3.1.1.
#[tokio::test]
async fn mqtt5_commands_are_answered_on_their_response_topic() {
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start();
    let port = broker.port;
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile("user", &profile_text(&stub.url("/user"), EMAIL_DEVICE));
    let engine = ws.running_engine(&[(
        "hello",
        "[[action]]\nset_global = \"greeting\"\nstring = 'input'\n",
    )]);
    let mut config = bridge_config(port);
    config.protocol = bellhop::mqtt::Protocol::V5;
    let _bridge = bellhop::mqtt::start(&engine, config).unwrap_or_else(|e| panic!("{e}"));
    engine
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(
        rumqttc::v5::MqttOptions::new("requester", "127.0.0.1", port),
        100,
    );
    client
        .subscribe("replies/requester", QoS5::AtLeastOnce)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .subscribe("bellhop/user/email/state", QoS5::AtLeastOnce)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (seen, mut messages) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(Packet5::Publish(p))) => {
                    let _ = seen.send(p);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let properties = PublishProperties {
        response_topic: Some("replies/requester".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"request-42")),
        ..Default::default()
    };
    // Wait for the retained state (the bridge is up), then ask.
    let mut state_seen = false;
    let mut answer = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while answer.is_none() {
        let message = tokio::time::timeout_at(deadline, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("no answer (state seen: {state_seen})"))
            .unwrap_or_else(|| panic!("the requester stopped"));
        let topic = String::from_utf8_lossy(&message.topic).into_owned();
        if topic == "bellhop/user/email/state" && !state_seen {
            state_seen = true;
            client
                .publish_with_properties(
                    "bellhop/event/hello/run",
                    QoS5::AtLeastOnce,
                    false,
                    "from mqtt 5",
                    properties.clone(),
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        } else if topic == "replies/requester" {
            answer = Some(message);
        }
    }
    let answer = answer.unwrap_or_else(|| panic!("no answer"));
    let correlation = answer
        .properties
        .as_ref()
        .and_then(|p| p.correlation_data.clone());
    assert_eq!(correlation.as_deref(), Some(&b"request-42"[..]));
    let body = String::from_utf8_lossy(&answer.payload);
    assert!(body.contains("\"outcome\":\"ok\""), "{body}");
    assert!(engine
        .globals()
        .iter()
        .any(|g| g.name == "greeting" && g.string == "from mqtt 5"));
}

/// A broker that asks for a client certificate: without one the bridge is refused (and says
/// so); with the configured certificate and key it connects and publishes.
#[tokio::test]
async fn client_certificates_are_shown_to_brokers_that_ask() {
    if !mosquitto_ready() {
        return;
    }
    let (broker, ca, (cert, key)) = Broker::start_tls(true);
    let port = broker.port;
    let stub = start_stub().await;
    let (_ws, without) = user_engine(&stub);
    let mut config = bridge_config(port);
    config.tls = Some(bellhop::mqtt::Tls::Ca {
        ca: ca.clone(),
        client: None,
    });
    let _bridge = bellhop::mqtt::start(&without, config.clone()).unwrap_or_else(|e| panic!("{e}"));
    bridge_health(&without, false).await;
    drop(without);
    let (_ws, with) = user_engine(&stub);
    config.tls = Some(bellhop::mqtt::Tls::Ca {
        ca,
        client: Some((cert, bellhop::secret::Secret::new(key))),
    });
    let _bridge = bellhop::mqtt::start(&with, config).unwrap_or_else(|e| panic!("{e}"));
    bridge_health(&with, true).await;
}

/// Commands obey `mqtt.allow`, and `mqtt.commands = false` takes none at all.
#[tokio::test]
async fn commands_obey_the_allow_list_and_can_be_turned_off() {
    if !mosquitto_ready() {
        return;
    }
    let broker = Broker::start();
    let port = broker.port;
    let ws = Workspace::new();
    let set = "[[action]]\nset_global = \"ran\"\nstring = 'input'\n";
    let engine = ws.running_engine(&[("allowed", set), ("other", set)]);
    let mut config = bridge_config(port);
    config.allow = vec!["allowed".into()];
    let _bridge = bellhop::mqtt::start(&engine, config).unwrap_or_else(|e| panic!("{e}"));
    bridge_health(&engine, true).await;
    let observer = Observer::connect(port, "allow-observer", &["bellhop/#"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for name in ["other", "allowed"] {
        observer
            .client
            .publish(
                format!("bellhop/event/{name}/run"),
                QoS::AtLeastOnce,
                false,
                name,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let refused = observer
        .wait_for("bellhop/event/other/result", |p| !p.is_empty())
        .await;
    assert!(refused.contains("not in mqtt.allow"), "{refused}");
    observer
        .wait_for("bellhop/event/allowed/result", |p| {
            p.contains("\"outcome\":\"ok\"")
        })
        .await;
    assert!(engine
        .globals()
        .iter()
        .any(|g| g.name == "ran" && g.string == "allowed"));

    // Commands off: the bridge does not even listen.
    let ws = Workspace::new();
    let quiet = ws.running_engine(&[("allowed", set)]);
    let mut config = bridge_config(port);
    config.client_id = "quiet".into();
    config.base_topic = "quiet".into();
    config.commands = false;
    let _bridge = bellhop::mqtt::start(&quiet, config).unwrap_or_else(|e| panic!("{e}"));
    bridge_health(&quiet, true).await;
    let observer = Observer::connect(port, "quiet-observer", &["quiet/#"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    observer
        .client
        .publish("quiet/event/allowed/run", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(observer.get("quiet/event/allowed/result").is_none());
    assert!(quiet.globals().is_empty());
}
