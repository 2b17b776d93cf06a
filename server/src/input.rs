//! What users send (request bodies, `SUBSCRIBERS_FILE`) is read so that
//! nothing is dropped silently: a field the service does not know is an
//! error that names it, with the known field it most likely meant. Serde
//! alone would skip it, and a misspelt `"caller_rule"` would quietly turn a
//! block rule off.
//!
//! The check compares the input with what the parsed value holds once
//! written back: a key of the input that the parsed value does not have, at
//! the same place, is one nobody read. That leaves the stored types free to
//! accept fields of a newer release (a rolling deploy), while every input
//! is strict.

use serde_json::{Map, Value};

use crate::domain::error::FieldError;

/// How far (in edits) a misspelling may be from the name it suggests.
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// The first field of `input` that `understood` (the parsed input, written
/// back as JSON) does not have, as the error to answer with; `None` when
/// every field was read.
pub fn unknown_field(input: &Value, understood: &Value) -> Option<FieldError> {
    first_unknown(input, understood, String::new())
}

fn first_unknown(input: &Value, understood: &Value, path: String) -> Option<FieldError> {
    match (input, understood) {
        (Value::Object(given), Value::Object(known)) => given.iter().find_map(|(name, value)| {
            let here = if path.is_empty() {
                clip(name)
            } else {
                format!("{path}.{}", clip(name))
            };
            match known.get(name) {
                Some(read) => first_unknown(value, read, here),
                None => Some(FieldError::new(here, not_a_field(name, known))),
            }
        }),
        (Value::Array(given), Value::Array(known)) => given
            .iter()
            .zip(known)
            .enumerate()
            .find_map(|(i, (value, read))| first_unknown(value, read, format!("{path}[{i}]"))),
        _ => None,
    }
}

/// "is not a known field (did you mean `strategy`?)", or the known names
/// when none is close.
fn not_a_field(name: &str, known: &Map<String, Value>) -> String {
    let closest = known
        .keys()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .min();
    match closest {
        Some((distance, candidate))
            if distance <= MAX_SUGGESTION_DISTANCE.min(name.len() / 2 + 1) =>
        {
            format!("is not a known field (did you mean `{candidate}`?)")
        }
        _ => {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            format!(
                "is not a known field; the fields here are {}",
                names.join(", ")
            )
        }
    }
}

/// At most 64 characters of a name the user sent, for an error.
fn clip(name: &str) -> String {
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(input: Value, understood: Value) -> Option<String> {
        unknown_field(&input, &understood).map(|e| e.to_string())
    }

    #[test]
    fn a_near_miss_is_named_with_the_field_it_meant() {
        let known = json!({"strategy": "sequential", "caller_rules": [], "destinations": [{"screening": false, "id": "desk"}]});
        assert_eq!(
            check(json!({"stratgy": "simultaneous"}), known.clone()).unwrap(),
            "stratgy: is not a known field (did you mean `strategy`?)"
        );
        assert_eq!(
            check(
                json!({"caller_rule": [{"match": "withheld"}]}),
                known.clone()
            )
            .unwrap(),
            "caller_rule: is not a known field (did you mean `caller_rules`?)"
        );
        assert_eq!(
            check(
                json!({"destinations": [{"id": "desk", "screenning": true}]}),
                known.clone()
            )
            .unwrap(),
            "destinations[0].screenning: is not a known field (did you mean `screening`?)"
        );
    }

    #[test]
    fn a_name_far_from_every_field_lists_the_fields() {
        let message = check(
            json!({"colour": "blue"}),
            json!({"mode": "auto", "strategy": "x"}),
        )
        .unwrap();
        assert_eq!(
            message,
            "colour: is not a known field; the fields here are mode, strategy"
        );
    }

    #[test]
    fn what_was_read_passes_whatever_its_values() {
        assert_eq!(
            check(
                json!({"schedule": null, "destinations": [{"id": "a"}, {"id": "b"}]}),
                json!({"schedule": null, "record": "none", "destinations": [{"id": "a", "hours": null}, {"id": "b", "hours": null}]})
            ),
            None
        );
        // A value read into another shape (a string into an enum, a number
        // into a string) is not looked into.
        assert_eq!(
            check(
                json!({"at": {"x": 1}}),
                json!({"at": "2026-12-07T00:00:00Z"})
            ),
            None
        );
    }

    #[test]
    fn a_long_name_is_clipped_in_the_error() {
        let long = "x".repeat(500);
        let error = unknown_field(&json!({ long.clone(): 1 }), &json!({"a": 1})).unwrap();
        assert_eq!(error.field.len(), 64);
    }
}
