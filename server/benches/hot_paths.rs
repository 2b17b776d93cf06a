//! Micro-benchmarks of the hot paths of a forwarded call: webhook signature
//! checks, provider markup rendering, phone-number parsing and the in-memory
//! store. Run with `cargo bench --bench hot_paths` (add `-- --quick` for a
//! short run). Timings live here, never in the tests.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ringrelay_server::domain::caller_context::CallerContext;
use ringrelay_server::domain::credentials::{Credentials, TokenPolicy};
use ringrelay_server::domain::ids::CallSid;
use ringrelay_server::domain::phone::{Caller, PhoneNumber, Region};
use ringrelay_server::domain::session::{Claim, Instruction, Session};
use ringrelay_server::domain::subscriber::{
    ClientIdentity, Mode, SipUri, SpecRules, SubscriberSpec, Target,
};
use ringrelay_server::domain::time::Timestamp;
use ringrelay_server::flow::model::{CallScript, Dial, DialTarget, Step};
use ringrelay_server::providers::plivo::signature::{self as plivo_signature, Method};
use ringrelay_server::providers::twilio::signature as twilio_signature;
use ringrelay_server::providers::twiml::render::Dialect;
use ringrelay_server::providers::{plivo, twiml};
use ringrelay_server::store::{
    MemoryStore, SessionStore as _, SubscriberRecord, SubscriberStore as _,
};
use serde_json::json;

fn us() -> Region {
    Region::default()
}

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s, us()).expect("a valid number")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// --- signatures ---

/// A voice webhook as Twilio posts it to the voice URL of a forwarding
/// number (a call the carrier forwarded).
fn twilio_voice_params() -> Vec<(String, String)> {
    pairs(&[
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "ringing"),
        ("Called", "+12025550100"),
        ("CalledCountry", "US"),
        ("Caller", "+12025550301"),
        ("CallerCountry", "US"),
        ("Direction", "inbound"),
        ("ForwardedFrom", "+12025550191"),
        ("From", "+12025550301"),
        ("FromCountry", "US"),
        ("To", "+12025550100"),
        ("ToCountry", "US"),
    ])
}

/// An answer callback as Plivo posts it.
fn plivo_answer_params() -> Vec<(String, String)> {
    pairs(&[
        ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
        ("ALegUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
        ("BillRate", "0.0085"),
        ("CallStatus", "ringing"),
        ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
        ("CallerName", "+12025550301"),
        ("Direction", "inbound"),
        ("Event", "StartApp"),
        ("ForwardedFrom", "12025550191"),
        ("From", "12025550301"),
        ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
        ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
        ("SessionStart", "2026-04-08 11:34:33.238707"),
        ("To", "12025550100"),
    ])
}

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("signatures");

    let token = b"0123456789abcdef0123456789abcdef";
    let url = "https://relay.example.com/twilio/voice";
    let params = twilio_voice_params();
    let signature = twilio_signature::sign(token, url, &params);
    assert_eq!(
        twilio_signature::verify(token, url, &params, Some(&signature)),
        Ok(())
    );
    group.bench_function("twilio_verify", |b| {
        b.iter(|| {
            twilio_signature::verify(
                black_box(token),
                black_box(url),
                black_box(&params),
                black_box(Some(signature.as_str())),
            )
        })
    });

    let token = b"Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    let url = "https://relay.example.com/plivo/answer";
    let nonce = "31627761595286130198";
    let params = plivo_answer_params();
    let signature = plivo_signature::sign_v3(token, Method::Post, url, &params, nonce);
    assert_eq!(
        plivo_signature::verify_v3(
            token,
            Method::Post,
            url,
            &params,
            Some(nonce),
            Some(&signature)
        ),
        Ok(())
    );
    group.bench_function("plivo_verify_v3", |b| {
        b.iter(|| {
            plivo_signature::verify_v3(
                black_box(token),
                black_box(Method::Post),
                black_box(url),
                black_box(&params),
                black_box(Some(nonce)),
                black_box(Some(signature.as_str())),
            )
        })
    });

    group.finish();
}

// --- markup ---

const ACTION_URL: &str = "https://relay.example.com/twilio/dial-status?session=s_0123456789abcdef";

fn single_dial() -> CallScript {
    CallScript(vec![Step::Dial(Dial {
        targets: vec![DialTarget {
            target: Target::Phone(number("+12025550201")),
            pickup_url: None,
            screened: false,
        }],
        caller_id: Some(number("+12025550301")),
        timeout_secs: 20,
        action_url: ACTION_URL.to_owned(),
        screen_url: None,
        leg_events_url: None,
        record_url: None,
        ring_tone: None,
    })])
}

fn simultaneous_dial() -> CallScript {
    let target = |target| DialTarget {
        target,
        pickup_url: Some(ACTION_URL.replace("dial-status", "screen")),
        screened: false,
    };
    CallScript(vec![Step::Dial(Dial {
        targets: vec![
            target(Target::Phone(number("+12025550201"))),
            target(Target::Sip(
                SipUri::parse("sip:alice@pbx.example.com").expect("a SIP URI"),
            )),
            target(Target::Client(
                ClientIdentity::parse("alice").expect("a client identity"),
            )),
        ],
        caller_id: Some(number("+12025550301")),
        timeout_secs: 20,
        action_url: ACTION_URL.to_owned(),
        screen_url: None,
        leg_events_url: None,
        record_url: None,
        ring_tone: None,
    })])
}

fn voicemail() -> CallScript {
    CallScript(vec![
        Step::Say("Please leave a message after the tone.".to_owned()),
        Step::Record {
            action_url: "https://relay.example.com/twilio/voicemail?session=s_0123456789abcdef"
                .to_owned(),
            max_length_secs: 120,
            transcribe_url: None,
        },
    ])
}

fn markup(c: &mut Criterion) {
    let mut group = c.benchmark_group("markup");
    let scripts = [
        ("single_dial", single_dial()),
        ("simultaneous_dial", simultaneous_dial()),
        ("voicemail", voicemail()),
    ];
    for (name, script) in &scripts {
        group.bench_function(format!("twiml/{name}"), |b| {
            b.iter(|| twiml::render::render(black_box(script), &Dialect::TWILIO))
        });
        group.bench_function(format!("plivo_xml/{name}"), |b| {
            b.iter(|| plivo::xml::render(black_box(script)))
        });
    }
    group.finish();
}

// --- phone ---

fn phone(c: &mut Criterion) {
    let mut group = c.benchmark_group("phone");
    let region = us();
    group.bench_function("parse_e164", |b| {
        b.iter(|| PhoneNumber::parse(black_box("+12025550100"), black_box(region)))
    });
    group.bench_function("parse_national_us", |b| {
        b.iter(|| PhoneNumber::parse(black_box("(202) 555-0100"), black_box(region)))
    });
    group.bench_function("caller_withheld_marker", |b| {
        b.iter(|| Caller::parse(black_box(Some("+266696687")), black_box(region)))
    });
    group.bench_function("caller_number", |b| {
        b.iter(|| Caller::parse(black_box(Some("+12025550301")), black_box(region)))
    });
    group.finish();
}

// --- memory_store ---

const SUBSCRIBERS: usize = 1_000;
/// Subscribers per forwarding number (the numbers are shared in a pool).
const PER_FORWARDING_NUMBER: usize = 10;
const TTL: Duration = Duration::from_secs(600);
/// Sessions written to one store in the put/claim bench before a fresh one.
const SESSIONS_PER_STORE: usize = 1_000;

/// Subscriber `i` of the 1 000: the UK drama range 020 7946 0000–0999.
fn subscriber_number(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+44207946{i:04}"), us()).expect("a valid UK number")
}

/// The forwarding number of subscriber `i`: one of 100 US numbers.
fn forwarding_number(i: usize) -> PhoneNumber {
    number(&format!("+120255501{:02}", i / PER_FORWARDING_NUMBER))
}

/// A record built as the admin API builds one: spec → parse → credentials.
fn record(i: usize) -> SubscriberRecord {
    let spec: SubscriberSpec = serde_json::from_value(json!({
        "forwarding_number": forwarding_number(i).as_str(),
        "destinations": [
            {"id": "desk", "kind": "phone", "address": "+12025550201"},
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com"}
        ]
    }))
    .expect("a valid spec");
    let rules = SpecRules {
        region: us(),
        webhooks_can_be_signed: true,
        webhook_targets: ringrelay_server::domain::webhook_target::TargetPolicy::PublicOnly,
    };
    let subscriber = spec
        .parse(subscriber_number(i), rules)
        .expect("a valid subscriber");
    let (credentials, _) = Credentials::issue(&subscriber, None, TokenPolicy::Rotate);
    SubscriberRecord {
        subscriber,
        credentials,
    }
}

/// A session whose phone was told to reject the call: it awaits the
/// forwarded call.
fn awaiting(subscriber: &PhoneNumber, caller: &Caller) -> Session {
    let now = Timestamp::now();
    let mut session = Session::ringing(subscriber.clone(), caller.clone(), Mode::Auto, None, now);
    session.notified(now);
    session.instruct(Instruction::Reject, now);
    assert!(session.awaits_forwarded_call());
    session
}

fn memory_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let store = MemoryStore::new();
    let records: Vec<SubscriberRecord> = (0..SUBSCRIBERS).map(record).collect();
    rt.block_on(async {
        for record in &records {
            store.put_subscriber(record).await.expect("stored");
        }
    });

    let mut group = c.benchmark_group("memory_store");

    let known = subscriber_number(500);
    let to = forwarding_number(500);
    let found = rt
        .block_on(store.candidates_for_forwarded_call(Some(&known), &to))
        .expect("answers");
    assert_eq!(found.candidates(), vec![records[500].clone()]);
    group.bench_function("candidates/forwarded_from_known", |b| {
        b.to_async(&rt)
            .iter(|| store.candidates_for_forwarded_call(black_box(Some(&known)), black_box(&to)))
    });

    let found = rt
        .block_on(store.candidates_for_forwarded_call(None, &to))
        .expect("answers");
    assert_eq!(found.candidates().len(), PER_FORWARDING_NUMBER);
    group.bench_function("candidates/by_forwarding_number_10_of_1000", |b| {
        b.to_async(&rt)
            .iter(|| store.candidates_for_forwarded_call(black_box(None), black_box(&to)))
    });

    let subscriber = subscriber_number(500);
    let caller = Caller::Number(number("+12025550301"));
    let subscribers = [subscriber.clone()];
    let claim = Claim::new(
        CallSid::parse("CA0123456789abcdef0123456789abcdef").expect("a call id"),
        Timestamp::now(),
        "twilio",
        CallerContext::default(),
    );
    // Each cycle needs a session never claimed before (a claim sticks to its
    // id), so they are made before the clock starts. Claimed sessions stay
    // stored until their TTL, so the cycles run in rounds of at most
    // `SESSIONS_PER_STORE`, each on a fresh store made and dropped off the
    // clock: the session map stays the size of a busy instance's instead of
    // growing with the iteration count. (A claim does not read subscribers,
    // so these stores need not hold them.)
    group.bench_function("create_session_then_claim", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let sessions: Vec<Session> =
                (0..iters).map(|_| awaiting(&subscriber, &caller)).collect();
            let (subscribers, caller, claim) = (&subscribers, &caller, &claim);
            async move {
                let mut elapsed = Duration::ZERO;
                for round in sessions.chunks(SESSIONS_PER_STORE) {
                    let store = MemoryStore::new();
                    let start = Instant::now();
                    for session in round {
                        store
                            .create_session(black_box(session), TTL)
                            .await
                            .expect("written");
                        let claimed = store
                            .claim_session(
                                black_box(subscribers),
                                black_box(caller),
                                black_box(claim),
                                claim.forwarded_at.before(TTL),
                                None,
                                TTL,
                            )
                            .await
                            .expect("answers");
                        black_box(claimed);
                    }
                    elapsed += start.elapsed();
                    // Each cycle claimed its own session (checked off the
                    // clock, on the last one of the round).
                    let last = round.last().expect("chunks are not empty");
                    let read = store.session(last.id()).await.expect("answers");
                    assert_eq!(
                        read.and_then(|s| s.call_sid().cloned()),
                        Some(claim.call_sid.clone())
                    );
                }
                elapsed
            }
        })
    });

    let session = awaiting(&subscriber, &caller);
    rt.block_on(store.create_session(&session, TTL))
        .expect("written");
    let read = rt.block_on(store.session(session.id())).expect("answers");
    assert_eq!(read.map(|s| s.id().clone()), Some(session.id().clone()));
    group.bench_function("session_read", |b| {
        b.to_async(&rt)
            .iter(|| store.session(black_box(session.id())))
    });

    group.finish();
}

criterion_group!(benches, signatures, markup, phone, memory_store);
criterion_main!(benches);
