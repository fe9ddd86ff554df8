//! Resolving an MQTT profile's `[mqtt]` table.

use super::*;

pub(super) fn resolve_mqtt(raw: &RawMqtt, c: &mut Collector<'_>) -> Option<MqttSpec> {
    if raw.subscribe.is_none() && raw.publish.is_none() {
        c.error(
            "mqtt",
            "an MQTT profile needs `subscribe` (a topic filter), `publish` (a topic), or both",
        );
        return None;
    }
    let subscribe = raw.subscribe.clone();
    if let Some(filter) = &subscribe {
        if filter.is_empty() || filter.len() > 1024 || !rumqttc::valid_filter(filter) {
            c.error(
                "mqtt.subscribe",
                format!("`{filter}` is not an MQTT topic filter (`+` stands for one level, `#` for the rest, at the end)"),
            );
        }
    }
    let publish = match &raw.publish {
        Some(source) => {
            let compiled = template(c, "mqtt.publish", source);
            let wild = compiled.as_ref().is_some_and(|t| {
                t.parts().iter().any(|part| {
                    matches!(part, crate::expr::TemplatePart::Text(text) if text.contains(['+', '#']))
                })
            });
            if wild || source.is_empty() {
                c.error(
                    "mqtt.publish",
                    "a topic to publish to is not empty and has no `+` or `#` (those are for subscribing)",
                );
            }
            compiled
        }
        None => None,
    };
    let qos = raw.qos.unwrap_or(1);
    if qos > 2 {
        c.error("mqtt.qos", "qos is 0, 1 or 2");
    }
    Some(MqttSpec {
        subscribe,
        publish,
        qos,
        retain: raw.retain.unwrap_or(false),
    })
}
