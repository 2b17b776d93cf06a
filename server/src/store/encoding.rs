//! How a subscriber with its token hashes is kept in a store that holds
//! bytes (Redis): compact, so that every subscriber with all it brings
//! stays under 1 KiB of store memory. (Sessions have a stored shape of
//! their own, `store::stored`; this module still reads the sessions of the
//! release before it for that one.)
//!
//! The format is one tag byte, [`MSGPACK_V1`], then the record as
//! MessagePack with field names (`rmp-serde`'s named maps), each name
//! written as a one-byte code: self-describing like JSON, so fields added
//! with `#[serde(default)]` or left out with `skip_serializing_if` keep
//! working across releases, at about a third of the bytes. Timestamps and
//! token hashes are shorter still in it: their serde impls write integers
//! and raw bytes for a binary (not human-readable) format, and the RFC 3339
//! and hex text for JSON.
//!
//! A subscriber written by an earlier release is JSON; JSON always starts
//! with `{` here, which is not the tag, so the decoder reads both.

use anyhow::{Context as _, anyhow};

use crate::store::SubscriberRecord;

/// The first byte of a subscriber record in the current format (and of a
/// session of the release before).
pub const MSGPACK_V1: u8 = 0x01;

/// The field names of a session of format 1 (written by the releases
/// before), as one-byte integers: a name's place is its code. Append only,
/// as the releases before appended to it; sessions are written as
/// `store::stored` says now.
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

/// A session of format 1 (after its tag byte) with its field names written
/// out: what `store::stored` reads it from.
pub(super) fn named_v1_session(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut value =
        rmpv::decode::read_value(&mut &bytes[..]).context("reading a version 1 session")?;
    map_keys(&mut value, &|key| {
        let name = FIELD_NAMES.get(usize::try_from(key.as_u64()?).ok()?)?;
        Some(rmpv::Value::from(*name))
    });
    let mut named = Vec::with_capacity(bytes.len() * 2);
    rmpv::encode::write_value(&mut named, &value).expect("writing into a Vec cannot fail");
    Ok(named)
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
}
