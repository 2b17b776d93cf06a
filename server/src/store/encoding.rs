//! How a session, and a subscriber with its token hashes, are kept in a
//! store that holds bytes (Redis): compact, so that every session, with its
//! offers, legs and timeline, and every subscriber with all it brings, stay
//! under 1 KiB of store memory.
//!
//! The format is one tag byte, [`MSGPACK_V1`], then the session as
//! MessagePack with field names (`rmp-serde`'s named maps): self-describing
//! like JSON, so fields added with `#[serde(default)]` or left out with
//! `skip_serializing_if` keep working across releases, at about half the
//! bytes. Timestamps and token hashes are shorter still in it: their serde
//! impls write integers and raw bytes for a binary (not human-readable)
//! format, and the RFC 3339 and hex text for JSON.
//!
//! A session or subscriber written by an earlier release is JSON; JSON
//! always starts with `{` here, which is not the tag, so the decoders read
//! both.

use anyhow::{Context as _, anyhow};

use crate::domain::session::Session;
use crate::store::SubscriberRecord;

/// The first byte of a session in the current format.
pub const MSGPACK_V1: u8 = 0x01;

/// Field names written as one-byte integers instead of their text: most of
/// a session's bytes are names repeated in every leg, offer and pickup.
/// Append only: a name's place is its code in stored sessions. A name not
/// listed (a field added later) is written as text, and read as text, so
/// the table can lag behind the types without losing anything.
const FIELD_NAMES: [&str; 40] = [
    "id",
    "subscriber",
    "caller",
    "state",
    "mode",
    "instruction",
    "selected_destination",
    "call_sid",
    "timeline",
    "legs",
    "device_call_id",
    "offers",
    "phone_rejected",
    "wait_until",
    "pickups",
    "dials_ended",
    "route",
    "recordings",
    "reported_at",
    "notified_at",
    "instructed_at",
    "forwarded_at",
    "connected_at",
    "ended_at",
    "destination_id",
    "status",
    "attempt",
    "step",
    "round",
    "capability",
    "response",
    "accepted",
    "to",
    "skipped",
    "provider",
    "caller_name",
    "caller_verification",
    "voicemail_url",
    "transcription",
    "text",
];

/// A session as the store keeps it.
pub fn encode_session(session: &Session) -> Vec<u8> {
    encode(session, &FIELD_NAMES)
}

/// A session as [`encode_session`] wrote it, or as JSON (the release
/// before); its `version` is left at 0, for the store to set.
pub fn decode_session(bytes: &[u8]) -> anyhow::Result<Session> {
    decode(bytes, &FIELD_NAMES, "session")
}

/// The field names of a stored subscriber written as one-byte integers (the
/// same rule as [`FIELD_NAMES`]: append only).
const RECORD_FIELD_NAMES: [&str; 27] = [
    "subscriber",
    "credentials",
    "number",
    "forwarding_number",
    "mode",
    "strategy",
    "ring_timeout_secs",
    "pick_timeout_secs",
    "destinations",
    "fallback",
    "schedule",
    "caller_rules",
    "record",
    "ring_tone",
    "dnd_until",
    "id",
    "kind",
    "address",
    "webhook_url",
    "screening",
    "hours",
    "device",
    "timezone",
    "outside",
    "match",
    "action",
    "transcribe_voicemail",
];

/// A subscriber with its token hashes, as the store keeps it: about a
/// third of its JSON.
pub fn encode_record(record: &SubscriberRecord) -> Vec<u8> {
    encode(record, &RECORD_FIELD_NAMES)
}

/// A subscriber as [`encode_record`] wrote it, or as JSON.
pub fn decode_record(bytes: &[u8]) -> anyhow::Result<SubscriberRecord> {
    decode(bytes, &RECORD_FIELD_NAMES, "subscriber")
}

fn encode(value: &impl serde::Serialize, names: &[&str]) -> Vec<u8> {
    // Writing into a Vec cannot fail, and what is stored serializes: its
    // fields are plain data (the same ones JSON writes).
    let named = rmp_serde::to_vec_named(value).expect("stored data always encodes as MessagePack");
    let mut value =
        rmpv::decode::read_value(&mut named.as_slice()).expect("MessagePack just written reads");
    map_keys(&mut value, &|key| {
        let code = key
            .as_str()
            .and_then(|name| names.iter().position(|n| *n == name))?;
        Some(rmpv::Value::from(code))
    });
    let mut out = vec![MSGPACK_V1];
    rmpv::encode::write_value(&mut out, &value).expect("writing into a Vec cannot fail");
    out
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    names: &[&str],
    what: &str,
) -> anyhow::Result<T> {
    match bytes.first() {
        Some(&MSGPACK_V1) => {
            let mut value = rmpv::decode::read_value(&mut &bytes[1..])
                .with_context(|| format!("reading a MessagePack {what}"))?;
            map_keys(&mut value, &|key| {
                let name = names.get(usize::try_from(key.as_u64()?).ok()?)?;
                Some(rmpv::Value::from(*name))
            });
            // Back to bytes, so that the types read it through rmp-serde, a
            // binary format (times as integers, hashes as bytes).
            let mut named = Vec::with_capacity(bytes.len() * 2);
            rmpv::encode::write_value(&mut named, &value).expect("writing into a Vec cannot fail");
            rmp_serde::from_slice(&named).with_context(|| format!("decoding a MessagePack {what}"))
        }
        Some(b'{') => {
            serde_json::from_slice(bytes).with_context(|| format!("decoding a JSON {what}"))
        }
        Some(other) => Err(anyhow!(
            "a stored {what} starts with an unknown byte {other:#04x}"
        )),
        None => Err(anyhow!("a stored {what} is empty")),
    }
}

/// Replaces every map key `rename` has another for, at every depth.
fn map_keys(value: &mut rmpv::Value, rename: &impl Fn(&rmpv::Value) -> Option<rmpv::Value>) {
    match value {
        rmpv::Value::Map(entries) => {
            for (key, inner) in entries {
                if let Some(renamed) = rename(key) {
                    *key = renamed;
                }
                map_keys(inner, rename);
            }
        }
        rmpv::Value::Array(items) => {
            for item in items {
                map_keys(item, rename);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_with_two_destinations_reads_back_in_a_third_of_its_json() {
        use crate::domain::credentials::{Credentials, TokenPolicy};
        use crate::domain::phone::{PhoneNumber, Region};
        use crate::domain::subscriber::{SpecRules, SubscriberSpec};
        let spec: SubscriberSpec = serde_json::from_value(serde_json::json!({
            "forwarding_number": "+12025550100",
            "destinations": [
                {"id": "desk", "kind": "phone", "address": "+12025550201"},
                {"id": "laptop", "kind": "client", "address": "alice",
                 "webhook_url": "https://crm.example.com/hooks/ringrelay"}
            ]
        }))
        .unwrap();
        let subscriber = spec
            .parse(
                PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
                SpecRules {
                    region: Region::default(),
                    webhooks_can_be_signed: true,
                    webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
                },
            )
            .unwrap();
        let (credentials, _) = Credentials::issue(&subscriber, None, TokenPolicy::Rotate);
        let record = SubscriberRecord {
            subscriber,
            credentials,
        };
        let compact = encode_record(&record);
        let json = serde_json::to_vec(&record).unwrap();
        assert_eq!(decode_record(&compact).unwrap(), record);
        assert_eq!(
            decode_record(&json).unwrap(),
            record,
            "JSON of a release before"
        );
        assert!(
            compact.len() * 2 < json.len(),
            "{} of {} B",
            compact.len(),
            json.len()
        );
    }
    use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
    use crate::domain::credentials::TokenHash;
    use crate::domain::ids::{CallSid, DestinationId};
    use crate::domain::phone::{Caller, PhoneNumber, Region};
    use crate::domain::rules::Route;
    use crate::domain::session::{
        Claim, DialAttempt, DialResult, DialStatus, DialedLeg, Instruction, MissedReason, Offer,
        OfferKey, OfferResponse,
    };
    use crate::domain::subscriber::Mode;
    use crate::domain::time::Timestamp;

    fn t(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + millis).unwrap()
    }

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    /// The largest session the flow writes: pick mode, three destinations
    /// with offers (one declined, one accepted), a long device call id, a
    /// rule's route, claimed by a forwarded call, every step of the hunt
    /// with its legs and pickups, connected, a recording, then ended.
    fn largest() -> Session {
        let region = Region::default();
        let destinations = [
            id("desk-phone-main"),
            id("laptop-softphone"),
            id("office-pbx-line"),
        ];
        let offers = destinations
            .iter()
            .enumerate()
            .map(|(i, d)| Offer {
                destination_id: d.clone(),
                capability: TokenHash::of(&format!("cap_{i}_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
                response: None,
            })
            .collect();
        let mut s = Session::ringing(
            PhoneNumber::parse("+442071838750", region).unwrap(),
            Caller::parse(Some("+12025550302"), region),
            Mode::Pick,
            Some("device-call-0123456789abcdef0123456789abcdef".to_owned()),
            t(0),
        )
        .with_route(Route::Destinations {
            skipped: vec![id("after-hours-cell")],
        })
        .with_offers(offers, Some(t(15_000)));
        s.notified(t(40));
        s.answer_offer(
            OfferKey::Destination(&destinations[0]),
            OfferResponse::Declined,
            t(2_000),
        )
        .unwrap();
        s.answer_offer(
            OfferKey::Destination(&destinations[1]),
            OfferResponse::Accepted,
            t(3_000),
        )
        .unwrap();
        s.instruct(Instruction::Reject, t(3_001));
        s.record_phone_rejected().unwrap();
        s.apply_claim(Claim::new(
            CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap(),
            t(3_400),
            "signalwire",
            CallerContext {
                name: CallerName::parse("WASHINGTON DC"),
                verification: CallerVerification::Partial,
            },
        ));
        let mut attempt = DialAttempt::FIRST;
        for _ in 0..2 {
            s.start_ringing(attempt, &destinations);
            let dialed: Vec<DialedLeg> = destinations
                .iter()
                .map(|d| DialedLeg {
                    destination_id: d.clone(),
                    screened: true,
                    client: false,
                })
                .collect();
            s.record_pickup(attempt, &destinations[2]);
            s.record_dial_result(
                attempt,
                &dialed,
                DialResult {
                    status: DialStatus::NoAnswer,
                    bridged: Some(false),
                },
                t(25_000),
            );
            attempt = attempt.next_step();
        }
        s.start_ringing(attempt, &destinations[1..2]);
        s.leg_picked_up(attempt, &destinations[1], false, t(40_000));
        s.connect(attempt, Some(&destinations[1]), t(40_010));
        s.add_recording(
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Recordings/RE0123456789abcdef0123456789abcdef",
        );
        s.forwarded_call_ended(t(95_000));
        s
    }

    /// A session that never got further than its ring report, for contrast.
    fn smallest() -> Session {
        Session::ringing(
            PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
            Caller::Withheld,
            Mode::Auto,
            None,
            t(0),
        )
    }

    fn missed() -> Session {
        let mut s = Session::forwarded_without_report(
            PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
            Caller::parse(Some("+12025550302"), Region::default()),
            Route::Voicemail,
            Claim::new(
                CallSid::parse("CA1").unwrap(),
                t(5),
                "twilio",
                CallerContext::default(),
            ),
        );
        s.end_missed(MissedReason::NoOutcome, t(9));
        s
    }

    #[test]
    fn sessions_read_back_the_same() {
        for session in [largest(), smallest(), missed()] {
            let back = decode_session(&encode_session(&session)).unwrap();
            assert_eq!(back, session);
        }
    }

    #[test]
    fn the_largest_session_stays_well_under_a_kibibyte() {
        let session = largest();
        let json = serde_json::to_vec(&session).unwrap().len();
        let compact = encode_session(&session).len();
        // Seven legs, three pickups, three offers and a recording URL: more
        // than any call of three destinations writes, still within 1 KiB
        // (2.2 KB as JSON).
        assert!(compact <= 1024, "{compact} B (JSON: {json} B)");
        assert!(compact * 2 <= json, "{compact} B against {json} B of JSON");
    }

    #[test]
    fn a_json_session_from_the_release_before_still_reads() {
        // As the previous release wrote it (tests/api/store_versions.rs has
        // the same shape): RFC 3339 times, hex capability hashes, no
        // `route` or `recordings` (left out when empty).
        let json = br#"{"id":"ses_AAAAAAAAAAAAAAAAAAAAAA","subscriber":"+12025550199","caller":"+12025550302","state":"notified","mode":"pick","instruction":"wait","selected_destination":null,"call_sid":null,"timeline":{"reported_at":"2026-11-26T15:49:10.123Z","notified_at":"2026-11-26T15:49:10.200Z","instructed_at":null,"forwarded_at":null,"connected_at":null,"ended_at":null},"legs":[],"device_call_id":"abc","offers":[{"destination_id":"desk","capability":"0000000000000000000000000000000000000000000000000000000000000001","response":"accepted"}],"phone_rejected":false,"wait_until":"2026-11-26T15:49:25.123Z"}"#;
        let session = decode_session(json).unwrap();
        assert_eq!(session.id().as_str(), "ses_AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(session.subscriber().as_str(), "+12025550199");
        assert_eq!(session.device_call_id(), Some("abc"));
        assert_eq!(
            session.timeline().notified_at.map(Timestamp::to_rfc3339),
            Some("2026-11-26T15:49:10.200Z".to_owned())
        );
        assert_eq!(
            session.wait_until().map(Timestamp::to_rfc3339),
            Some("2026-11-26T15:49:25.123Z".to_owned())
        );
        // And what the previous release wrote is what this one writes as JSON.
        let again = serde_json::to_vec(&session).unwrap();
        assert_eq!(decode_session(&again).unwrap(), session);
        assert_eq!(decode_session(&encode_session(&session)).unwrap(), session);
    }

    #[test]
    fn what_is_neither_format_is_refused() {
        assert!(decode_session(b"").is_err());
        assert!(decode_session(b"\x02whatever").is_err());
        assert!(decode_session(&[MSGPACK_V1, 0xc1]).is_err());
    }
}
