//! The store conformance suite: every backend must behave the same.

use std::sync::Arc;
use std::time::Duration;

use ringrelay::domain::credentials::{Credentials, TokenOwner, TokenPolicy};
use ringrelay::domain::phone::{Caller, PhoneNumber, Region};
use ringrelay::domain::session::{Session, SessionState};
use ringrelay::domain::subscriber::{DestinationId, Mode, SpecRules, SubscriberSpec};
use ringrelay::store::{MemoryStore, RedisStore, Store, StoreError, SubscriberRecord};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, unique_prefix};

fn store_for(backend: &Backend) -> Arc<dyn Store> {
    match backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Redis(redis) => {
            Arc::new(RedisStore::connect(&redis.url(), &unique_prefix()).unwrap())
        }
    }
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

const ALICE: &str = "+12025550191";
const BOB: &str = "+12025550192";
const SHARED_FWD: &str = "+12025550100";
const OTHER_FWD: &str = "+12025550101";

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
        assert_eq!(store.subscribers_forwarding_to(&number(SHARED_FWD)).await.unwrap(), vec![alice, bob]);
        assert_eq!(store.subscribers_forwarding_to(&number(OTHER_FWD)).await.unwrap(), vec![]);
    };

    changing_the_forwarding_number_moves_the_index => |backend: Backend| async move {
        let store = store_for(&backend);
        store.put_subscriber(&record(ALICE, SHARED_FWD, &["desk"])).await.unwrap();
        let moved = record(ALICE, OTHER_FWD, &["desk"]);
        store.put_subscriber(&moved).await.unwrap();
        assert_eq!(store.subscribers_forwarding_to(&number(SHARED_FWD)).await.unwrap(), vec![]);
        assert_eq!(store.subscribers_forwarding_to(&number(OTHER_FWD)).await.unwrap(), vec![moved]);
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
        assert_eq!(store.subscribers_forwarding_to(&number(SHARED_FWD)).await.unwrap(), vec![bob.clone()]);
        assert!(!store.delete_subscriber(&number(ALICE)).await.unwrap(), "a second delete finds nothing");
        assert_eq!(store.subscriber(&number(BOB)).await.unwrap(), Some(bob));
    };

    sessions_read_back_equal_until_unknown => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = Session::ringing(number(ALICE), Caller::Withheld, Mode::Pick, Some("call-1".into()));
        store.put_session(&session, Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.session(&session.id).await.unwrap(), Some(session.clone()));

        session.state = SessionState::Notified;
        store.put_session(&session, Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.session(&session.id).await.unwrap().unwrap().state, SessionState::Notified);

        let other = Session::ringing(number(ALICE), Caller::Withheld, Mode::Auto, None);
        assert_eq!(store.session(&other.id).await.unwrap(), None);
    };
}

#[tokio::test(start_paused = true)]
async fn memory_sessions_expire_after_their_ttl() {
    let store = MemoryStore::new();
    let session = Session::ringing(number(ALICE), Caller::Withheld, Mode::Auto, None);
    store
        .put_session(&session, Duration::from_secs(120))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(store.session(&session.id).await.unwrap().is_some());
    // A write renews the lifetime: the TTL counts from the last change.
    store
        .put_session(&session, Duration::from_secs(120))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(store.session(&session.id).await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(store.session(&session.id).await.unwrap(), None);
}

#[tokio::test]
async fn redis_sessions_carry_the_ttl_and_keys_stay_under_the_prefix() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let store = RedisStore::connect(&redis.url(), &prefix).unwrap();
    let session = Session::ringing(number(ALICE), Caller::Withheld, Mode::Auto, None);
    store
        .put_session(&session, Duration::from_secs(120))
        .await
        .unwrap();
    store
        .put_subscriber(&record(ALICE, SHARED_FWD, &["desk"]))
        .await
        .unwrap();

    let mut conn = redis.connection().await;
    let ttl_ms: i64 = ::redis::cmd("PTTL")
        .arg(format!("{prefix}:ses:{}", session.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((119_000..=120_000).contains(&ttl_ms), "PTTL {ttl_ms}");
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with(&format!("{prefix}:"))),
        "{keys:?}"
    );
}

#[tokio::test]
async fn redis_stores_with_different_prefixes_do_not_see_each_other() {
    let backend = Backend::redis();
    let url = backend.test_redis().url();
    let a = RedisStore::connect(&url, &unique_prefix()).unwrap();
    let b = RedisStore::connect(&url, &unique_prefix()).unwrap();
    a.put_subscriber(&record(ALICE, SHARED_FWD, &["desk"]))
        .await
        .unwrap();
    assert_eq!(b.subscriber(&number(ALICE)).await.unwrap(), None);
    assert_eq!(
        b.subscribers_forwarding_to(&number(SHARED_FWD))
            .await
            .unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn a_stopped_redis_is_reported_unavailable() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let store = RedisStore::connect(&redis.url(), &unique_prefix()).unwrap();
    store.ping().await.unwrap();
    redis.stop();
    let err = store.subscriber(&number(ALICE)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}
