//! Plivo's webhook signatures: `X-Plivo-Signature-V3` (with its
//! `X-Plivo-Signature-V3-Nonce`) and the deprecated V2. Computing them and
//! checking them on incoming requests.
//!
//! V3 signs `U + "." + nonce` with HMAC-SHA256, where U is the URL without
//! its query, followed by the query and the parameters in a canonical sorted
//! form built from *decoded* values (Plivo's helpers parse the query before
//! signing, so escaping in the received URL does not matter here, unlike for
//! Twilio). V2 signs the URL without its query, followed by the nonce.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// One error type for every provider's signature check.
use crate::providers::SignatureError;

/// The HTTP method Plivo used for the callback: V3 builds U differently for
/// each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

type HmacSha256 = Hmac<Sha256>;

/// Values of each name, names in byte order. Each name's values are sorted
/// before use.
type Grouped = BTreeMap<String, Vec<String>>;

/// base64(HMAC-SHA256(auth_token, U + "." + nonce)).
///
/// `url` is the callback URL as received; its query is percent-decoded here.
/// `params` are the decoded form pairs of a POST body (for a GET, Plivo's
/// parameters are normally already in `url`'s query and `params` is `&[]`).
///
/// U is `scheme://host[:port]/path`, then:
/// - POST: `?` (only when the query or the params are non-empty), the query
///   pairs sorted as `k=v` joined by `&`, a `.` when both parts are
///   non-empty, and the params sorted as `kv` concatenated;
/// - GET: the params merged with the query (a name present in the query
///   takes the query's values, as Plivo's helper merges a dict), sorted as
///   `k=v` joined by `&`, after a `?` when non-empty.
///
/// Within a name, values are sorted and all kept.
pub fn sign_v3(
    auth_token: &[u8],
    method: Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
) -> String {
    let signed = v3_string_to_sign(method, url, params);
    hmac_sha256_base64(auth_token, &[signed.as_bytes(), b".", nonce.as_bytes()])
}

/// `signatures` is the X-Plivo-Signature-V3 header (may hold several
/// comma-separated signatures; any may match), `nonce` the
/// X-Plivo-Signature-V3-Nonce header. Constant-time compare; fails closed
/// (missing or blank header or nonce → `Missing`).
pub fn verify_v3(
    auth_token: &[u8],
    method: Method,
    url: &str,
    params: &[(String, String)],
    nonce: Option<&str>,
    signatures: Option<&str>,
) -> Result<(), SignatureError> {
    let nonce = present(nonce)?;
    let signatures = present(signatures)?;
    let expected = sign_v3(auth_token, method, url, params, nonce);
    if bool::from(any_matches(&expected, signatures)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// base64(HMAC-SHA256(auth_token, `scheme://host[:port]/path` + nonce)):
/// the deprecated V2 scheme, which ignores the query and the parameters.
pub fn sign_v2(auth_token: &[u8], url: &str, nonce: &str) -> String {
    let (base, _query) = split_url(url);
    hmac_sha256_base64(auth_token, &[base.as_bytes(), nonce.as_bytes()])
}

fn hmac_sha256_base64(auth_token: &[u8], parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length, so this cannot fail whatever the token.
    let mut mac = HmacSha256::new_from_slice(auth_token).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// A header value, or `Missing` when absent or blank: an empty header
/// carries nothing to check, so it is treated like no header.
fn present(value: Option<&str>) -> Result<&str, SignatureError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(SignatureError::Missing),
    }
}

/// Whether any of the comma-separated signatures equals `expected`. Every
/// candidate is compared, so the time taken does not reveal which matched.
fn any_matches(expected: &str, signatures: &str) -> Choice {
    let mut ok = Choice::from(0);
    for candidate in signatures.split(',').map(str::trim) {
        if !candidate.is_empty() {
            ok |= expected.as_bytes().ct_eq(candidate.as_bytes());
        }
    }
    ok
}

/// `(scheme://authority/path, raw query)`; a fragment, never sent by a
/// client anyway, is dropped.
fn split_url(url: &str) -> (&str, &str) {
    let without_fragment = url.split_once('#').map_or(url, |(before, _)| before);
    without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""))
}

fn v3_string_to_sign(method: Method, url: &str, params: &[(String, String)]) -> String {
    let (base, raw_query) = split_url(url);
    let query = decode_query(raw_query);
    let mut signed = base.to_owned();
    match method {
        Method::Get => {
            let mut merged = group(params);
            // Plivo's helper merges with dict.update: the query's values
            // replace the params' values of the same name. So passing a GET's
            // parameters both in `url` and in `params` cannot double them.
            merged.extend(query);
            let joined = join_query_style(&merged);
            if !joined.is_empty() {
                signed.push('?');
                signed.push_str(&joined);
            }
        }
        Method::Post => {
            let joined_query = join_query_style(&query);
            if !joined_query.is_empty() || !params.is_empty() {
                signed.push('?');
            }
            signed.push_str(&joined_query);
            if !joined_query.is_empty() && !params.is_empty() {
                signed.push('.');
            }
            for (name, values) in group(params) {
                for value in values {
                    signed.push_str(&name);
                    signed.push_str(&value);
                }
            }
        }
    }
    signed
}

/// The query's pairs, percent- and `+`-decoded (never re-encoded), grouped by
/// name with values sorted. Blank values are kept, as Plivo's helper does.
fn decode_query(raw_query: &str) -> Grouped {
    let mut grouped = Grouped::new();
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        grouped
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    sort_values(grouped)
}

/// Already-decoded pairs grouped by name, values sorted, repeats kept.
fn group(params: &[(String, String)]) -> Grouped {
    let mut grouped = Grouped::new();
    for (name, value) in params {
        grouped.entry(name.clone()).or_default().push(value.clone());
    }
    sort_values(grouped)
}

fn sort_values(mut grouped: Grouped) -> Grouped {
    for values in grouped.values_mut() {
        values.sort_unstable();
    }
    grouped
}

/// `k=v` pairs joined by `&`, names in order, each name's values in order.
fn join_query_style(grouped: &Grouped) -> String {
    let mut out = String::new();
    for (name, values) in grouped {
        for value in values {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    const NONCE: &str = "31627761595286130198";
    const URL_WITH_QUERY: &str =
        "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d";
    const URL_PLAIN: &str = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
    const UUID: &str = "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36";

    /// The parameters of Plivo's own test suites. the vectors write
    /// `ALegUUID=ALegRequestUUID=CallUUID=RequestUUID=<uuid>`: the vectors
    /// only match with four separate names sharing that value (as in the
    /// plivo-go/-ruby suites), not one name whose value holds `=` signs.
    fn params() -> Vec<(String, String)> {
        [
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", UUID),
            ("ALegRequestUUID", UUID),
            ("CallUUID", UUID),
            ("RequestUUID", UUID),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn check_vector(method: Method, url: &str, expected: &str) {
        assert_eq!(sign_v3(TOKEN, method, url, &params(), NONCE), expected);
        assert_eq!(
            verify_v3(TOKEN, method, url, &params(), Some(NONCE), Some(expected)),
            Ok(())
        );
    }

    // --- Vectors from Plivo's own test suites ---

    #[test]
    fn v3_vector_post_with_query() {
        check_vector(
            Method::Post,
            URL_WITH_QUERY,
            "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
        );
    }

    #[test]
    fn v3_vector_get_with_query() {
        check_vector(
            Method::Get,
            URL_WITH_QUERY,
            "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ=",
        );
    }

    #[test]
    fn v3_vector_post_without_query() {
        check_vector(
            Method::Post,
            URL_PLAIN,
            "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=",
        );
    }

    #[test]
    fn v3_vector_get_without_query() {
        check_vector(
            Method::Get,
            URL_PLAIN,
            "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc=",
        );
    }

    #[test]
    fn v2_vector() {
        let expected = "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=";
        assert_eq!(
            sign_v2(b"my_auth_token", "https://answer.url", "12345"),
            expected
        );
        // Another token (the helpers' own negative case).
        assert_ne!(
            sign_v2(b"my_auth_tokens", "https://answer.url", "12345"),
            expected
        );
    }

    // --- String to sign ---

    #[test]
    fn v3_string_shapes() {
        let p = vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ];
        assert_eq!(
            v3_string_to_sign(Method::Post, "https://h/x?d=4&c=3", &p),
            "https://h/x?c=3&d=4.a1b2"
        );
        assert_eq!(
            v3_string_to_sign(Method::Post, "https://h/x", &p),
            "https://h/x?a1b2"
        );
        assert_eq!(
            v3_string_to_sign(Method::Post, "https://h/x?d=4&c=3", &[]),
            "https://h/x?c=3&d=4"
        );
        assert_eq!(
            v3_string_to_sign(Method::Post, "https://h/x", &[]),
            "https://h/x"
        );
        assert_eq!(
            v3_string_to_sign(Method::Get, "https://h/x?d=4&c=3", &p),
            "https://h/x?a=1&b=2&c=3&d=4"
        );
        assert_eq!(
            v3_string_to_sign(Method::Get, "https://h/x", &[]),
            "https://h/x"
        );
        // Repeated names keep every value, sorted.
        let repeated = vec![
            ("a".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ];
        assert_eq!(
            v3_string_to_sign(Method::Post, "https://h/x", &repeated),
            "https://h/x?a1a2"
        );
        assert_eq!(
            v3_string_to_sign(Method::Get, "https://h/x?z=9&z=8", &[]),
            "https://h/x?z=8&z=9"
        );
    }

    #[test]
    fn v3_query_values_are_decoded_not_reencoded() {
        let url = "https://example.com/answer?y=O%27Brien&x=a+b";
        assert_eq!(
            v3_string_to_sign(Method::Get, url, &[]),
            "https://example.com/answer?x=a b&y=O'Brien"
        );
        // Reference value computed independently (Python hmac/hashlib) over
        // `https://example.com/answer?x=a b&y=O'Brien.123`.
        assert_eq!(
            sign_v3(TOKEN, Method::Get, url, &[], "123"),
            "dZGSz+mDzGQgucLScqpWbOctFmLx+9hxLpOws7eNDHY="
        );
        // Any escaping of the same values signs the same.
        let other_escaping = "https://example.com/answer?x=a%20b&y=O'Brien";
        assert_eq!(
            sign_v3(TOKEN, Method::Get, other_escaping, &[], "123"),
            "dZGSz+mDzGQgucLScqpWbOctFmLx+9hxLpOws7eNDHY="
        );
    }

    #[test]
    fn v3_get_params_in_url_and_params_are_not_doubled() {
        let in_url = "https://example.com/answer?x=a+b&y=O%27Brien";
        let both = vec![
            ("x".to_string(), "a b".to_string()),
            ("y".to_string(), "O'Brien".to_string()),
        ];
        let only_params = sign_v3(TOKEN, Method::Get, "https://example.com/answer", &both, "1");
        assert_eq!(sign_v3(TOKEN, Method::Get, in_url, &[], "1"), only_params);
        assert_eq!(sign_v3(TOKEN, Method::Get, in_url, &both, "1"), only_params);
    }

    // --- Behaviour ---

    const POST_SIG: &str = "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=";

    #[test]
    fn v3_several_signatures_one_valid() {
        for header in [
            format!("bm90IGl0,{POST_SIG}"),
            format!("{POST_SIG},bm90IGl0"),
            format!("bm90IGl0, {POST_SIG} ,YWxzbyBub3Q="),
        ] {
            assert_eq!(
                verify_v3(
                    TOKEN,
                    Method::Post,
                    URL_WITH_QUERY,
                    &params(),
                    Some(NONCE),
                    Some(&header)
                ),
                Ok(()),
                "{header}"
            );
        }
        assert_eq!(
            verify_v3(
                TOKEN,
                Method::Post,
                URL_WITH_QUERY,
                &params(),
                Some(NONCE),
                Some("bm90IGl0,YWxzbyBub3Q=,,")
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v3_missing_nonce_or_header() {
        let verify =
            |nonce, sigs| verify_v3(TOKEN, Method::Post, URL_WITH_QUERY, &params(), nonce, sigs);
        assert_eq!(verify(None, Some(POST_SIG)), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some(""), Some(POST_SIG)),
            Err(SignatureError::Missing)
        );
        assert_eq!(verify(Some(NONCE), None), Err(SignatureError::Missing));
        assert_eq!(verify(Some(NONCE), Some("")), Err(SignatureError::Missing));
        assert_eq!(verify(None, None), Err(SignatureError::Missing));
    }

    #[test]
    fn v3_tampered_param_is_refused() {
        let mut tampered = params();
        tampered[1].1 = "15550000000".to_string();
        assert_eq!(
            verify_v3(
                TOKEN,
                Method::Post,
                URL_WITH_QUERY,
                &tampered,
                Some(NONCE),
                Some(POST_SIG)
            ),
            Err(SignatureError::Mismatch)
        );
        let mut extra = params();
        extra.push(("Extra".to_string(), "1".to_string()));
        assert_eq!(
            verify_v3(
                TOKEN,
                Method::Post,
                URL_WITH_QUERY,
                &extra,
                Some(NONCE),
                Some(POST_SIG)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v3_wrong_nonce_method_url_or_token_is_refused() {
        let check = |token: &[u8], method, url, nonce| {
            verify_v3(token, method, url, &params(), Some(nonce), Some(POST_SIG))
        };
        assert_eq!(
            check(TOKEN, Method::Post, URL_WITH_QUERY, "1"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(TOKEN, Method::Get, URL_WITH_QUERY, NONCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(TOKEN, Method::Post, URL_PLAIN, NONCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(b"another-token", Method::Post, URL_WITH_QUERY, NONCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v2_ignores_the_query_and_depends_on_the_nonce() {
        let expected = "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=";
        assert_eq!(
            sign_v2(b"my_auth_token", "https://answer.url?x=1", "12345"),
            expected
        );
        assert_ne!(
            sign_v2(b"my_auth_token", "https://answer.url", "12346"),
            expected
        );
    }
}
