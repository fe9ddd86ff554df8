//! OAuth 1.0a (RFC 5849): the signature base string, the four signature methods (HMAC-SHA1,
//! HMAC-SHA256, RSA-SHA1, PLAINTEXT), the `Authorization: OAuth` header of every signed
//! request, and the three-legged flow (temporary credentials, the user's authorization, token
//! credentials with the verifier).
//!
//! HMAC comes from the `hmac`/`sha1`/`sha2` crates and RSA from `rsa`; nothing here computes a
//! digest by hand.

use std::time::Duration;

use hmac::Mac;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::flow::OAuthError;
use crate::secret::Secret;

/// RFC 5849 §3.6: everything but ALPHA, DIGIT, `-`, `.`, `_`, `~` is percent-encoded.
const RFC5849: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, RFC5849).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SignatureMethod {
    #[serde(rename = "HMAC-SHA1")]
    HmacSha1,
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
    #[serde(rename = "RSA-SHA1")]
    RsaSha1,
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
}

impl SignatureMethod {
    pub fn parse(text: &str) -> Option<SignatureMethod> {
        match text.trim().to_ascii_uppercase().as_str() {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            "RSA-SHA1" => Some(SignatureMethod::RsaSha1),
            "PLAINTEXT" => Some(SignatureMethod::Plaintext),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
            SignatureMethod::RsaSha1 => "RSA-SHA1",
            SignatureMethod::Plaintext => "PLAINTEXT",
        }
    }
}

/// The client's credentials and, once known, the token's.
#[derive(Clone)]
pub struct Signer {
    pub consumer_key: String,
    pub consumer_secret: Option<Secret>,
    /// The client's RSA private key (PEM, PKCS#1 or PKCS#8), for RSA-SHA1.
    pub rsa_key: Option<Secret>,
    pub method: SignatureMethod,
    pub realm: Option<String>,
}

/// §3.4.1: method `&` base URI `&` normalized parameters, each part encoded.
pub fn base_string(method: &str, url: &url::Url, params: &[(String, String)]) -> String {
    // §3.4.1.2: scheme and host in lower case, the default port left out, no query or fragment.
    let mut base = format!(
        "{}://{}",
        url.scheme().to_ascii_lowercase(),
        url.host_str().unwrap_or_default().to_ascii_lowercase()
    );
    if let Some(port) = url.port() {
        base.push_str(&format!(":{port}"));
    }
    base.push_str(url.path());
    // §3.4.1.3.2: every parameter encoded, sorted by name then value, joined.
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(&base),
        encode(&normalized)
    )
}

/// The parameters of a request that are signed besides the protocol's: the query's, and a
/// form body's (§3.4.1.3.1).
pub fn request_parameters(url: &url::Url, form_body: Option<&str>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if let Some(body) = form_body {
        params.extend(url::form_urlencoded::parse(body.as_bytes()).into_owned());
    }
    params
}

impl Signer {
    /// The signature of a base string (§3.4.2–§3.4.4).
    pub fn sign(&self, base: &str, token_secret: Option<&Secret>) -> Result<String, OAuthError> {
        use base64::Engine;
        let key = format!(
            "{}&{}",
            encode(
                self.consumer_secret
                    .as_ref()
                    .map(Secret::expose)
                    .unwrap_or_default()
            ),
            encode(token_secret.map(Secret::expose).unwrap_or_default())
        );
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match self.method {
            SignatureMethod::Plaintext => Ok(key),
            SignatureMethod::HmacSha1 => {
                let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
                    .map_err(|e| OAuthError::Parse(format!("cannot sign: {e}")))?;
                mac.update(base.as_bytes());
                Ok(b64(&mac.finalize().into_bytes()))
            }
            SignatureMethod::HmacSha256 => {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                    .map_err(|e| OAuthError::Parse(format!("cannot sign: {e}")))?;
                mac.update(base.as_bytes());
                Ok(b64(&mac.finalize().into_bytes()))
            }
            SignatureMethod::RsaSha1 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                use rsa::signature::{SignatureEncoding, Signer as _};
                let pem = self.rsa_key.as_ref().ok_or_else(|| {
                    OAuthError::Parse("RSA-SHA1 needs the client's RSA private key".into())
                })?;
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem.expose())
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem.expose()))
                    .map_err(|_| {
                        OAuthError::Parse(
                            "the RSA private key is not a PEM PKCS#8 or PKCS#1 key".into(),
                        )
                    })?;
                let signing = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key);
                let signature = signing
                    .try_sign(base.as_bytes())
                    .map_err(|e| OAuthError::Parse(format!("cannot sign: {e}")))?;
                Ok(b64(&signature.to_bytes()))
            }
        }
    }

    /// The protocol parameters of a request (without the signature), `extra` being
    /// `oauth_callback`, `oauth_verifier` or `oauth_token` as the step needs.
    fn protocol_parameters(
        &self,
        extra: &[(&str, &str)],
        nonce: &str,
        timestamp: u64,
    ) -> Vec<(String, String)> {
        let mut params = vec![
            ("oauth_consumer_key".to_string(), self.consumer_key.clone()),
            ("oauth_nonce".to_string(), nonce.to_string()),
            (
                "oauth_signature_method".to_string(),
                self.method.as_str().to_string(),
            ),
            ("oauth_timestamp".to_string(), timestamp.to_string()),
            ("oauth_version".to_string(), "1.0".to_string()),
        ];
        for (name, value) in extra {
            params.push((name.to_string(), value.to_string()));
        }
        params
    }

    /// The `Authorization: OAuth …` header of a request (§3.5.1), with this nonce and time.
    #[allow(clippy::too_many_arguments)]
    pub fn header_at(
        &self,
        method: &str,
        url: &url::Url,
        form_body: Option<&str>,
        token: Option<(&str, &Secret)>,
        extra: &[(&str, &str)],
        nonce: &str,
        timestamp: u64,
    ) -> Result<String, OAuthError> {
        let mut extra: Vec<(&str, &str)> = extra.to_vec();
        if let Some((token, _)) = token {
            extra.push(("oauth_token", token));
        }
        let protocol = self.protocol_parameters(&extra, nonce, timestamp);
        let mut all = request_parameters(url, form_body);
        all.extend(protocol.iter().cloned());
        let base = base_string(method, url, &all);
        let signature = self.sign(&base, token.map(|(_, secret)| secret))?;
        let mut parts = Vec::new();
        if let Some(realm) = &self.realm {
            parts.push(format!("realm=\"{}\"", encode(realm)));
        }
        for (name, value) in protocol
            .iter()
            .chain(std::iter::once(&("oauth_signature".to_string(), signature)))
        {
            parts.push(format!("{}=\"{}\"", encode(name), encode(value)));
        }
        Ok(format!("OAuth {}", parts.join(", ")))
    }

    /// The header with a fresh nonce and the current time.
    pub fn header(
        &self,
        method: &str,
        url: &url::Url,
        form_body: Option<&str>,
        token: Option<(&str, &Secret)>,
        extra: &[(&str, &str)],
    ) -> Result<String, OAuthError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        // Alphanumeric: some servers (oauthlib among them) take nothing else in a nonce.
        let nonce: String = crate::secret::random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        self.header_at(method, url, form_body, token, extra, &nonce, timestamp)
    }
}

/// A token and its secret: temporary credentials, or token credentials with the provider's
/// other fields (Garmin's user id, say).
#[derive(Clone)]
pub struct Credentials {
    pub token: String,
    pub secret: Secret,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

const ANSWER_LIMIT: usize = 64 * 1024;

/// POSTs a signed, empty request and reads the form-encoded credentials it answers.
async fn credentials_request(
    http: &reqwest::Client,
    signer: &Signer,
    url: &url::Url,
    token: Option<(&str, &Secret)>,
    extra: &[(&str, &str)],
    timeout: Duration,
) -> Result<Credentials, OAuthError> {
    let header = signer.header("POST", url, None, token, extra)?;
    let mut value = reqwest::header::HeaderValue::from_str(&header)
        .map_err(|_| OAuthError::Parse("the OAuth header cannot be sent".into()))?;
    value.set_sensitive(true);
    let response = http
        .post(url.clone())
        .header(reqwest::header::AUTHORIZATION, value)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .timeout(timeout)
        .send()
        .await
        .map_err(OAuthError::transport)?;
    let status = response.status().as_u16();
    let bytes = super::flow::read_at_most(response, ANSWER_LIMIT).await?;
    let body = String::from_utf8_lossy(&bytes);
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.trim().as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if !(200..300).contains(&status) {
        // The provider's own words: RFC 6749-style `error`/`error_description` (oauthlib), the
        // problem-reporting extension's `oauth_problem`/`oauth_problem_advice`, or plain text.
        let plain = {
            let text = body.trim();
            (!text.is_empty() && !text.contains('=') && !text.starts_with('<'))
                .then(|| text.to_string())
        };
        let error = field("error")
            .or_else(|| field("oauth_problem"))
            .unwrap_or_else(|| format!("HTTP {status}"));
        let description = field("error_description")
            .or_else(|| field("oauth_problem_advice"))
            .or(plain);
        return Err(OAuthError::Server {
            error: error.chars().take(64).collect(),
            description: description.map(|d| d.chars().take(200).collect()),
        });
    }
    let (Some(token), Some(secret)) = (field("oauth_token"), field("oauth_token_secret")) else {
        return Err(OAuthError::Parse(
            "the answer has no oauth_token and oauth_token_secret".into(),
        ));
    };
    let extra = fields
        .iter()
        .filter(|(k, _)| k != "oauth_token" && k != "oauth_token_secret")
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    Ok(Credentials {
        token,
        secret: Secret::new(secret),
        extra,
    })
}

/// Step 1 (§2.1): temporary credentials, with the callback the provider sends the user back to.
pub async fn temporary_credentials(
    http: &reqwest::Client,
    signer: &Signer,
    url: &url::Url,
    callback: &str,
    timeout: Duration,
) -> Result<Credentials, OAuthError> {
    let credentials = credentials_request(
        http,
        signer,
        url,
        None,
        &[("oauth_callback", callback)],
        timeout,
    )
    .await?;
    if credentials
        .extra
        .get("oauth_callback_confirmed")
        .and_then(|v| v.as_str())
        != Some("true")
    {
        return Err(OAuthError::Parse(
            "the provider did not confirm the callback (oauth_callback_confirmed): it does not speak OAuth 1.0a".into(),
        ));
    }
    Ok(credentials)
}

/// Step 3 (§2.3): token credentials for the verifier the callback brought.
pub async fn token_credentials(
    http: &reqwest::Client,
    signer: &Signer,
    url: &url::Url,
    temporary: (&str, &Secret),
    verifier: &str,
    timeout: Duration,
) -> Result<Credentials, OAuthError> {
    credentials_request(
        http,
        signer,
        url,
        Some(temporary),
        &[("oauth_verifier", verifier)],
        timeout,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn printer(method: SignatureMethod) -> Signer {
        Signer {
            consumer_key: "dpf43f3p2l4k3l03".into(),
            consumer_secret: Some(Secret::new("kd94hf93k423kf44")),
            rsa_key: None,
            method,
            realm: Some("Photos".into()),
        }
    }

    /// The value of `oauth_signature` in a header, decoded.
    fn signature_of(header: &str) -> String {
        let encoded = header
            .split(", ")
            .find_map(|part| part.strip_prefix("oauth_signature=\""))
            .map(|v| v.trim_end_matches('"'))
            .unwrap_or_default();
        percent_encoding::percent_decode_str(encoded)
            .decode_utf8_lossy()
            .into_owned()
    }

    /// RFC 5849 §3.4.1.1's worked base string.
    #[test]
    fn the_rfc_5849_base_string_example() {
        let request = url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b");
        let mut params = request_parameters(&request, Some("c2&a3=2+q"));
        for (k, v) in [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ] {
            params.push((k.into(), v.into()));
        }
        assert_eq!(
            base_string("POST", &request, &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    /// RFC 5849 §1.2: the three signed requests of the printing example (HMAC-SHA1; the
    /// example sends no oauth_version, so it is signed here without one).
    #[test]
    fn the_rfc_5849_printing_example_signatures() {
        let signer = printer(SignatureMethod::HmacSha1);
        let sign = |method: &str,
                    url_text: &str,
                    extra: &[(&str, &str)],
                    token: Option<(&str, &str)>,
                    nonce: &str,
                    timestamp: &str| {
            let request = url(url_text);
            let mut params = request_parameters(&request, None);
            for (k, v) in [
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", timestamp),
                ("oauth_nonce", nonce),
            ]
            .iter()
            .chain(extra)
            {
                params.push((k.to_string(), v.to_string()));
            }
            if let Some((token, _)) = token {
                params.push(("oauth_token".into(), token.into()));
            }
            let base = base_string(method, &request, &params);
            let secret = token.map(|(_, s)| Secret::new(s));
            signer
                .sign(&base, secret.as_ref())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(
            sign(
                "POST",
                "https://photos.example.net/initiate",
                &[("oauth_callback", "http://printer.example.com/ready")],
                None,
                "wIjqoS",
                "137131200"
            ),
            "74KNZJeDHnMBp0EMJ9ZHt/XKycU="
        );
        assert_eq!(
            sign(
                "POST",
                "https://photos.example.net/token",
                &[("oauth_verifier", "hfdp7dh39dks9884")],
                Some(("hh5s93j4hdidpola", "hdhd0244k9j7ao03")),
                "walatlh",
                "137131201"
            ),
            "gKgrFCywp7rO0OXSjdot/IHF7IU="
        );
        assert_eq!(
            sign(
                "GET",
                "http://photos.example.net/photos?file=vacation.jpg&size=original",
                &[],
                Some(("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00")),
                "chapoH",
                "137131202"
            ),
            "MdpQcU8iPSUjWoN/UDMsK2sui9I="
        );
    }

    #[test]
    fn headers_carry_the_protocol_parameters_and_plaintext_is_the_key() {
        let secret = Secret::new("pfkkdhi9sl3r4s00");
        let photo_header = |method: SignatureMethod| {
            printer(method)
                .header_at(
                    "GET",
                    &url("http://photos.example.net/photos"),
                    None,
                    Some(("nnch734d00sl2jdk", &secret)),
                    &[],
                    "n",
                    1,
                )
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let header = photo_header(SignatureMethod::Plaintext);
        assert!(
            header.starts_with("OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\""),
            "{header}"
        );
        assert!(
            header.contains("oauth_version=\"1.0\"")
                && header.contains("oauth_token=\"nnch734d00sl2jdk\""),
            "{header}"
        );
        assert_eq!(signature_of(&header), "kd94hf93k423kf44&pfkkdhi9sl3r4s00");
        let sha256 = photo_header(SignatureMethod::HmacSha256);
        assert_eq!(
            signature_of(&sha256).len(),
            44,
            "a base64 SHA-256 MAC: {sha256}"
        );
        let rsa = Signer {
            rsa_key: Some(Secret::new("not a key")),
            ..printer(SignatureMethod::RsaSha1)
        };
        assert!(rsa.sign("x", None).is_err());
    }
}
