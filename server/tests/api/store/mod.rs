//! The store conformance suite: every backend must behave the same (the
//! cases below run on the memory store, a standalone Redis and the shared
//! cluster); what only one backend does is in `backends`.

mod backends;

use std::sync::Arc;
use std::time::Duration;

use ringrelay_server::domain::caller_context::{CallerContext, CallerName, CallerVerification};
use ringrelay_server::domain::credentials::{Credentials, TokenOwner, TokenPolicy};
use ringrelay_server::domain::ids::{CallSid, DestinationId};
use ringrelay_server::domain::phone::{Caller, PhoneNumber, Region};
use ringrelay_server::domain::rules::Route;
use ringrelay_server::domain::session::{
    CancelReason, Claim, Instruction, Session, SessionId, SessionState, Shard,
};
use ringrelay_server::domain::subscriber::{Mode, SpecRules, SubscriberSpec};
use ringrelay_server::domain::time::Timestamp;
use ringrelay_server::store::{
    HISTORY_CAP, MemoryStore, RateLimits as _, SWEEP_GRACE, SessionCreated, SessionStore as _,
    Store, StoreError, SubscriberRecord, SubscriberStore as _, WindowCount,
};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, unique_prefix};

fn store_for(backend: &Backend) -> Arc<dyn Store> {
    match backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        redis => Arc::new(redis.redis_store(&unique_prefix())),
    }
}

/// The key prefix of the shard a session of `subscriber` lives in (see the
/// key table in `src/store/redis/mod.rs`).
fn shard_keys(prefix: &str, subscriber: &str) -> String {
    format!(
        "{prefix}:{{s{:02}}}",
        Shard::of(&number(subscriber)).index()
    )
}

/// Session `id`'s entry in its shard's `life` index: how long until the
/// sweep acts on it, in ms on Redis's clock, and whether it is open (then
/// that is the end of its lifetime, else when its record goes).
async fn session_life_ms(
    conn: &mut ::redis::aio::MultiplexedConnection,
    prefix: &str,
    subscriber: &str,
    id: &SessionId,
) -> (i64, bool) {
    let shard = shard_keys(prefix, subscriber);
    let score: f64 = ::redis::cmd("ZSCORE")
        .arg(format!("{shard}:life"))
        .arg(id.as_str())
        .query_async(conn)
        .await
        .unwrap();
    (
        score.floor() as i64 - redis_now_ms(conn).await,
        score.fract() != 0.0,
    )
}

/// Redis's clock, in ms: what its scripts read as now.
async fn redis_now_ms(conn: &mut ::redis::aio::MultiplexedConnection) -> i64 {
    let (secs, micros): (i64, i64) = ::redis::cmd("TIME").query_async(conn).await.unwrap();
    secs * 1000 + micros / 1000
}

/// Writes a new session, as a ring report does.
pub(crate) async fn create(store: &dyn Store, session: &Session, ttl: Duration) {
    assert_eq!(
        store.create_session(session, ttl).await.unwrap(),
        SessionCreated::Created
    );
}

/// The subscribers forwarding to `number`, as a forwarded call without
/// `ForwardedFrom` finds them.
async fn forwarding_to(store: &dyn Store, number: &PhoneNumber) -> Vec<SubscriberRecord> {
    store
        .candidates_for_forwarded_call(None, number)
        .await
        .unwrap()
        .candidates()
}

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s, Region::default()).unwrap()
}

fn record(subscriber: &str, forwarding: &str, destinations: &[&str]) -> SubscriberRecord {
    let destinations: Vec<_> = destinations
        .iter()
        .map(|id| json!({"id": id, "kind": "client", "address": id}))
        .collect();
    let spec: SubscriberSpec = serde_json::from_value(json!({
        "forwarding_number": forwarding, "destinations": destinations
    }))
    .unwrap();
    let rules = SpecRules {
        region: Region::default(),
        webhooks_can_be_signed: true,
        webhook_targets: ringrelay_server::domain::webhook_target::TargetPolicy::PublicOnly,
    };
    let subscriber = spec.parse(number(subscriber), rules).unwrap();
    let (credentials, _) = Credentials::issue(&subscriber, None, TokenPolicy::Rotate);
    SubscriberRecord {
        subscriber,
        credentials,
    }
}

fn owner_of_destination(subscriber: &str, id: &str) -> TokenOwner {
    TokenOwner::Destination {
        subscriber: number(subscriber),
        destination: DestinationId::parse(id).unwrap(),
    }
}

/// Two handles on one store, as two instances of the service would have:
/// the same memory store twice, or two Redis connections sharing a prefix.
fn two_instances(backend: &Backend) -> [Arc<dyn Store>; 2] {
    match backend {
        Backend::Memory => {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            [Arc::clone(&store), store]
        }
        redis => {
            let prefix = unique_prefix();
            let connect = || -> Arc<dyn Store> { Arc::new(redis.redis_store(&prefix)) };
            [connect(), connect()]
        }
    }
}

fn caller(s: &str) -> Caller {
    Caller::Number(number(s))
}

/// A session whose phone was told to reject the call at `instructed_at`:
/// it awaits the forwarded call.
fn awaiting(subscriber: &str, caller: Caller, instructed_at: Timestamp) -> Session {
    awaiting_with(subscriber, caller, instructed_at, None)
}

fn awaiting_with(
    subscriber: &str,
    caller: Caller,
    instructed_at: Timestamp,
    device_call_id: Option<&str>,
) -> Session {
    let mut session = Session::ringing(
        number(subscriber),
        caller,
        Mode::Auto,
        device_call_id.map(str::to_owned),
        instructed_at,
    );
    session.notified(instructed_at);
    session.instruct(Instruction::Reject, instructed_at);
    assert!(session.awaits_forwarded_call(), "the arrangement awaits");
    session
}

fn claim(call_sid: &str) -> Claim {
    // With what a provider says of the caller, which the stores keep with
    // the claim.
    Claim::new(
        CallSid::parse(call_sid).unwrap(),
        Timestamp::now(),
        "twilio",
        CallerContext {
            name: CallerName::parse("JANE DOE"),
            verification: CallerVerification::Verified,
        },
    )
}

/// Claims in these tests take sessions instructed in the last hour.
fn an_hour_ago() -> Timestamp {
    Timestamp::now().before(Duration::from_secs(3600))
}

fn id_of(session: &Session) -> SessionId {
    session.id().clone()
}

/// `base` plus whole seconds (whole milliseconds survive a round trip).
fn at(base: Timestamp, secs: u64) -> Timestamp {
    base.after(Duration::from_secs(secs))
}

/// What a claim by `call_sid` for `caller` on `subscribers` took, if anything.
async fn claim_for(
    store: &dyn Store,
    subscribers: &[&str],
    caller: &Caller,
    call_sid: &str,
) -> Option<Session> {
    claim_for_result(store, subscribers, caller, call_sid)
        .await
        .unwrap()
}

/// The same, failures included.
async fn claim_for_result(
    store: &dyn Store,
    subscribers: &[&str],
    caller: &Caller,
    call_sid: &str,
) -> Result<Option<Session>, StoreError> {
    let subscribers: Vec<PhoneNumber> = subscribers.iter().map(|s| number(s)).collect();
    store
        .claim_session(
            &subscribers,
            caller,
            &claim(call_sid),
            an_hour_ago(),
            None,
            TTL,
        )
        .await
}

const TTL: Duration = Duration::from_secs(600);
const ALICE: &str = "+12025550191";
const BOB: &str = "+12025550192";
const CAROL: &str = "+12025550193";
const SHARED_FWD: &str = "+12025550100";
const OTHER_FWD: &str = "+12025550101";
const CALLER_A: &str = "+12025550301";
const CALLER_B: &str = "+12025550302";

both_backends! {
    ping_answers => |backend: Backend| async move {
        store_for(&backend).ping().await.unwrap();
    };

    a_written_subscriber_reads_back_equal => |backend: Backend| async move {
        let store = store_for(&backend);
        let alice = record(ALICE, SHARED_FWD, &["desk", "laptop"]);
        assert!(!store.put_subscriber(&alice).await.unwrap(), "first write creates");
        assert_eq!(store.subscriber(&number(ALICE)).await.unwrap(), Some(alice));
        assert_eq!(store.subscriber(&number(BOB)).await.unwrap(), None);
    };

    a_second_write_replaces_and_says_so => |backend: Backend| async move {
        let store = store_for(&backend);
        store.put_subscriber(&record(ALICE, SHARED_FWD, &["desk"])).await.unwrap();
        let replacement = record(ALICE, SHARED_FWD, &["pbx"]);
        assert!(store.put_subscriber(&replacement).await.unwrap());
        assert_eq!(store.subscriber(&number(ALICE)).await.unwrap(), Some(replacement));
    };

    subscribers_sharing_a_forwarding_number_are_all_found_in_order => |backend: Backend| async move {
        let store = store_for(&backend);
        let bob = record(BOB, SHARED_FWD, &["desk"]);
        let alice = record(ALICE, SHARED_FWD, &["desk"]);
        store.put_subscriber(&bob).await.unwrap();
        store.put_subscriber(&alice).await.unwrap();
        assert_eq!(forwarding_to(&*store, &number(SHARED_FWD)).await, vec![alice, bob]);
        assert_eq!(forwarding_to(&*store, &number(OTHER_FWD)).await, vec![]);
    };

    changing_the_forwarding_number_moves_the_index => |backend: Backend| async move {
        let store = store_for(&backend);
        store.put_subscriber(&record(ALICE, SHARED_FWD, &["desk"])).await.unwrap();
        let moved = record(ALICE, OTHER_FWD, &["desk"]);
        store.put_subscriber(&moved).await.unwrap();
        assert_eq!(forwarding_to(&*store, &number(SHARED_FWD)).await, vec![]);
        assert_eq!(forwarding_to(&*store, &number(OTHER_FWD)).await, vec![moved]);
    };

    tokens_lead_to_their_owner => |backend: Backend| async move {
        let store = store_for(&backend);
        let alice = record(ALICE, SHARED_FWD, &["desk", "laptop"]);
        store.put_subscriber(&alice).await.unwrap();
        let creds = &alice.credentials;
        assert_eq!(
            store.token_owner(&creds.device).await.unwrap(),
            Some(TokenOwner::Device { subscriber: number(ALICE) })
        );
        let laptop = DestinationId::parse("laptop").unwrap();
        assert_eq!(
            store.token_owner(&creds.destinations[&laptop]).await.unwrap(),
            Some(owner_of_destination(ALICE, "laptop"))
        );
    };

    replaced_tokens_no_longer_lead_anywhere => |backend: Backend| async move {
        let store = store_for(&backend);
        let first = record(ALICE, SHARED_FWD, &["desk"]);
        store.put_subscriber(&first).await.unwrap();
        let second = record(ALICE, SHARED_FWD, &["desk"]);
        store.put_subscriber(&second).await.unwrap();
        let desk = DestinationId::parse("desk").unwrap();
        assert_eq!(store.token_owner(&first.credentials.device).await.unwrap(), None);
        assert_eq!(store.token_owner(&first.credentials.destinations[&desk]).await.unwrap(), None);
        assert!(store.token_owner(&second.credentials.device).await.unwrap().is_some());
    };

    deleting_removes_the_subscriber_and_its_indexes => |backend: Backend| async move {
        let store = store_for(&backend);
        let alice = record(ALICE, SHARED_FWD, &["desk"]);
        let bob = record(BOB, SHARED_FWD, &["desk"]);
        store.put_subscriber(&alice).await.unwrap();
        store.put_subscriber(&bob).await.unwrap();
        assert!(store.delete_subscriber(&number(ALICE)).await.unwrap());
        assert_eq!(store.subscriber(&number(ALICE)).await.unwrap(), None);
        assert_eq!(store.token_owner(&alice.credentials.device).await.unwrap(), None);
        assert_eq!(forwarding_to(&*store, &number(SHARED_FWD)).await, vec![bob.clone()]);
        assert!(!store.delete_subscriber(&number(ALICE)).await.unwrap(), "a second delete finds nothing");
        assert_eq!(store.subscriber(&number(BOB)).await.unwrap(), Some(bob));
    };

    sessions_read_back_equal_until_unknown => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = Session::ringing(number(ALICE), Caller::Withheld, Mode::Pick, Some("call-1".into()), Timestamp::now());
        create(&*store, &session, Duration::from_secs(60)).await;
        assert_eq!(store.session(session.id()).await.unwrap(), Some(session.clone()));

        session.notified(Timestamp::now());
        assert!(store.update_session(&mut session, Duration::from_secs(60)).await.unwrap());
        assert_eq!(store.session(session.id()).await.unwrap().unwrap().state(), SessionState::Notified);

        let other = Session::ringing(number(ALICE), Caller::Withheld, Mode::Auto, None, Timestamp::now());
        assert_eq!(store.session(other.id()).await.unwrap(), None);
    };

    // --- create_session: a retried ring report finds its session ---

    create_session_returns_the_first_session_when_the_same_device_call_is_reported_again => |backend: Backend| async move {
        let store = store_for(&backend);
        let first = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, Some("call-1".into()), Timestamp::now());
        assert_eq!(store.create_session(&first, TTL).await.unwrap(), SessionCreated::Created);
        let retry = Session::ringing(number(ALICE), caller(CALLER_B), Mode::Pick, Some("call-1".into()), Timestamp::now());

        let created = store.create_session(&retry, TTL).await.unwrap();

        assert_eq!(created, SessionCreated::Existing(Box::new(first.clone())));
        assert_eq!(store.session(first.id()).await.unwrap(), Some(first), "the first is not overwritten");
        assert_eq!(store.session(retry.id()).await.unwrap(), None, "the retry is not written");
    };

    create_session_creates_when_the_device_call_id_or_the_subscriber_differs => |backend: Backend| async move {
        let store = store_for(&backend);
        let first = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, Some("call-1".into()), Timestamp::now());
        store.create_session(&first, TTL).await.unwrap();
        let other_call = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, Some("call-2".into()), Timestamp::now());
        let other_subscriber = Session::ringing(number(BOB), caller(CALLER_A), Mode::Auto, Some("call-1".into()), Timestamp::now());

        let for_other_call = store.create_session(&other_call, TTL).await.unwrap();
        let for_other_subscriber = store.create_session(&other_subscriber, TTL).await.unwrap();

        assert_eq!(for_other_call, SessionCreated::Created);
        assert_eq!(for_other_subscriber, SessionCreated::Created);
        assert_eq!(store.session(first.id()).await.unwrap(), Some(first));
        assert_eq!(store.session(other_call.id()).await.unwrap(), Some(other_call));
        assert_eq!(store.session(other_subscriber.id()).await.unwrap(), Some(other_subscriber));
    };

    create_session_always_creates_when_there_is_no_device_call_id => |backend: Backend| async move {
        let store = store_for(&backend);
        let first = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, None, Timestamp::now());
        let second = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, None, Timestamp::now());

        let created_first = store.create_session(&first, TTL).await.unwrap();
        let created_second = store.create_session(&second, TTL).await.unwrap();

        assert_eq!(created_first, SessionCreated::Created);
        assert_eq!(created_second, SessionCreated::Created);
        assert_eq!(store.session(first.id()).await.unwrap(), Some(first));
        assert_eq!(store.session(second.id()).await.unwrap(), Some(second));
    };

    create_session_returns_the_existing_session_with_its_claim_when_a_claimed_call_is_reported_again => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, Some("call-1".into()), Timestamp::now());
        store.create_session(&session, TTL).await.unwrap();
        session.instruct(Instruction::Reject, Timestamp::now());
        assert!(store.update_session(&mut session, TTL).await.unwrap());
        let claimed = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await.expect("claimed");
        let retry = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, Some("call-1".into()), Timestamp::now());

        let created = store.create_session(&retry, TTL).await.unwrap();

        assert_eq!(created, SessionCreated::Existing(Box::new(claimed)));
    };

    // Regression: the Redis create_session once wrote the session without
    // adding it to the matching index, so a session created already awaiting
    // a forwarded call could not be claimed there (it could on memory).
    create_session_makes_a_session_that_awaits_a_forwarded_call_claimable => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting_with(ALICE, caller(CALLER_A), Timestamp::now(), Some("call-1"));
        assert_eq!(store.create_session(&session, TTL).await.unwrap(), SessionCreated::Created);

        let claimed = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;

        assert_eq!(claimed.map(|s| id_of(&s)), Some(id_of(&session)));
    };

    // --- claim_session: which session a forwarded call takes ---

    claim_session_finds_nothing_when_the_session_does_not_await_a_forwarded_call => |backend: Backend| async move {
        let store = store_for(&backend);
        let now = Timestamp::now();
        let ringing = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, None, now);
        let mut notified = ringing.clone();
        notified.notified(now);
        let mut ignored = notified.clone();
        ignored.instruct(Instruction::Ignore, now);
        for (what, session) in [("ringing", &ringing), ("notified", &notified), ("told to ignore", &ignored)] {
            create(&*store, session, TTL).await;

            let claimed = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;

            assert_eq!(claimed, None, "{what} is not claimable");
        }

        let mut rejected = notified.clone();
        rejected.instruct(Instruction::Reject, now);
        create(&*store, &rejected, TTL).await;
        let claimed = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;

        assert_eq!(claimed.map(|s| id_of(&s)), Some(id_of(&rejected)), "told to reject is claimable");
    };

    claim_session_finds_nothing_when_the_session_already_has_a_call_sid => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        session.apply_claim(claim("CA0"));
        create(&*store, &session, TTL).await;

        let claimed = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;

        assert_eq!(claimed, None);
    };

    claim_session_finds_nothing_when_an_awaiting_session_moved_on => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        session.cancel(CancelReason::CallerHungUp, Timestamp::now()).unwrap();
        assert!(store.update_session(&mut session, TTL).await.unwrap());

        let claimed = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;

        assert_eq!(claimed, None);
    };

    claim_session_takes_the_most_recently_instructed_session_of_the_caller => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let middle = awaiting(ALICE, caller(CALLER_A), at(t0, 1));
        let newest = awaiting(ALICE, caller(CALLER_A), at(t0, 2));
        let oldest = awaiting(ALICE, caller(CALLER_A), t0);
        for session in [&middle, &newest, &oldest] {
            create(&*store, session, TTL).await;
        }

        let mut taken = Vec::new();
        for call_sid in ["CA1", "CA2", "CA3", "CA4"] {
            taken.push(claim_for(&*store, &[ALICE], &caller(CALLER_A), call_sid).await.map(|s| id_of(&s)));
        }

        assert_eq!(taken, vec![Some(id_of(&newest)), Some(id_of(&middle)), Some(id_of(&oldest)), None]);
    };

    claim_session_takes_the_newest_awaiting_session_when_the_caller_is_withheld => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let middle = awaiting(ALICE, Caller::Withheld, at(t0, 1));
        let oldest = awaiting(ALICE, Caller::Withheld, t0);
        let newest = awaiting(ALICE, Caller::Withheld, at(t0, 2));
        for session in [&middle, &oldest, &newest] {
            create(&*store, session, TTL).await;
        }

        let mut taken = Vec::new();
        for call_sid in ["CA1", "CA2", "CA3", "CA4"] {
            taken.push(claim_for(&*store, &[ALICE], &Caller::Withheld, call_sid).await.map(|s| id_of(&s)));
        }

        assert_eq!(taken, vec![Some(id_of(&newest)), Some(id_of(&middle)), Some(id_of(&oldest)), None]);
    };

    claim_session_finds_nothing_when_only_another_caller_awaits => |backend: Backend| async move {
        let store = store_for(&backend);
        let from_a = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &from_a, TTL).await;

        let for_b = claim_for(&*store, &[ALICE], &caller(CALLER_B), "CA1").await;
        let for_withheld = claim_for(&*store, &[ALICE], &Caller::Withheld, "CA2").await;

        assert_eq!(for_b, None);
        assert_eq!(for_withheld, None);
        let for_a = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA3").await;
        assert_eq!(for_a.map(|s| id_of(&s)), Some(id_of(&from_a)), "the session was there for its own caller");
    };

    claim_session_finds_nothing_for_a_numbered_caller_when_only_a_withheld_one_awaits => |backend: Backend| async move {
        let store = store_for(&backend);
        let withheld = awaiting(ALICE, Caller::Withheld, Timestamp::now());
        create(&*store, &withheld, TTL).await;

        let for_a = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;

        assert_eq!(for_a, None);
        let for_withheld = claim_for(&*store, &[ALICE], &Caller::Withheld, "CA2").await;
        assert_eq!(for_withheld.map(|s| id_of(&s)), Some(id_of(&withheld)));
    };

    claim_session_takes_the_most_recent_over_every_candidate_subscriber => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let bobs = awaiting(BOB, caller(CALLER_A), t0);
        let alices = awaiting(ALICE, caller(CALLER_A), at(t0, 1));
        let carols = awaiting(CAROL, caller(CALLER_A), at(t0, 2));
        for session in [&alices, &carols, &bobs] {
            create(&*store, session, TTL).await;
        }

        let mut taken = Vec::new();
        for call_sid in ["CA1", "CA2", "CA3"] {
            taken.push(claim_for(&*store, &[ALICE, BOB], &caller(CALLER_A), call_sid).await.map(|s| id_of(&s)));
        }

        assert_eq!(taken, vec![Some(id_of(&alices)), Some(id_of(&bobs)), None], "Carol is not a candidate");
        let for_carol = claim_for(&*store, &[CAROL], &caller(CALLER_A), "CA4").await;
        assert_eq!(for_carol.map(|s| id_of(&s)), Some(id_of(&carols)), "Carol's session was left alone");
    };

    claim_session_skips_sessions_instructed_before_the_cutoff => |backend: Backend| async move {
        let store = store_for(&backend);
        let now = Timestamp::now();
        let overdue = awaiting(ALICE, caller(CALLER_A), now.before(Duration::from_secs(31)));
        create(&*store, &overdue, TTL).await;
        let the_claim = claim("CA1");
        let unreported = Session::forwarded_without_report(number(ALICE), caller(CALLER_A), Route::default(), the_claim.clone());
        let cutoff = now.before(Duration::from_secs(30));

        let nothing = store
            .claim_session(&[number(ALICE)], &caller(CALLER_A), &claim("CA0"), cutoff, None, TTL)
            .await
            .unwrap();
        let stored_instead = store
            .claim_session(&[number(ALICE)], &caller(CALLER_A), &the_claim, cutoff, Some(&unreported), TTL)
            .await
            .unwrap();

        assert_eq!(nothing, None);
        assert_eq!(stored_instead.map(|s| id_of(&s)), Some(id_of(&unreported)));
        let read = store.session(overdue.id()).await.unwrap().unwrap();
        assert_eq!(read.call_sid(), None, "the overdue session was not taken");
    };

    awaiting_sessions_lists_the_callers_unclaimed_sessions => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now();
        let first = awaiting(ALICE, caller(CALLER_A), t0);
        let second = awaiting(ALICE, caller(CALLER_A), at(t0, 1));
        let other_caller = awaiting(ALICE, caller(CALLER_B), t0);
        let other_subscriber = awaiting(BOB, caller(CALLER_A), t0);
        for session in [&first, &second, &other_caller, &other_subscriber] {
            create(&*store, session, TTL).await;
        }

        let listed = store.awaiting_sessions(&number(ALICE), &caller(CALLER_A)).await.unwrap();
        assert_eq!(listed, vec![id_of(&first), id_of(&second)]);

        claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await.expect("claimed");
        let listed = store.awaiting_sessions(&number(ALICE), &caller(CALLER_A)).await.unwrap();
        assert_eq!(listed, vec![id_of(&first)], "the claimed one is no longer listed");
    };

    a_sweep_hands_each_overdue_session_out_once => |backend: Backend| async move {
        let [one, other] = two_instances(&backend);
        let now = Timestamp::now();
        let overdue_a = awaiting(ALICE, caller(CALLER_A), now.before(Duration::from_secs(40)));
        let overdue_b = awaiting(BOB, caller(CALLER_B), now.before(Duration::from_secs(35)));
        let overdue_but_claimed = awaiting(CAROL, caller(CALLER_A), now.before(Duration::from_secs(33)));
        let in_time = awaiting(ALICE, caller(CALLER_B), now.before(Duration::from_secs(5)));
        for session in [&overdue_a, &overdue_b, &overdue_but_claimed, &in_time] {
            create(&*one, session, TTL).await;
        }
        claim_for(&*one, &[CAROL], &caller(CALLER_A), "CA1").await.expect("claimed");
        let cutoff = now.before(Duration::from_secs(30));

        let first = one.sweep(cutoff, 1).await.unwrap().overdue;
        let rest = other.sweep(cutoff, 10).await.unwrap().overdue;
        let again = other.sweep(cutoff, 10).await.unwrap().overdue;

        assert_eq!(first, vec![id_of(&overdue_a)], "the oldest first, up to the limit");
        assert_eq!(rest, vec![id_of(&overdue_b)], "the other instance takes what is left");
        assert_eq!(again, Vec::<SessionId>::new(), "each is handed out once");
        let later = one.sweep(now.after(Duration::from_secs(1)), 10).await.unwrap().overdue;
        assert_eq!(later, vec![id_of(&in_time)], "a claimed session is never due");
    };

    a_sweep_hands_out_each_session_whose_lifetime_ran_out_once => |backend: Backend| async move {
        let [one, other] = two_instances(&backend);
        let short = Duration::from_millis(20);
        let ringing = |caller_number: &str| {
            Session::ringing(number(ALICE), caller(caller_number), Mode::Pick, None, Timestamp::now())
        };
        let idle = ringing(CALLER_A);
        let mut ended = ringing(CALLER_B);
        ended.cancel(CancelReason::CallerHungUp, Timestamp::now()).unwrap();
        let busy = ringing(CALLER_A);
        let claimed = awaiting(BOB, caller(CALLER_B), Timestamp::now());
        for session in [&idle, &ended, &busy, &claimed] {
            create(&*one, session, short).await;
        }
        // A later write starts a new lifetime; so does a claim.
        create(&*one, &busy, TTL).await;
        claim_for(&*one, &[BOB], &caller(CALLER_B), "CA1").await.expect("claimed");

        let mut taken = Vec::new();
        for _ in 0..500 {
            taken.extend(one.sweep(an_hour_ago(), 10).await.unwrap().idle);
            if !taken.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stored = one.session(&id_of(&idle)).await.unwrap().expect("kept for the sweep to end it");
        assert_eq!(taken, vec![(id_of(&idle), stored.version())], "only the idle one, with its version");
        assert!(other.sweep(an_hour_ago(), 10).await.unwrap().idle.is_empty(), "each is handed out once");
    };

    creating_the_same_session_again_is_not_a_retried_report => |backend: Backend| async move {
        // A create resent after the connection dropped under it must not
        // take its own first write for an earlier report of the call.
        let store = store_for(&backend);
        let session = awaiting_with(ALICE, caller(CALLER_A), Timestamp::now(), Some("call-7"));
        assert_eq!(store.create_session(&session, TTL).await.unwrap(), SessionCreated::Created);
        assert_eq!(store.create_session(&session, TTL).await.unwrap(), SessionCreated::Created);
        let retried_report = awaiting_with(ALICE, caller(CALLER_A), Timestamp::now(), Some("call-7"));
        assert!(
            matches!(store.create_session(&retried_report, TTL).await.unwrap(), SessionCreated::Existing(s) if s.id() == session.id()),
            "a new report of the same call still finds the first"
        );
    };

    a_batch_of_subscribers_put_at_once_is_read_back_whole => |backend: Backend| async move {
        // An import's batch: on a cluster its commands go as one pipeline a
        // node, over keys of every node; written again (a restart's
        // import) with new tokens, the old ones lead nowhere.
        let store = store_for(&backend);
        let batch = || -> Vec<SubscriberRecord> {
            (0..300)
                .map(|i| record(&format!("+1202555{:04}", 1000 + i), &format!("+1415555{:04}", 1000 + i), &["desk"]))
                .collect()
        };
        let first = batch();
        store.put_subscribers(&first).await.unwrap();
        let second = batch();
        store.put_subscribers(&second).await.unwrap();
        let numbers: Vec<PhoneNumber> = second.iter().map(|r| r.subscriber.number.clone()).collect();
        let read = store.subscribers(&numbers).await.unwrap();
        assert_eq!(read.len(), 300);
        for ((got, put), old) in read.iter().zip(&second).zip(&first) {
            let got = got.as_ref().expect("every subscriber is there");
            assert_eq!(got.subscriber, put.subscriber);
            assert_eq!(
                store.token_owner(&put.credentials.device).await.unwrap(),
                Some(TokenOwner::Device { subscriber: put.subscriber.number.clone() })
            );
            assert_eq!(store.token_owner(&old.credentials.device).await.unwrap(), None);
        }
        assert_eq!(
            forwarding_to(&*store, &number("+14155551299")).await[0].subscriber.number,
            number("+12025551299")
        );
    };

    some_subscribers_reads_every_subscriber_up_to_the_limit => |backend: Backend| async move {
        let store = store_for(&backend);
        for number in [ALICE, BOB, CAROL] {
            store.put_subscriber(&record(number, SHARED_FWD, &["desk"])).await.unwrap();
        }
        let mut all: Vec<String> = store.some_subscribers(10).await.unwrap()
            .into_iter().map(|r| r.subscriber.number.as_str().to_owned()).collect();
        all.sort();
        assert_eq!(all, [ALICE, BOB, CAROL]);
        assert_eq!(store.some_subscribers(2).await.unwrap().len(), 2);
        store.delete_subscriber(&number(BOB)).await.unwrap();
        assert_eq!(store.some_subscribers(10).await.unwrap().len(), 2);
    };

    session_for_call_names_the_session_a_call_claimed => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        let sid = |s: &str| CallSid::parse(s).unwrap();
        assert_eq!(store.session_for_call(&sid("CA1"), &[]).await.unwrap(), None);

        claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await.expect("claimed");
        let unreported_claim = claim("CA2");
        let unreported = Session::forwarded_without_report(number(BOB), caller(CALLER_A), Route::default(), unreported_claim.clone());
        store
            .claim_session(&[number(BOB)], &caller(CALLER_A), &unreported_claim, an_hour_ago(), Some(&unreported), TTL)
            .await
            .unwrap();

        // Told its subscribers, told others (the forwarding number's moved
        // on since), or told none: the same session.
        for hint in [&[][..], &[number(ALICE)], &[number(BOB), number(CAROL)]] {
            assert_eq!(store.session_for_call(&sid("CA1"), hint).await.unwrap(), Some(id_of(&session)), "{hint:?}");
            assert_eq!(store.session_for_call(&sid("CA2"), hint).await.unwrap(), Some(id_of(&unreported)), "{hint:?}");
            assert_eq!(store.session_for_call(&sid("CA3"), hint).await.unwrap(), None, "{hint:?}");
        }
    };

    claim_session_takes_the_newest_over_every_candidate_subscriber_when_the_caller_is_withheld => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let bobs = awaiting(BOB, Caller::Withheld, t0);
        let alices = awaiting(ALICE, Caller::Withheld, at(t0, 1));
        let carols = awaiting(CAROL, Caller::Withheld, at(t0, 2));
        for session in [&carols, &bobs, &alices] {
            create(&*store, session, TTL).await;
        }

        let mut taken = Vec::new();
        for call_sid in ["CA1", "CA2", "CA3"] {
            taken.push(claim_for(&*store, &[BOB, ALICE], &Caller::Withheld, call_sid).await.map(|s| id_of(&s)));
        }

        assert_eq!(taken, vec![Some(id_of(&alices)), Some(id_of(&bobs)), None], "Carol is not a candidate");
    };

    a_claimed_session_reads_back_forwarded_with_the_call_sid => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        let the_claim = claim("CA1");

        let claimed = store
            .claim_session(&[number(ALICE)], &caller(CALLER_A), &the_claim, an_hour_ago(), None, TTL)
            .await
            .unwrap();

        let mut expected = session.clone();
        expected.apply_claim(the_claim.clone());
        expected.set_version(1); // the claim is a write
        assert_eq!(expected.state(), SessionState::Forwarded);
        assert_eq!(claimed, Some(expected.clone()));
        assert_eq!(store.session(session.id()).await.unwrap(), Some(expected));
    };

    a_claimed_session_is_not_claimed_again => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await.expect("the first claim takes it");

        let second = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA2").await;

        assert_eq!(second, None);
        let read = store.session(session.id()).await.unwrap().unwrap();
        assert_eq!(read.call_sid().map(CallSid::as_str), Some("CA1"), "the first claim stands");
    };

    a_stale_update_does_not_undo_a_claim => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        let stale = store.session(session.id()).await.unwrap().unwrap();
        assert!(stale.awaits_forwarded_call(), "read before the claim");
        claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await.expect("claimed");

        let mut stale = stale;
        assert!(!store.update_session(&mut stale, TTL).await.unwrap(), "the claim moved the version on");

        let again = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA2").await;
        assert_eq!(again, None, "the stale copy did not make it claimable again");
        let read = store.session(session.id()).await.unwrap().unwrap();
        assert_eq!(read.call_sid().map(CallSid::as_str), Some("CA1"));
        assert_eq!(read.state(), SessionState::Forwarded);
        assert!(read.timeline().forwarded_at.is_some());
    };

    // Regression: the memory index, keyed by (time, id), once kept the entry
    // of an earlier write, and the memory claim did not check for an
    // existing claim, so the session was claimed twice and the second
    // call_sid replaced the first. Redis (ZADD by id, HSETNX) lists it once.
    a_session_written_twice_is_claimed_only_once => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        assert!(store.update_session(&mut session, TTL).await.unwrap());
        claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA1").await.expect("claimed");

        let again = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA2").await;

        assert_eq!(again, None);
        let read = store.session(session.id()).await.unwrap().unwrap();
        assert_eq!(read.call_sid().map(CallSid::as_str), Some("CA1"));
    };

    exactly_one_of_concurrent_claims_gets_the_session => |backend: Backend| async move {
        let instances = two_instances(&backend);
        let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*instances[0], &session, TTL).await;

        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&instances[i % 2]);
                tokio::spawn(async move {
                    claim_for(&*store, &[ALICE], &caller(CALLER_A), &format!("CA{i}")).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(claimed) = task.await.unwrap() {
                winners.push(claimed);
            }
        }

        assert_eq!(winners.len(), 1, "{winners:?}");
        assert_eq!(winners[0].id(), session.id());
        let read = instances[1].session(session.id()).await.unwrap().unwrap();
        assert_eq!(read.call_sid(), winners[0].call_sid(), "the winner's claim is the one stored");
    };

    // Subscribers of different shards sharing a forwarding number: the
    // Redis claim looks at every shard first, then claims shard by shard.
    concurrent_claims_over_subscribers_of_several_shards_take_each_session_once => |backend: Backend| async move {
        assert_ne!(Shard::of(&number(ALICE)), Shard::of(&number(BOB)), "the case needs two shards");
        let instances = two_instances(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let alices = awaiting(ALICE, caller(CALLER_A), t0);
        let bobs = awaiting(BOB, caller(CALLER_A), at(t0, 1));
        for session in [&alices, &bobs] {
            create(&*instances[0], session, TTL).await;
        }

        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&instances[i % 2]);
                tokio::spawn(async move {
                    claim_for(&*store, &[ALICE, BOB], &caller(CALLER_A), &format!("CA{i}")).await
                })
            })
            .collect();
        let mut winners: Vec<SessionId> = Vec::new();
        for task in tasks {
            if let Some(claimed) = task.await.unwrap() {
                winners.push(id_of(&claimed));
            }
        }

        winners.sort();
        let mut expected = vec![id_of(&alices), id_of(&bobs)];
        expected.sort();
        assert_eq!(winners, expected, "two claims won, one per session");
    };

    a_retried_claim_over_several_shards_gets_the_session_it_took => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let alices = awaiting(ALICE, caller(CALLER_A), t0);
        let bobs = awaiting(BOB, caller(CALLER_A), at(t0, 1));
        for session in [&alices, &bobs] {
            create(&*store, session, TTL).await;
        }

        let first = claim_for(&*store, &[ALICE, BOB], &caller(CALLER_A), "CA1").await.map(|s| id_of(&s));
        let retried = claim_for(&*store, &[ALICE, BOB], &caller(CALLER_A), "CA1").await.map(|s| id_of(&s));

        assert_eq!(first, Some(id_of(&bobs)), "the most recent");
        assert_eq!(retried, first, "the same call gets the same session");
        let other = claim_for(&*store, &[ALICE, BOB], &caller(CALLER_A), "CA2").await.map(|s| id_of(&s));
        assert_eq!(other, Some(id_of(&alices)), "another call gets the other one");
    };

    a_claim_over_subscribers_of_one_shard_takes_the_most_recent => |backend: Backend| async move {
        let alice_shard = Shard::of(&number(ALICE));
        let neighbour = (0..10_000)
            .map(|n| format!("+1202556{n:04}"))
            .find(|n| Shard::of(&number(n)) == alice_shard)
            .expect("a number in Alice's shard");
        let store = store_for(&backend);
        let t0 = Timestamp::now().before(Duration::from_secs(10));
        let neighbours = awaiting(&neighbour, caller(CALLER_A), t0);
        let alices = awaiting(ALICE, caller(CALLER_A), at(t0, 1));
        for session in [&neighbours, &alices] {
            create(&*store, session, TTL).await;
        }

        let first = claim_for(&*store, &[ALICE, &neighbour], &caller(CALLER_A), "CA1").await.map(|s| id_of(&s));
        let second = claim_for(&*store, &[ALICE, &neighbour], &caller(CALLER_A), "CA2").await.map(|s| id_of(&s));

        assert_eq!(first, Some(id_of(&alices)));
        assert_eq!(second, Some(id_of(&neighbours)));
    };

    claim_session_stores_the_unreported_session_when_nothing_matches => |backend: Backend| async move {
        let store = store_for(&backend);
        let the_claim = claim("CA1");
        let unreported = Session::forwarded_without_report(number(ALICE), caller(CALLER_A), Route::default(), the_claim.clone());

        let claimed = store
            .claim_session(&[number(ALICE)], &caller(CALLER_A), &the_claim, an_hour_ago(), Some(&unreported), TTL)
            .await
            .unwrap();

        assert_eq!(claimed, Some(unreported.clone()));
        assert_eq!(store.session(unreported.id()).await.unwrap(), Some(unreported));
        let next = claim_for(&*store, &[ALICE], &caller(CALLER_A), "CA2").await;
        assert_eq!(next, None, "the unreported session does not await a forwarded call");
    };

    claim_session_leaves_the_unreported_session_unstored_when_a_session_matches => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
        create(&*store, &session, TTL).await;
        let the_claim = claim("CA1");
        let unreported = Session::forwarded_without_report(number(ALICE), caller(CALLER_A), Route::default(), the_claim.clone());

        let claimed = store
            .claim_session(&[number(ALICE)], &caller(CALLER_A), &the_claim, an_hour_ago(), Some(&unreported), TTL)
            .await
            .unwrap();

        assert_eq!(claimed.map(|s| id_of(&s)), Some(id_of(&session)));
        assert_eq!(store.session(unreported.id()).await.unwrap(), None);
    };

    // --- candidates_for_forwarded_call ---

    candidates_are_the_forwarded_from_subscriber_alone_when_it_is_known => |backend: Backend| async move {
        let store = store_for(&backend);
        let alice = record(ALICE, SHARED_FWD, &["desk"]);
        let bob = record(BOB, SHARED_FWD, &["desk"]);
        let carol = record(CAROL, OTHER_FWD, &["desk"]);
        for r in [&alice, &bob, &carol] {
            store.put_subscriber(r).await.unwrap();
        }

        let from_bob = store.candidates_for_forwarded_call(Some(&number(BOB)), &number(SHARED_FWD)).await.unwrap().candidates();
        let from_carol = store.candidates_for_forwarded_call(Some(&number(CAROL)), &number(SHARED_FWD)).await.unwrap().candidates();

        assert_eq!(from_bob, vec![bob]);
        assert_eq!(from_carol, vec![carol], "a known ForwardedFrom wins even off its forwarding number");
    };

    candidates_are_every_subscriber_forwarding_to_the_number_in_order_when_forwarded_from_is_absent_or_unknown => |backend: Backend| async move {
        let store = store_for(&backend);
        let alice = record(ALICE, SHARED_FWD, &["desk"]);
        let bob = record(BOB, SHARED_FWD, &["desk"]);
        let carol = record(CAROL, SHARED_FWD, &["desk"]);
        let elsewhere = record("+12025550194", OTHER_FWD, &["desk"]);
        for r in [&carol, &elsewhere, &alice, &bob] {
            store.put_subscriber(r).await.unwrap();
        }
        let unknown = number("+12025550199");

        let without = store.candidates_for_forwarded_call(None, &number(SHARED_FWD)).await.unwrap().candidates();
        let from_unknown = store.candidates_for_forwarded_call(Some(&unknown), &number(SHARED_FWD)).await.unwrap().candidates();

        assert_eq!(without, vec![alice.clone(), bob.clone(), carol.clone()]);
        assert_eq!(from_unknown, vec![alice, bob, carol]);
    };

    candidates_are_empty_when_neither_forwarded_from_nor_the_number_is_known => |backend: Backend| async move {
        let store = store_for(&backend);
        store.put_subscriber(&record(ALICE, SHARED_FWD, &["desk"])).await.unwrap();
        let unknown = number("+12025550199");

        let without = store.candidates_for_forwarded_call(None, &number(OTHER_FWD)).await.unwrap().candidates();
        let from_unknown = store.candidates_for_forwarded_call(Some(&unknown), &number(OTHER_FWD)).await.unwrap().candidates();

        assert_eq!(without, vec![]);
        assert_eq!(from_unknown, vec![]);
    };

    // --- hit: fixed-window counters ---

    hits_count_up_within_a_window_and_tell_when_it_resets => |backend: Backend| async move {
        let store = store_for(&backend);
        let window = Duration::from_secs(60);

        let mut counts: Vec<WindowCount> = Vec::new();
        for _ in 0..3 {
            counts.push(store.hit("ip:1", window).await.unwrap());
        }

        let hits: Vec<u64> = counts.iter().map(|c| c.hits).collect();
        assert_eq!(hits, vec![1, 2, 3]);
        for count in &counts {
            assert!(count.resets_in > Duration::ZERO && count.resets_in <= window, "{count:?}");
        }
    };

    subscribers_are_listed_in_number_order_a_page_at_a_time => |backend: Backend| async move {
        let store = store_for(&backend);
        for who in [CAROL, ALICE, BOB] {
            store.put_subscriber(&record(who, SHARED_FWD, &["desk"])).await.unwrap();
        }
        let numbers = |records: Vec<SubscriberRecord>| -> Vec<String> {
            records.into_iter().map(|r| r.subscriber.number.as_str().to_owned()).collect()
        };
        assert_eq!(numbers(store.list_subscribers(None, 10).await.unwrap()), [ALICE, BOB, CAROL]);
        assert_eq!(numbers(store.list_subscribers(None, 2).await.unwrap()), [ALICE, BOB]);
        assert_eq!(numbers(store.list_subscribers(Some(&number(BOB)), 2).await.unwrap()), [CAROL]);
        assert_eq!(numbers(store.list_subscribers(Some(&number(CAROL)), 2).await.unwrap()), Vec::<String>::new());
        // A replaced subscriber is listed once; a deleted one is not listed.
        let replaced = record(ALICE, OTHER_FWD, &["pbx"]);
        store.put_subscriber(&replaced).await.unwrap();
        store.delete_subscriber(&number(BOB)).await.unwrap();
        let listed = store.list_subscribers(None, 10).await.unwrap();
        assert_eq!(listed, vec![replaced, store.subscriber(&number(CAROL)).await.unwrap().unwrap()]);
    };

    a_subscribers_history_lists_open_and_ended_sessions_newest_first => |backend: Backend| async move {
        let store = store_for(&backend);
        let base = an_hour_ago();
        let first = awaiting(ALICE, caller(CALLER_A), at(base, 1));
        let mut second = awaiting(ALICE, caller(CALLER_B), at(base, 2));
        let other = awaiting(BOB, caller(CALLER_A), at(base, 3));
        for session in [&first, &second, &other] {
            assert_eq!(store.create_session(session, TTL).await.unwrap(), SessionCreated::Created);
        }
        second.cancel(CancelReason::CallerHungUp, at(base, 4)).unwrap();
        assert!(store.update_session(&mut second, TTL).await.unwrap());

        let listed = store.session_history(&number(ALICE)).await.unwrap();
        let ids: Vec<SessionId> = listed.iter().map(id_of).collect();
        assert_eq!(ids, vec![id_of(&second), id_of(&first)]);
        assert_eq!(listed[0].state(), SessionState::Cancelled);
        assert_eq!(listed[0], store.session(second.id()).await.unwrap().unwrap(), "as read alone");
        assert_eq!(store.session_history(&number(BOB)).await.unwrap().len(), 1);
        assert_eq!(store.session_history(&number(CAROL)).await.unwrap(), vec![]);
    };

    a_history_keeps_the_newest_sessions_up_to_the_cap => |backend: Backend| async move {
        let store = store_for(&backend);
        let base = an_hour_ago();
        let mut ids = Vec::new();
        for i in 0..HISTORY_CAP as u64 + 5 {
            let mut session = Session::ringing(number(ALICE), caller(CALLER_A), Mode::Auto, None, at(base, i));
            session.cancel(CancelReason::CallerHungUp, at(base, i)).unwrap();
            create(&*store, &session, TTL).await;
            ids.push(id_of(&session));
        }
        let listed: Vec<SessionId> = store.session_history(&number(ALICE)).await.unwrap().iter().map(id_of).collect();
        let newest: Vec<SessionId> = ids.iter().rev().take(HISTORY_CAP).cloned().collect();
        assert_eq!(listed, newest);
        // The ended sessions that dropped out are gone; an open one stays.
        for dropped in &ids[..5] {
            assert_eq!(store.session(dropped).await.unwrap(), None);
        }
        assert!(store.session(&ids[5]).await.unwrap().is_some());
        let open = Session::ringing(number(BOB), caller(CALLER_A), Mode::Auto, None, at(base, 0));
        create(&*store, &open, TTL).await;
        for i in 1..=HISTORY_CAP as u64 {
            let mut session = Session::ringing(number(BOB), caller(CALLER_A), Mode::Auto, None, at(base, i));
            session.cancel(CancelReason::CallerHungUp, at(base, i)).unwrap();
            create(&*store, &session, TTL).await;
        }
        assert!(store.session(open.id()).await.unwrap().is_some(), "an open session is never dropped");
        assert_eq!(store.session_history(&number(BOB)).await.unwrap().len(), HISTORY_CAP);
    };

    a_forwarded_call_no_report_announced_is_listed => |backend: Backend| async move {
        let store = store_for(&backend);
        let unreported = Session::forwarded_without_report(number(ALICE), caller(CALLER_A), Route::default(), claim("CAunreported"));
        let stored = store
            .claim_session(&[number(ALICE)], &caller(CALLER_A), &claim("CAunreported"), an_hour_ago(), Some(&unreported), TTL)
            .await
            .unwrap()
            .unwrap();
        let listed: Vec<SessionId> = store.session_history(&number(ALICE)).await.unwrap().iter().map(id_of).collect();
        assert_eq!(listed, vec![id_of(&stored)]);
    };

    the_global_listing_pages_through_every_subscribers_sessions_newest_first => |backend: Backend| async move {
        let store = store_for(&backend);
        let base = Timestamp::now();
        let sessions: Vec<Session> = [(ALICE, 1), (BOB, 3), (CAROL, 2), (ALICE, 4)]
            .into_iter()
            .map(|(subscriber, secs)| Session::ringing(number(subscriber), caller(CALLER_A), Mode::Auto, None, at(base, secs)))
            .collect();
        for session in &sessions {
            create(&*store, session, TTL).await;
        }
        let first = store.recent_sessions(None, 2).await.unwrap();
        assert_eq!(first.iter().map(id_of).collect::<Vec<_>>(), vec![id_of(&sessions[3]), id_of(&sessions[1])]);
        let last = &first[1];
        let rest = store.recent_sessions(Some((last.began_at_millis(), last.id())), 10).await.unwrap();
        assert_eq!(rest.iter().map(id_of).collect::<Vec<_>>(), vec![id_of(&sessions[2]), id_of(&sessions[0])]);
    };

    hits_on_separate_keys_count_separately => |backend: Backend| async move {
        let store = store_for(&backend);
        let window = Duration::from_secs(60);
        store.hit("ip:1", window).await.unwrap();
        store.hit("ip:1", window).await.unwrap();

        let other = store.hit("ip:2", window).await.unwrap();
        let first_again = store.hit("ip:1", window).await.unwrap();

        assert_eq!(other.hits, 1);
        assert_eq!(first_again.hits, 3);
    };
}
