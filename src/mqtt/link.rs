//! The broker connection behind one small interface, for MQTT 3.1.1 and MQTT 5 (rumqttc's two
//! clients): connecting with the bridge's options (login, last will, TLS, packet limit, no
//! Nagle), publishing and subscribing without waiting, answering a command on an MQTT 5
//! response topic with its correlation data, and what the connection says, in the bridge's
//! terms.

use bytes::Bytes;

use super::{BridgeConfig, Tls, MAX_PACKET_BYTES};

/// Which MQTT the bridge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V311,
    V5,
}

/// The sending side of the connection.
#[derive(Clone)]
pub enum Link {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The connection's event loop.
pub enum Poller {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// A message from the broker.
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    /// MQTT 5: where the sender wants the answer, and what to send back with it.
    pub response_topic: Option<String>,
    pub correlation: Option<Bytes>,
}

/// What one poll of the connection brought.
pub enum Happened {
    Connected,
    Message(Message),
    Nothing,
    /// The connection failed (it is tried again on the next poll); why, for people.
    Failed(String),
}

fn qos4(qos: u8) -> rumqttc::QoS {
    match qos {
        0 => rumqttc::QoS::AtMostOnce,
        2 => rumqttc::QoS::ExactlyOnce,
        _ => rumqttc::QoS::AtLeastOnce,
    }
}

fn qos5(qos: u8) -> rumqttc::v5::mqttbytes::QoS {
    match qos {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        2 => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
        _ => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
    }
}

fn transport(tls: &Option<Tls>) -> Option<rumqttc::Transport> {
    match tls {
        Some(Tls::SystemRoots) => Some(rumqttc::Transport::tls_with_default_config()),
        Some(Tls::Ca { ca, client }) => Some(rumqttc::Transport::tls(
            ca.clone(),
            client
                .as_ref()
                .map(|(cert, key)| (cert.clone(), key.expose().as_bytes().to_vec())),
            None,
        )),
        None => None,
    }
}

/// Sets up the connection (it connects on the first poll).
pub fn connect(config: &BridgeConfig) -> (Link, Poller) {
    let password = config
        .password
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    let will_topic = config.bridge_state_topic();
    match config.protocol {
        Protocol::V311 => {
            let mut options =
                rumqttc::MqttOptions::new(&config.client_id, &config.host, config.port);
            options.set_keep_alive(config.keepalive);
            options.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
            options.set_clean_session(true);
            if let Some(user) = &config.username {
                options.set_credentials(user, password);
            }
            if let Some(transport) = transport(&config.tls) {
                options.set_transport(transport);
            }
            options.set_last_will(rumqttc::LastWill::new(
                will_topic,
                "offline",
                rumqttc::QoS::AtLeastOnce,
                true,
            ));
            let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 4096);
            // Commands are answered at once, not when Nagle's algorithm gets round to it.
            let mut network = eventloop.network_options();
            network.set_tcp_nodelay(true);
            eventloop.set_network_options(network);
            (Link::V4(client), Poller::V4(Box::new(eventloop)))
        }
        Protocol::V5 => {
            let mut options =
                rumqttc::v5::MqttOptions::new(&config.client_id, &config.host, config.port);
            options.set_keep_alive(config.keepalive);
            // MQTT 5 tells the broker: it does not send larger packets at all.
            options.set_max_packet_size(u32::try_from(MAX_PACKET_BYTES).ok());
            options.set_clean_start(true);
            if let Some(user) = &config.username {
                options.set_credentials(user, password);
            }
            if let Some(transport) = transport(&config.tls) {
                options.set_transport(transport);
            }
            options.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                will_topic,
                "offline",
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                true,
                None,
            ));
            let mut network = options.network_options();
            network.set_tcp_nodelay(true);
            options.set_network_options(network);
            let (client, eventloop) = rumqttc::v5::AsyncClient::new(options, 4096);
            (Link::V5(client), Poller::V5(Box::new(eventloop)))
        }
    }
}

/// A request the client could not take (its queue full, or the connection's task gone).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(String);

impl LinkError {
    fn of(error: impl std::fmt::Display) -> LinkError {
        LinkError(error.to_string())
    }
}

impl Link {
    /// Hands a message to the connection without waiting; `Err` when its queue is full.
    pub fn try_publish(
        &self,
        topic: impl Into<String>,
        qos: u8,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), LinkError> {
        let payload: Vec<u8> = payload.into();
        match self {
            Link::V4(client) => client
                .try_publish(topic, qos4(qos), retain, payload)
                .map_err(LinkError::of),
            Link::V5(client) => client
                .try_publish(topic, qos5(qos), retain, payload)
                .map_err(LinkError::of),
        }
    }

    /// An answer: on MQTT 5 with the request's correlation data.
    pub async fn answer(
        &self,
        topic: String,
        qos: u8,
        payload: String,
        correlation: Option<Bytes>,
    ) -> Result<(), LinkError> {
        match self {
            Link::V4(client) => client
                .publish(topic, qos4(qos), false, payload)
                .await
                .map_err(LinkError::of),
            Link::V5(client) => {
                let properties = rumqttc::v5::mqttbytes::v5::PublishProperties {
                    correlation_data: correlation,
                    content_type: Some("application/json".into()),
                    ..Default::default()
                };
                client
                    .publish_with_properties(topic, qos5(qos), false, payload, properties)
                    .await
                    .map_err(LinkError::of)
            }
        }
    }

    pub fn try_subscribe(&self, filter: &str) -> Result<(), LinkError> {
        match self {
            Link::V4(client) => client
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(LinkError::of),
            Link::V5(client) => client
                .try_subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(LinkError::of),
        }
    }

    pub fn try_disconnect(&self) {
        let _ = match self {
            Link::V4(client) => client.try_disconnect().map_err(LinkError::of),
            Link::V5(client) => client.try_disconnect().map_err(LinkError::of),
        };
    }
}

impl Poller {
    pub async fn poll(&mut self) -> Happened {
        match self {
            Poller::V4(eventloop) => match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => Happened::Connected,
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    Happened::Message(Message {
                        topic: p.topic,
                        payload: p.payload,
                        retain: p.retain,
                        response_topic: None,
                        correlation: None,
                    })
                }
                Ok(_) => Happened::Nothing,
                Err(error) => Happened::Failed(describe4(&error)),
            },
            Poller::V5(eventloop) => match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(
                    _,
                ))) => Happened::Connected,
                Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(
                    p,
                ))) => {
                    let (response_topic, correlation) = p
                        .properties
                        .map(|props| (props.response_topic, props.correlation_data))
                        .unwrap_or_default();
                    Happened::Message(Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload,
                        retain: p.retain,
                        response_topic,
                        correlation,
                    })
                }
                Ok(_) => Happened::Nothing,
                Err(error) => Happened::Failed(describe5(&error)),
            },
        }
    }
}

const REFUSED_LOGIN: &str = "the broker refused the user name or password";

fn tls_failure(error: &dyn std::fmt::Display) -> String {
    format!("TLS failed (is mqtt.ca_file the broker's CA?): {error}")
}

fn describe4(error: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode, ConnectionError};
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => REFUSED_LOGIN.into(),
        ConnectionError::ConnectionRefused(other) => {
            format!("the broker refused the connection: {other:?}")
        }
        ConnectionError::Tls(error) => tls_failure(error),
        other => other.to_string(),
    }
}

fn describe5(error: &rumqttc::v5::ConnectionError) -> String {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode;
    use rumqttc::v5::ConnectionError;
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => REFUSED_LOGIN.into(),
        ConnectionError::ConnectionRefused(other) => {
            format!("the broker refused the connection: {other:?}")
        }
        ConnectionError::Tls(error) => tls_failure(error),
        other => other.to_string(),
    }
}
