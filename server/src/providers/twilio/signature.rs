//! Twilio's `X-Twilio-Signature`: computing it and checking it on incoming
//! webhooks (form POSTs, GETs, and JSON bodies carrying `bodySHA256`).
//!
//! The signed string is the URL Twilio requested, byte for byte, followed by
//! the form parameters. The caller hands us that URL as received
//! (`PUBLIC_BASE_URL` + raw path + raw query); nothing here parses and
//! re-serialises it, because any change of escaping (`'`, `+`, `%20`…) would
//! change the bytes Twilio signed. SignalWire signs with the same algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::providers::{Params, SignatureError, SignatureVariant, WebhookRequest};

type HmacSha1 = Hmac<Sha1>;

/// base64(HMAC-SHA1(auth_token, url + sorted params)). `params` are the
/// decoded form pairs in received order (repeated keys kept).
///
/// Parameters are ordered by name (byte order), then by value within a name,
/// and an exact repeat of a `name=value` pair counts once: Twilio's helper
/// libraries sign each name's *distinct* values, and the duplicate-value
/// vector (`Digits=[5678,1234,1234]`) only matches that way.
pub fn sign(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut mac = new_mac(auth_token);
    mac.update(url.as_bytes());
    for (name, value) in canonical_params(params) {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// Checks `X-Twilio-Signature` for a form POST (or a GET with params = &[]).
/// `url` is the full URL Twilio requested: PUBLIC_BASE_URL + raw path + raw
/// query, exactly as received.
///
/// Accepts the signature computed over the URL as given, and over the variant
/// with the default port (:443 for https, :80 for http) added when absent /
/// removed when present — as Twilio's libraries do, because Twilio's own
/// signing is inconsistent about it. A non-default port is only ever used as
/// given (stricter than the libraries, which strip any port). Constant-time
/// comparison. Fails closed: an absent or blank header is `Missing`.
pub fn verify(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    verify_form(auth_token, url, params, signature, &[]).map(|_| ())
}

/// [`verify`], saying which form matched; when neither URL variant matches
/// and the form holds parameters named in `added_after_signing` (which the
/// provider adds after computing the signature), the form without them is
/// tried too. Nothing else is relaxed.
pub(crate) fn verify_form(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
    added_after_signing: &[&str],
) -> Result<SignatureVariant, SignatureError> {
    let given = present(signature)?;
    if let Some(variant) = matching_url_variant(auth_token, url, params, given) {
        return Ok(variant);
    }
    let is_added = |name: &str| added_after_signing.contains(&name);
    if params.iter().any(|(name, _)| is_added(name)) {
        let signed: Vec<(String, String)> = params
            .iter()
            .filter(|(name, _)| !is_added(name))
            .cloned()
            .collect();
        if matching_url_variant(auth_token, url, &signed, given).is_some() {
            return Ok(SignatureVariant::WithoutAddedParameters);
        }
    }
    Err(SignatureError::Mismatch)
}

/// For JSON bodies: the URL carries `bodySHA256=<hex sha256 of raw body>`;
/// verify the URL signature (no params) AND that the body hash matches
/// (constant time). Missing `bodySHA256` → `Mismatch`.
pub(crate) fn verify_json(
    auth_token: &[u8],
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<SignatureVariant, SignatureError> {
    let given = present(signature)?;
    let variant = matching_url_variant(auth_token, url, &[], given);
    // Both checks always run, so timing does not tell which one failed.
    let body_ok = body_hash_matches(url, body);
    match variant {
        Some(variant) if bool::from(body_ok) => Ok(variant),
        _ => Err(SignatureError::Mismatch),
    }
}

/// Checks a whole request signed with `key` (`signature` is the header's
/// value) whose form is `params`: JSON bodies are signed through a hash in
/// the URL instead of the parameters.
pub(crate) fn verify_request(
    key: &[u8],
    request: &WebhookRequest<'_>,
    params: &Params,
    signature: Option<&str>,
    added_after_signing: &[&str],
) -> Result<SignatureVariant, SignatureError> {
    if request.url.contains("bodySHA256=") {
        verify_json(key, request.url, request.body, signature)
    } else {
        verify_form(
            key,
            request.url,
            params.pairs(),
            signature,
            added_after_signing,
        )
    }
}

/// The form of a request as the Twilio family posts it: JSON bodies carry
/// no parameters (their URL signs a hash of the body).
pub(crate) fn request_params(request: &WebhookRequest<'_>) -> Params {
    if request.url.contains("bodySHA256=") {
        Params::default()
    } else {
        Params::from_form(request.body)
    }
}

fn new_mac(auth_token: &[u8]) -> HmacSha1 {
    // HMAC takes keys of any length (long keys are hashed, short ones
    // padded), so this cannot fail whatever the token.
    HmacSha1::new_from_slice(auth_token).expect("HMAC accepts keys of any length")
}

/// The header value, or `Missing` when absent or blank: an empty header
/// carries no signature at all, so it is reported the same as no header.
fn present(signature: Option<&str>) -> Result<&str, SignatureError> {
    match signature.map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(SignatureError::Missing),
    }
}

/// Sorted by name then value (tuple order, i.e. by name first — never by the
/// concatenation `name+value`, which would put `ReasonConferenceEnded` before
/// `Reason`), with exact duplicate pairs dropped.
fn canonical_params(params: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Which URL `given` is the signature of: the URL as given, or its
/// default-port variant. Both candidates are always computed and compared.
fn matching_url_variant(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> Option<SignatureVariant> {
    let as_sent = sign(auth_token, url, params)
        .as_bytes()
        .ct_eq(given.as_bytes());
    let default_port = default_port_variant(url).map_or(Choice::from(0), |variant| {
        sign(auth_token, &variant, params)
            .as_bytes()
            .ct_eq(given.as_bytes())
    });
    if bool::from(as_sent) {
        Some(SignatureVariant::AsSent)
    } else if bool::from(default_port) {
        Some(SignatureVariant::DefaultPort)
    } else {
        None
    }
}

/// The URL with the scheme's default port toggled: added when the authority
/// has no port, removed when it has exactly the default one. `None` for a
/// non-default port, an unknown scheme, or something that is not an absolute
/// URL. Edits the authority text in place so the path and query keep their
/// exact bytes.
pub(crate) fn default_port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return None;
    };
    let prefix_len = scheme.len() + "://".len();
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    // Userinfo may itself contain ':'; the host starts after the last '@'.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    // In an IPv6 literal (`[::1]:443`) only a ':' after the ']' is a port.
    let port_colon = host_port
        .rfind(':')
        .filter(|&colon| !host_port[colon..].contains(']'));
    let authority_end = prefix_len + authority_len;
    match port_colon {
        Some(colon) if &host_port[colon + 1..] == default_port => {
            let colon_at = prefix_len + host_start + colon;
            Some(format!("{}{}", &url[..colon_at], &url[authority_end..]))
        }
        // A non-default (or empty) port is only ever used as given.
        Some(_) => None,
        None => Some(format!(
            "{}:{}{}",
            &url[..authority_end],
            default_port,
            &url[authority_end..]
        )),
    }
}

/// Whether the URL's single `bodySHA256` query value is the hex SHA-256 of
/// `body`. Absent, repeated or malformed → no match (fail closed).
fn body_hash_matches(url: &str, body: &[u8]) -> Choice {
    let without_fragment = url.split_once('#').map_or(url, |(before, _)| before);
    let query = without_fragment
        .split_once('?')
        .map_or("", |(_, query)| query);
    let mut values = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value);
    let (Some(claimed), None) = (values.next(), values.next()) else {
        return Choice::from(0);
    };
    // Decoding rather than comparing hex text accepts either letter case.
    let Ok(claimed) = hex::decode(claimed.as_bytes()) else {
        return Choice::from(0);
    };
    let actual = Sha256::digest(body);
    actual.as_slice().ct_eq(&claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The base params of Twilio's test suite, deliberately not in sorted
    /// order.
    fn base_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    fn with_port(url: &str, port: &str) -> String {
        url.replacen(".com", &format!(".com:{port}"), 1)
    }

    fn http(url: &str) -> String {
        url.replacen("https://", "http://", 1)
    }

    // --- Vectors from Twilio's own test suites ---

    #[test]
    fn vector_as_given() {
        let params = base_params();
        assert_eq!(sign(TOKEN, URL, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(
            verify(TOKEN, URL, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Ok(())
        );
    }

    #[test]
    fn vector_https_default_port() {
        let params = base_params();
        let url_443 = with_port(URL, "443");
        assert_eq!(
            sign(TOKEN, &url_443, &params),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        // Received without a port, signed with :443 → accepted.
        assert_eq!(
            verify(TOKEN, URL, &params, Some("kvajT1Ptam85bY51eRf/AJRuM3w=")),
            Ok(())
        );
        // Received with :443, signed without → accepted.
        assert_eq!(
            verify(
                TOKEN,
                &url_443,
                &params,
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                TOKEN,
                &url_443,
                &params,
                Some("kvajT1Ptam85bY51eRf/AJRuM3w=")
            ),
            Ok(())
        );
    }

    #[test]
    fn vector_http_default_port() {
        let params = base_params();
        let url_http = http(URL);
        let url_80 = with_port(&url_http, "80");
        assert_eq!(
            sign(TOKEN, &url_80, &params),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        assert_eq!(
            verify(
                TOKEN,
                &url_http,
                &params,
                Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                TOKEN,
                &url_80,
                &params,
                Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")
            ),
            Ok(())
        );
        let without_port = sign(TOKEN, &url_http, &params);
        assert_eq!(verify(TOKEN, &url_80, &params, Some(&without_port)), Ok(()));
    }

    #[test]
    fn vector_http_non_default_port() {
        let params = base_params();
        let url_1234 = with_port(&http(URL), "1234");
        assert_eq!(
            sign(TOKEN, &url_1234, &params),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        );
        assert_eq!(
            verify(
                TOKEN,
                &url_1234,
                &params,
                Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
            ),
            Ok(())
        );
    }

    #[test]
    fn non_default_port_is_only_used_as_given() {
        let params = base_params();
        // A signature over the port-less URL must not validate a request
        // that came in on :1234 (the libraries would strip it; we do not).
        let without_port = sign(TOKEN, &http(URL), &params);
        let url_1234 = with_port(&http(URL), "1234");
        assert_eq!(
            verify(TOKEN, &url_1234, &params, Some(&without_port)),
            Err(SignatureError::Mismatch)
        );
        // …nor the https vector on https://…:1234.
        assert_eq!(
            verify(
                TOKEN,
                &with_port(URL, "1234"),
                &params,
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Err(SignatureError::Mismatch)
        );
        // And the :1234 signature does not validate the port-less URL.
        assert_eq!(
            verify(
                TOKEN,
                &http(URL),
                &params,
                Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn vector_duplicate_values() {
        // The vector only matches when the repeated `Digits=1234` counts
        // once: each name's distinct values, sorted.
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(sign(TOKEN, URL, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        assert_eq!(
            verify(TOKEN, URL, &params, Some("IK+Dwps556ElfBT0I3Rgjkr1wJU=")),
            Ok(())
        );
    }

    #[test]
    fn vector_sorted_by_name_not_concatenation() {
        let mut params = base_params();
        params.extend(pairs(&[
            ("ReasonConferenceEnded", "test"),
            ("Reason", "Participant"),
        ]));
        assert_eq!(sign(TOKEN, URL, &params), "vOEb5UThFn24KEfnOFLQY2AE5FY=");
        assert_eq!(
            sign(TOKEN, &http(URL), &params),
            "n2xBNyzSW7rfYStDtOFiFMv7qNo="
        );
        assert_eq!(
            verify(TOKEN, URL, &params, Some("vOEb5UThFn24KEfnOFLQY2AE5FY=")),
            Ok(())
        );
        assert_eq!(
            verify(
                TOKEN,
                &http(URL),
                &params,
                Some("n2xBNyzSW7rfYStDtOFiFMv7qNo=")
            ),
            Ok(())
        );
    }

    const BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    fn url_with_body_hash() -> String {
        format!("{URL}&bodySHA256={BODY_HASH}")
    }

    #[test]
    fn vector_json_body() {
        let url = url_with_body_hash();
        assert_eq!(hex::encode(Sha256::digest(BODY)), BODY_HASH);
        assert_eq!(sign(TOKEN, &url, &[]), "a9nBmqA0ju/hNViExpshrM61xv4=");
        assert_eq!(
            verify_json(TOKEN, &url, BODY, Some("a9nBmqA0ju/hNViExpshrM61xv4=")),
            Ok(SignatureVariant::AsSent)
        );
    }

    // --- Behaviour ---

    #[test]
    fn json_tampered_body_is_refused() {
        let url = url_with_body_hash();
        assert_eq!(
            verify_json(
                TOKEN,
                &url,
                br#"{"property": "other", "boolean": true}"#,
                Some("a9nBmqA0ju/hNViExpshrM61xv4=")
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn json_without_body_hash_is_refused() {
        // A valid URL signature alone does not vouch for the body.
        let signature = sign(TOKEN, URL, &[]);
        assert_eq!(
            verify_json(TOKEN, URL, BODY, Some(&signature)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn json_repeated_or_malformed_body_hash_is_refused() {
        let repeated = format!("{}&bodySHA256={BODY_HASH}", url_with_body_hash());
        let signature = sign(TOKEN, &repeated, &[]);
        assert_eq!(
            verify_json(TOKEN, &repeated, BODY, Some(&signature)),
            Err(SignatureError::Mismatch)
        );
        let malformed = format!("{URL}&bodySHA256=zz");
        let signature = sign(TOKEN, &malformed, &[]);
        assert_eq!(
            verify_json(TOKEN, &malformed, BODY, Some(&signature)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn json_bad_signature_is_refused_even_with_right_body() {
        let url = url_with_body_hash();
        assert_eq!(
            verify_json(TOKEN, &url, BODY, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_json(TOKEN, &url, BODY, None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn json_default_port_variant_is_accepted() {
        let url = url_with_body_hash();
        let signature = sign(TOKEN, &with_port(&url, "443"), &[]);
        assert_eq!(
            verify_json(TOKEN, &url, BODY, Some(&signature)),
            Ok(SignatureVariant::DefaultPort)
        );
    }

    /// Twilio adds these to some voice webhooks after signing them.
    const ADDED: &[&str] = &["StirVerstat", "CallToken"];

    fn with_stir(params: &[(String, String)]) -> Vec<(String, String)> {
        let mut params = params.to_vec();
        params.push(("StirVerstat".into(), "TN-Validation-Passed-A".into()));
        params.push(("CallToken".into(), "%7B%22a%22%3A1%7D".into()));
        params
    }

    #[test]
    fn a_form_signed_before_stir_parameters_were_added_verifies_as_that_variant() {
        let signature = sign(TOKEN, URL, &base_params());
        let received = with_stir(&base_params());
        assert_eq!(
            verify_form(TOKEN, URL, &received, Some(&signature), ADDED),
            Ok(SignatureVariant::WithoutAddedParameters)
        );
        // The default-port URL combines with it.
        let signature = sign(TOKEN, &with_port(URL, "443"), &base_params());
        assert_eq!(
            verify_form(TOKEN, URL, &received, Some(&signature), ADDED),
            Ok(SignatureVariant::WithoutAddedParameters)
        );
        // Signed over everything: the form as sent.
        let signature = sign(TOKEN, URL, &received);
        assert_eq!(
            verify_form(TOKEN, URL, &received, Some(&signature), ADDED),
            Ok(SignatureVariant::AsSent)
        );
    }

    #[test]
    fn only_the_named_parameters_may_have_been_added_and_the_rest_stays_signed() {
        let signature = sign(TOKEN, URL, &base_params());
        let received = with_stir(&base_params());
        // Without the list, nothing is relaxed.
        assert_eq!(
            verify_form(TOKEN, URL, &received, Some(&signature), &[]),
            Err(SignatureError::Mismatch)
        );
        // A tampered From is refused, with or without the added parameters.
        let tampered: Vec<(String, String)> = received
            .iter()
            .map(|(k, v)| match k.as_str() {
                "From" => (k.clone(), "+15005550006".to_owned()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        assert_eq!(
            verify_form(TOKEN, URL, &tampered, Some(&signature), ADDED),
            Err(SignatureError::Mismatch)
        );
        // Another parameter added after signing is not forgiven.
        let mut other = base_params();
        other.push(("Digits".into(), "9".into()));
        assert_eq!(
            verify_form(TOKEN, URL, &other, Some(&signature), ADDED),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header_is_missing() {
        assert_eq!(
            verify(TOKEN, URL, &base_params(), None),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn empty_header_is_missing() {
        assert_eq!(
            verify(TOKEN, URL, &base_params(), Some("")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(TOKEN, URL, &base_params(), Some("  ")),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn tampered_param_is_refused() {
        let mut params = base_params();
        params[3].1 = "+15550000000".to_string();
        assert_eq!(
            verify(TOKEN, URL, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Err(SignatureError::Mismatch)
        );
        // An added parameter breaks it too.
        let mut params = base_params();
        params.push(("Extra".to_string(), "1".to_string()));
        assert_eq!(
            verify(TOKEN, URL, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_url_is_refused() {
        let url = URL.replace("foo=1", "foo=2");
        assert_eq!(
            verify(
                TOKEN,
                &url,
                &base_params(),
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn other_token_is_refused() {
        let signature = sign(b"67890", URL, &base_params());
        assert_eq!(
            verify(TOKEN, URL, &base_params(), Some(&signature)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn plus_and_quote_in_query_are_signed_as_is() {
        // Reference value computed independently (Python hmac/hashlib) over
        // the raw URL text.
        let url = "https://mycompany.com/myapp.php?name=O'Brien&plus=a+b";
        let params = pairs(&[("From", "+14158675309")]);
        assert_eq!(sign(TOKEN, url, &params), "8cwbD8Tv2+HIALiJNj0pCcs9va8=");
        assert_eq!(
            verify(TOKEN, url, &params, Some("8cwbD8Tv2+HIALiJNj0pCcs9va8=")),
            Ok(())
        );
        // A re-encoded form of the same URL is different text, so a
        // signature over it must not pass for the raw one.
        let reencoded = "https://mycompany.com/myapp.php?name=O%27Brien&plus=a%2Bb";
        let signature = sign(TOKEN, reencoded, &params);
        assert_eq!(
            verify(TOKEN, url, &params, Some(&signature)),
            Err(SignatureError::Mismatch)
        );
        // The default-port variant keeps the query bytes untouched.
        let with_443 = "https://mycompany.com:443/myapp.php?name=O'Brien&plus=a+b";
        assert_eq!(default_port_variant(url).as_deref(), Some(with_443));
        let signature = sign(TOKEN, with_443, &params);
        assert_eq!(verify(TOKEN, url, &params, Some(&signature)), Ok(()));
    }

    #[test]
    fn repeated_keys_are_kept() {
        // Reference value computed independently (Python) from
        // `url + "Digits1" + "Digits2"`.
        let url = "https://mycompany.com/myapp.php";
        let params = pairs(&[("Digits", "2"), ("Digits", "1")]);
        assert_eq!(sign(TOKEN, url, &params), "Jmw9+gnvEs+urLHGipvLb9jVsHA=");
        // Dropping either value changes the signature.
        for kept in ["1", "2"] {
            let one = pairs(&[("Digits", kept)]);
            assert_eq!(
                verify(TOKEN, url, &one, Some("Jmw9+gnvEs+urLHGipvLb9jVsHA=")),
                Err(SignatureError::Mismatch)
            );
        }
        // Received order does not matter.
        let reordered = pairs(&[("Digits", "1"), ("Digits", "2")]);
        assert_eq!(
            verify(TOKEN, url, &reordered, Some("Jmw9+gnvEs+urLHGipvLb9jVsHA=")),
            Ok(())
        );
    }

    #[test]
    fn get_signs_the_url_alone() {
        let signature = sign(TOKEN, URL, &[]);
        assert_eq!(verify(TOKEN, URL, &[], Some(&signature)), Ok(()));
        assert_eq!(
            verify(TOKEN, URL, &base_params(), Some(&signature)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn port_variants() {
        assert_eq!(
            default_port_variant("https://h.example/p?q=1").as_deref(),
            Some("https://h.example:443/p?q=1")
        );
        assert_eq!(
            default_port_variant("https://h.example:443/p").as_deref(),
            Some("https://h.example/p")
        );
        assert_eq!(
            default_port_variant("http://h.example").as_deref(),
            Some("http://h.example:80")
        );
        assert_eq!(
            default_port_variant("http://h.example:80?x=1").as_deref(),
            Some("http://h.example?x=1")
        );
        // :80 is not the default for https, nor :443 for http.
        assert_eq!(default_port_variant("https://h.example:80/p"), None);
        assert_eq!(default_port_variant("http://h.example:443/p"), None);
        assert_eq!(default_port_variant("https://h.example:8443/p"), None);
        // A ':' in the path or query is not a port.
        assert_eq!(
            default_port_variant("https://h.example/a:443?t=1:2").as_deref(),
            Some("https://h.example:443/a:443?t=1:2")
        );
        // Userinfo and IPv6 literals.
        assert_eq!(
            default_port_variant("https://u:pw@h.example/p").as_deref(),
            Some("https://u:pw@h.example:443/p")
        );
        assert_eq!(
            default_port_variant("https://[::1]/p").as_deref(),
            Some("https://[::1]:443/p")
        );
        assert_eq!(
            default_port_variant("https://[::1]:443/p").as_deref(),
            Some("https://[::1]/p")
        );
        assert_eq!(default_port_variant("ftp://h.example/p"), None);
        assert_eq!(default_port_variant("not a url"), None);
    }
}
