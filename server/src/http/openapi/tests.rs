//! The API document checked against the routes, the handlers' payloads,
//! the error bodies and itself (every reference resolves, every example
//! matches its schema), and against `docs/openapi.json`.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::ResponseError as _;
use serde_json::{Value, json};

use super::*;
use crate::domain::caller_context::{CallerName, CallerVerification};
use crate::domain::error::FieldError;
use crate::domain::forwarding::ForwardingCodes;
use crate::domain::ids::DestinationId;
use crate::domain::phone::{Caller, PhoneNumber, Region};
use crate::domain::session::{
    Instruction, SessionId, SessionState, TextOutcome, Timeline, TranscriptionStatus,
};
use crate::domain::subscriber::{SpecRules, SubscriberSpec};
use crate::domain::time::Timestamp;
use crate::flow::{DeviceEvent, FlowError};
use crate::http::error::ApiError;

/// Every documented route, its methods, the statuses each answers, and
/// who may call it.
const ROUTES: &[(&str, &str, &[u16], &[&str])] = &[
    (
        "/v1/subscribers",
        "get",
        &[200, 401, 422, 500, 503],
        &["admin_token"],
    ),
    (
        "/v1/sessions",
        "get",
        &[200, 401, 403, 422, 500, 503],
        &["admin_token", "device_token", "destination_token"],
    ),
    (
        "/v1/events",
        "get",
        &[200, 401, 429, 500, 503],
        &["admin_token"],
    ),
    (
        "/v1/subscribers/{number}",
        "put",
        &[200, 201, 400, 401, 413, 422, 500, 503],
        &["admin_token"],
    ),
    (
        "/v1/subscribers/{number}",
        "get",
        &[200, 401, 404, 422, 500, 503],
        &["admin_token"],
    ),
    (
        "/v1/subscribers/{number}",
        "delete",
        &[204, 401, 404, 422, 500, 503],
        &["admin_token"],
    ),
    (
        "/v1/me",
        "get",
        &[200, 401, 500, 503],
        &["admin_token", "device_token", "destination_token"],
    ),
    (
        "/v1/ring",
        "post",
        &[201, 400, 401, 413, 422, 429, 500, 503],
        &["device_token"],
    ),
    (
        "/v1/dnd",
        "put",
        &[200, 400, 401, 413, 422, 500, 503],
        &["device_token"],
    ),
    (
        "/v1/sessions/{id}",
        "get",
        &[200, 401, 404, 500, 503],
        &["admin_token", "device_token", "destination_token"],
    ),
    (
        "/v1/sessions/{id}/instruction",
        "get",
        &[200, 401, 404, 422, 500, 503],
        &["device_token"],
    ),
    (
        "/v1/sessions/{id}/events",
        "post",
        &[204, 400, 401, 404, 409, 410, 413, 422, 500, 503],
        &["device_token"],
    ),
    (
        "/v1/sessions/{id}/accept",
        "post",
        &[200, 401, 404, 409, 410, 500, 503],
        &["destination_token", "capability"],
    ),
    (
        "/v1/sessions/{id}/decline",
        "post",
        &[200, 401, 404, 409, 410, 500, 503],
        &["destination_token", "capability"],
    ),
    (
        "/v1/destinations/{id}/events",
        "get",
        &[200, 401, 403, 429, 500, 503],
        &["destination_token"],
    ),
    ("/v1/push/key", "get", &[200, 503], &[]),
    (
        "/v1/destinations/{id}/push-subscriptions",
        "post",
        &[201, 400, 401, 403, 413, 422, 500, 503],
        &["destination_token"],
    ),
    (
        "/v1/destinations/{id}/push-subscriptions/{sub_id}",
        "delete",
        &[204, 401, 403, 404, 500, 503],
        &["destination_token"],
    ),
    (
        "/v1/destinations/{id}/voice-token",
        "post",
        &[200, 401, 403, 409, 500, 503],
        &["destination_token"],
    ),
];

fn json_document() -> Value {
    serde_json::from_str(&document().to_json().unwrap()).unwrap()
}

/// Follows a local `$ref` (`#/components/...`) to what it names.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{reference} is not local"));
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} names nothing")),
            )
        }
        None => value,
    }
}

/// A validator for the component schema `name`, whose `$ref`s resolve in
/// the document.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let root = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {name}: {e}"))
}

#[track_caller]
fn assert_valid(doc: &Value, name: &str, instance: &Value) {
    let errors: Vec<String> = validator(doc, name)
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} does not match {name}: {errors:?}"
    );
}

#[track_caller]
fn assert_invalid(doc: &Value, name: &str, instance: &Value) {
    assert!(
        !validator(doc, name).is_valid(instance),
        "{instance} should not match {name}"
    );
}

fn us(number: &str) -> PhoneNumber {
    PhoneNumber::parse(number, Region::default()).unwrap()
}

#[test]
fn the_document_is_openapi_3_and_a_parser_reads_it() {
    let text = document().to_json().unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "ringrelay");

    let spec = oas3::from_json(&text).expect("oas3 reads the document");
    let version = spec.validate_version().expect("a supported version");
    assert_eq!((version.major, version.minor), (3, 1));
    let operations: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (path, method.as_str().to_ascii_lowercase()))
        .collect();
    assert_eq!(
        operations.len(),
        ROUTES.len() + provider_routes().len() + OperationalRoutes::ROUTES.len()
    );
    // Every parameter, body and response the parser can resolve resolves.
    for (path, method, operation) in spec.operations() {
        for parameter in &operation.parameters {
            parameter
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        }
        if let Some(body) = &operation.request_body {
            body.resolve(&spec)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        }
        for (status, response) in operation.responses(&spec) {
            for (media_type, content) in &response.content {
                if let Some(schema) = &content.schema {
                    schema
                        .resolve(&spec)
                        .unwrap_or_else(|e| panic!("{method} {path} {status} {media_type}: {e}"));
                }
            }
        }
    }
}

/// Every provider's webhook paths, from the providers' table.
fn provider_routes() -> Vec<&'static str> {
    crate::providers::PROVIDERS
        .iter()
        .flat_map(|p| p.paths.described().map(|(path, _)| path))
        .collect()
}

#[test]
fn every_providers_webhooks_are_documented_with_their_refusals() {
    let doc = json_document();
    for provider in crate::providers::PROVIDERS {
        for (path, _) in provider.paths.described() {
            let operation = &doc["paths"][path]["post"];
            assert_eq!(operation["tags"], json!(["cpaas"]), "{path}");
            let answered = if path == provider.paths.status {
                "204"
            } else {
                "200"
            };
            for status in [answered, "403", "503"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{path} {status}"
                );
            }
            let unset = operation["responses"]["503"]["description"]
                .as_str()
                .unwrap();
            assert!(unset.contains(provider.variables[0]), "{path}: {unset}");
        }
    }
    assert!(doc["paths"]["/telnyx/voice"]["post"]["responses"]["200"]["content"]["text/xml; charset=utf-8"].is_object());
}

#[test]
fn lists_every_route_with_its_methods_statuses_and_security() {
    let doc = json_document();
    let documented: BTreeSet<(&str, &str)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.as_str(), method.as_str()))
        })
        .collect();
    let expected: BTreeSet<(&str, &str)> = ROUTES
        .iter()
        .map(|(path, method, ..)| (*path, *method))
        .chain(provider_routes().into_iter().map(|path| (path, "post")))
        .chain(
            OperationalRoutes::ROUTES
                .iter()
                .map(|route| (route.0, "get")),
        )
        .collect();
    assert_eq!(documented, expected);

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (name, scheme) in schemes {
        if name.ends_with("_token") {
            assert_eq!(scheme["type"], "http", "{name}");
            assert_eq!(scheme["scheme"], "bearer", "{name}");
        }
    }

    for (path, method, statuses, security) in ROUTES {
        let operation = &doc["paths"][path][method];
        let documented: Vec<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|status| status.parse().unwrap())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(&documented, statuses, "{method} {path}");

        // A route that checks no credential (`/v1/push/key`) lists none.
        if security.is_empty() {
            assert!(operation["security"].is_null(), "{method} {path}");
            assert!(operation["responses"]["401"].is_null(), "{method} {path}");
            continue;
        }
        // Any one of the listed schemes suffices.
        let alternatives: Vec<&str> = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has no security"))
            .iter()
            .map(|requirement| {
                let names: Vec<&String> = requirement.as_object().unwrap().keys().collect();
                assert_eq!(names.len(), 1, "{method} {path}: {requirement}");
                names[0].as_str()
            })
            .collect();
        assert_eq!(&alternatives, security, "{method} {path}");
        for name in alternatives {
            assert!(schemes.contains_key(name), "{method} {path}: {name}");
        }

        for (status, response) in operation["responses"].as_object().unwrap() {
            let response = resolve(&doc, response);
            assert!(
                response["description"].is_string(),
                "{method} {path} {status}"
            );
            if status.as_str() >= "400" {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
        let unauthorized = resolve(&doc, &operation["responses"]["401"]);
        assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
    }
    let limited = resolve(&doc, &doc["paths"]["/v1/ring"]["post"]["responses"]["429"]);
    assert!(limited["headers"]["Retry-After"].is_object());

    let stream = &doc["paths"]["/v1/destinations/{id}/events"]["get"]["responses"]["200"];
    assert!(
        stream["content"]["text/event-stream"].is_object(),
        "{stream}"
    );
}

#[test]
fn the_recording_event_is_documented_as_it_is_sent() {
    use crate::notify::events::{CallRef, Event, EventPayload, Recording};
    let doc = json_document();
    for caller in [
        Caller::parse(Some("+12025550302"), Region::default()),
        Caller::Withheld,
    ] {
        let event = Event::now(EventPayload::Recording(Recording {
            call: CallRef {
                session_id: SessionId::generate(),
                subscriber: us("+12025550199"),
                caller,
                caller_name: None,
                caller_verification: CallerVerification::None,
            },
            recording_url: "https://api.twilio.com/2010-04-01/Recordings/RE1".into(),
            duration_secs: 63,
        }));
        let sent = serde_json::to_value(&event).unwrap();
        assert_valid(&doc, "CallRecordingEvent", &sent);
        assert_eq!(
            doc["webhooks"]["call.recording"]["post"]["requestBody"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/CallRecordingEvent"
        );
    }
    let mut other = json!({"type": "call.voicemail", "timestamp": "2026-11-26T15:49:10.123Z",
        "data": {"session_id": "ses_q7Xb2mN4pR8sT1vW3yZ5aB", "subscriber": "+12025550199",
                 "caller": null, "recording_url": "https://r.example.com/1", "duration_secs": 1}});
    assert_invalid(&doc, "CallRecordingEvent", &other);
    other["type"] = json!("call.recording");
    other["data"]["duration_secs"] = json!(-1);
    assert_invalid(&doc, "CallRecordingEvent", &other);
    let routes = crate::providers::PROVIDERS
        .iter()
        .map(|p| p.paths.recording);
    for path in routes {
        let answer = &doc["paths"][path]["post"]["responses"]["200"];
        assert!(
            answer["description"]
                .as_str()
                .unwrap()
                .contains("call.recording"),
            "{path}"
        );
    }
}

#[test]
fn every_event_is_a_webhook_documented_as_it_is_sent() {
    use crate::notify::events::*;
    let doc = json_document();
    let call = || CallRef {
        session_id: SessionId::generate(),
        subscriber: us("+12025550199"),
        caller: Caller::parse(Some("+12025550302"), Region::default()),
        caller_name: CallerName::parse("JANE DOE"),
        caller_verification: CallerVerification::Partial,
    };
    let desk = DestinationId::parse("desk").unwrap();
    let payloads = [
        EventPayload::Ringing(Ringing {
            call: call(),
            destination_id: desk.clone(),
            accept_url: "https://relay.example.com/v1/sessions/x/accept?capability=rrc_1".into(),
            decline_url: "https://relay.example.com/v1/sessions/x/decline?capability=rrc_1".into(),
            expires_at: Timestamp::now(),
        }),
        EventPayload::Cancelled(Cancelled {
            call: call(),
            reason: CancelReason::CallerHungUp,
        }),
        EventPayload::Connected(Connected {
            call: call(),
            destination_id: Some(desk.clone()),
        }),
        EventPayload::Connected(Connected {
            call: call(),
            destination_id: None,
        }),
        EventPayload::Missed(Missed {
            call: call(),
            reason: MissedReason::NotForwarded,
            missed_call_text: None,
        }),
        EventPayload::Missed(Missed {
            call: call(),
            reason: MissedReason::NobodyAnswered,
            missed_call_text: Some(TextOutcome::Skipped),
        }),
        EventPayload::Voicemail(Voicemail {
            call: call(),
            recording_url: "https://r.example.com/1".into(),
            missed_call_text: Some(TextOutcome::Sent),
        }),
        EventPayload::Taken(Taken {
            call: call(),
            destination_id: desk,
        }),
        EventPayload::Recording(Recording {
            call: call(),
            recording_url: "https://r.example.com/2".into(),
            duration_secs: 4,
        }),
        EventPayload::VoicemailTranscribed(VoicemailTranscribed {
            call: call(),
            recording_url: Some("https://r.example.com/3".into()),
            text: Some("Call me back.".into()),
            status: TranscriptionStatus::Completed,
        }),
        EventPayload::VoicemailTranscribed(VoicemailTranscribed {
            call: call(),
            recording_url: None,
            text: None,
            status: TranscriptionStatus::Failed,
        }),
    ];
    let documented: BTreeSet<&str> = doc["webhooks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sent_kinds = BTreeSet::new();
    for payload in payloads {
        let event = Event::now(payload);
        let sent = serde_json::to_value(&event).unwrap();
        let kind = event.kind();
        sent_kinds.insert(kind);
        let schema = doc["webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} is not a documented webhook"))
            .trim_start_matches("#/components/schemas/")
            .to_owned();
        assert_valid(&doc, &schema, &sent);
        // Another event's envelope does not fit it.
        let mut other = sent.clone();
        other["type"] = json!("call.other");
        assert_invalid(&doc, &schema, &other);
    }
    assert_eq!(
        documented, sent_kinds,
        "every kind is documented, and nothing else"
    );
}

#[test]
fn the_parameters_are_documented() {
    let doc = json_document();
    let parameters = |path: &str, method: &str| -> BTreeMap<String, Value> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|p| {
                        (
                            format!(
                                "{}:{}",
                                p["in"].as_str().unwrap(),
                                p["name"].as_str().unwrap()
                            ),
                            p.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for method in ["put", "get", "delete"] {
        assert!(parameters("/v1/subscribers/{number}", method).contains_key("path:number"));
    }
    let rotate = &parameters("/v1/subscribers/{number}", "put")["query:rotate_tokens"];
    assert_eq!(rotate["schema"]["type"], "boolean");
    assert_eq!(rotate["required"], false);

    let wait = &parameters("/v1/sessions/{id}/instruction", "get")["query:wait"];
    assert_eq!(wait["schema"]["minimum"], 0);
    assert_eq!(wait["schema"]["maximum"], 30);
    assert_eq!(wait["required"], false);

    for verb in ["accept", "decline"] {
        let params = parameters(&format!("/v1/sessions/{{id}}/{verb}"), "post");
        assert!(params.contains_key("path:id"), "{verb}");
        assert_eq!(params["query:capability"]["required"], false, "{verb}");
    }
    assert!(parameters("/v1/destinations/{id}/events", "get").contains_key("path:id"));

    for (path, names) in [
        ("/v1/subscribers", &["limit", "cursor"][..]),
        (
            "/v1/sessions",
            &["subscriber", "state", "limit", "cursor"][..],
        ),
    ] {
        let params = parameters(path, "get");
        for name in names {
            assert_eq!(
                params[&format!("query:{name}")]["required"],
                false,
                "{path} {name}"
            );
        }
        let limit = &params["query:limit"]["schema"];
        assert_eq!(
            (&limit["minimum"], &limit["maximum"], &limit["default"]),
            (&json!(1), &json!(200), &json!(50)),
            "{path}"
        );
    }

    // Every `{name}` of a path is a required path parameter, and back.
    for (path, method, ..) in ROUTES {
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|s| format!("path:{s}"))
            .collect();
        let params = parameters(path, method);
        let documented: BTreeSet<String> = params
            .keys()
            .filter(|k| k.starts_with("path:"))
            .cloned()
            .collect();
        assert_eq!(documented, in_path, "{method} {path}");
        for name in &in_path {
            assert_eq!(params[name]["required"], true, "{method} {path} {name}");
        }
    }
}

#[test]
fn every_ref_resolves() {
    fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r);
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let doc = json_document();
    let mut refs = Vec::new();
    walk(&doc, &mut refs);
    assert!(refs.len() > 20, "{refs:?}");
    for reference in refs {
        let pointer = reference
            .strip_prefix("#/components/")
            .unwrap_or_else(|| panic!("{reference} is not a local component"));
        assert!(
            doc["components"].pointer(&format!("/{pointer}")).is_some(),
            "{reference} names nothing"
        );
    }
}

#[test]
fn every_schema_is_valid_json_schema_and_its_examples_match_it() {
    let doc = json_document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (name, schema) in schemas {
        jsonschema::meta::validate(schema)
            .unwrap_or_else(|e| panic!("{name} is not JSON Schema 2020-12: {e}"));
        let examples = schema
            .get("example")
            .into_iter()
            .chain(schema["examples"].as_array().into_iter().flatten());
        for example in examples {
            assert_valid(&doc, name, example);
        }
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(example) = property.get("example") {
                let mut root = property.clone();
                root["components"] = doc["components"].clone();
                assert!(
                    jsonschema::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap()
                        .is_valid(example),
                    "{name}.{field}: {example}"
                );
            }
        }
    }
    for (name, response) in doc["components"]["responses"].as_object().unwrap() {
        let content = &response["content"]["application/json"];
        let examples = content["examples"].as_object().unwrap();
        assert!(!examples.is_empty(), "{name}");
        for example in examples.values() {
            assert_valid(&doc, "Error", &example["value"]);
        }
    }
}

#[actix_web::test]
async fn error_bodies_match_the_error_schema() {
    let doc = json_document();
    let errors = [
        ApiError::MalformedBody("x".into()),
        ApiError::Unauthorized,
        ApiError::NotFound("no such session".into()),
        ApiError::Forbidden("x".into()),
        FlowError::from(crate::domain::session::SessionError::AlreadyTaken).into(),
        ApiError::SessionOver,
        ApiError::PayloadTooLarge,
        FieldError::new("wait", "must be from 0 to 30 seconds, got 31").into(),
        FlowError::RateLimited {
            retry_after: std::time::Duration::from_secs(3),
        }
        .into(),
        ApiError::NotConfigured("ADMIN_TOKEN"),
        ApiError::Unexpected(anyhow::anyhow!("secret cause")),
    ];
    for error in errors {
        let response = error.error_response();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_valid(&doc, "Error", &body);
    }
    assert_invalid(&doc, "Error", &json!({"error": "not_found"}));
}

#[test]
fn the_schemas_match_what_the_service_reads_and_writes() {
    let doc = json_document();

    // docs/api.md's example body, and the subscriber made of it.
    let body = json!({
        "forwarding_number": "+12025550100",
        "mode": "auto",
        "strategy": "sequential",
        "ring_timeout_secs": 20,
        "pick_timeout_secs": 15,
        "destinations": [
            {"id": "desk",   "kind": "phone",  "address": "+12025550201",
             "webhook_url": "https://crm.example.com/hooks/calls", "screening": false},
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "pbx",    "kind": "sip",    "address": "sip:alice@pbx.example.com"}
        ],
        "fallback": {"kind": "phone", "address": "(202) 555-0333"}
    });
    assert_valid(&doc, "SubscriberSpec", &body);
    let minimal = json!({
        "forwarding_number": "2025550100",
        "destinations": [{"id": "desk", "kind": "phone", "address": "202-555-0201"}]
    });
    assert_valid(&doc, "SubscriberSpec", &minimal);
    assert_invalid(
        &doc,
        "SubscriberSpec",
        &json!({"forwarding_number": "+12025550100", "destinations": []}),
    );
    assert_invalid(
        &doc,
        "SubscriberSpec",
        &json!({"destinations": [{"id": "desk", "kind": "phone", "address": "x"}]}),
    );
    assert_invalid(
        &doc,
        "SubscriberSpec",
        &json!({"forwarding_number": "+12025550100", "destinations": [{"id": "desk", "kind": "sips", "address": "x"}]}),
    );

    let rules = SpecRules {
        region: Region::default(),
        webhooks_can_be_signed: true,
        webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
    };
    for (body, fallback) in [
        (
            body.clone(),
            json!({"kind": "phone", "address": "+12025550333"}),
        ),
        (minimal, json!({"kind": "voicemail"})),
    ] {
        let spec: SubscriberSpec = serde_json::from_value(body).unwrap();
        let subscriber = spec.parse(us("+12025550199"), rules).unwrap();
        let shown = serde_json::to_value(&subscriber).unwrap();
        assert_eq!(shown["fallback"], fallback);
        assert_valid(&doc, "Subscriber", &shown);

        let codes =
            serde_json::to_value(ForwardingCodes::for_number(&subscriber.forwarding_number))
                .unwrap();
        assert!(codes["cdma"].is_object());
        assert_valid(&doc, "ForwardingCodes", &codes);
        let registration = json!({
            "subscriber": shown,
            "device_token": null,
            "destination_tokens": {"desk": "rrt_abc"},
            "forwarding_codes": codes,
        });
        assert_valid(&doc, "SubscriberRegistration", &registration);
    }
    let mut hangup = serde_json::to_value(
        serde_json::from_value::<SubscriberSpec>(body)
            .unwrap()
            .parse(us("+12025550199"), rules)
            .unwrap(),
    )
    .unwrap();
    hangup["fallback"] = json!({"kind": "hangup"});
    assert_valid(&doc, "Subscriber", &hangup);
    hangup["destinations"][0]["kind"] = json!("sip");
    assert_invalid(&doc, "Subscriber", &hangup);

    let abroad = ForwardingCodes::for_number(&us("+442079460018"));
    assert_valid(
        &doc,
        "ForwardingCodes",
        &serde_json::to_value(abroad).unwrap(),
    );

    // The device API
    assert_valid(
        &doc,
        "RingBody",
        &json!({"caller": "+12025550302", "device_call_id": "a1b2c3"}),
    );
    assert_valid(&doc, "RingBody", &json!({"caller": null}));
    assert_valid(&doc, "RingBody", &json!({}));
    let session_id = SessionId::generate();
    assert_valid(
        &doc,
        "RingResponse",
        &json!({
            "session_id": session_id,
            "instruction": Instruction::Reject,
            "instruction_url": format!("/v1/sessions/{session_id}/instruction"),
        }),
    );
    for instruction in [Instruction::Wait, Instruction::Reject, Instruction::Ignore] {
        assert_valid(
            &doc,
            "InstructionResponse",
            &json!({"instruction": instruction}),
        );
    }
    let events = doc["components"]["schemas"]["DeviceEvent"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(events.len(), 3);
    for event in events {
        serde_json::from_value::<DeviceEvent>(event.clone()).unwrap();
        assert_valid(&doc, "EventBody", &json!({"event": event}));
    }
    assert_invalid(&doc, "EventBody", &json!({"event": "hung_up"}));

    // The destination API
    for state in [SessionState::Instructed, SessionState::Cancelled] {
        assert_valid(&doc, "OfferAnswer", &json!({"state": state}));
    }

    // Sessions
    let timeline = Timeline {
        reported_at: Some(Timestamp::now()),
        ..Timeline::default()
    };
    let session = json!({
        "id": session_id,
        "subscriber": us("+12025550199"),
        "caller": Caller::Withheld,
        "caller_name": null,
        "caller_verification": "none",
        "state": SessionState::Notified,
        "mode": "pick",
        "selected_destination": null,
        "call_sid": null,
        "timeline": timeline,
        "legs": [],
        "voicemail_transcription": null,
        "missed_call_text": null,
    });
    assert_valid(&doc, "Session", &session);
    let mut connected = session.clone();
    connected["caller"] = serde_json::to_value(Caller::Number(us("+12025550302"))).unwrap();
    connected["selected_destination"] =
        serde_json::to_value(DestinationId::parse("desk").unwrap()).unwrap();
    connected["call_sid"] = json!("CA1");
    connected["caller_name"] = json!("JANE DOE");
    connected["caller_verification"] = json!("verified");
    connected["voicemail_transcription"] = json!({"status": "completed", "text": "Call me back."});
    connected["missed_call_text"] = json!("sent");
    connected["timeline"]["connected_at"] = serde_json::to_value(Timestamp::now()).unwrap();
    connected["legs"] = json!([
        {"destination_id": "desk", "status": "no-answer"},
        {"destination_id": "desk", "status": "declined"},
        {"destination_id": "desk", "status": "connected"}
    ]);
    assert_valid(&doc, "Session", &connected);
    let mut unfinished = session;
    unfinished["timeline"]
        .as_object_mut()
        .unwrap()
        .remove("ended_at");
    assert_invalid(&doc, "Session", &unfinished);
}

#[actix_web::test]
async fn every_documented_route_is_routed() {
    use actix_web::{App, test};

    let app = test::init_service(App::new().configure(crate::http::routes)).await;
    let concrete = |path: &str| {
        path.replace("{number}", "+12025550199")
            .replace("{id}", "ses_AAAAAAAAAAAAAAAAAAAAAA")
    };
    for (path, method, ..) in ROUTES {
        let method = actix_web::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let request = test::TestRequest::default()
            .method(method.clone())
            .uri(&concrete(path).replace('+', "%2B"))
            .to_request();
        let status = test::call_service(&app, request).await.status();
        assert!(
            status != 404 && status != 405,
            "{method} {path} is not routed: {status}"
        );
    }
    for (path, ..) in OperationalRoutes::ROUTES {
        // Readiness and metrics read the service's state, which this
        // app has none of: routed is all that is asked here.
        let path = path.replace("{file}", "docs.js");
        let request = test::TestRequest::get().uri(&path).to_request();
        let status = test::call_service(&app, request).await.status();
        assert!(
            status != 404 && status != 405,
            "GET {path} is not routed: {status}"
        );
    }
    let request = test::TestRequest::get().uri("/v1/nothing").to_request();
    assert_eq!(test::call_service(&app, request).await.status(), 404);
}

/// `docs/openapi.json` is this document, for readers of the repository
/// and for generating clients without running the service;
/// `RINGRELAY_BLESS=1 cargo test -p ringrelay-server --lib openapi`
/// writes it anew.
#[test]
fn the_repositorys_copy_is_this_document() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let generated = document().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("RINGRELAY_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let copy = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        copy == generated,
        "docs/openapi.json differs from the code's document; run \
         RINGRELAY_BLESS=1 cargo test -p ringrelay-server --lib openapi"
    );
}

#[actix_web::test]
async fn the_handler_serves_the_document() {
    let response = openapi_json().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap();
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, json_document());
}
