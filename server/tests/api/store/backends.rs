//! What only one backend does: the memory store's lifetimes and windows on
//! tokio's clock (paused here), and Redis's keys, TTLs and outages.

use super::*;

#[tokio::test(start_paused = true)]
async fn memory_sessions_expire_after_their_ttl() {
    let store = MemoryStore::new();
    let session = Session::ringing(
        number(ALICE),
        Caller::Withheld,
        Mode::Auto,
        None,
        Timestamp::now(),
    );
    create(&store, &session, Duration::from_secs(120)).await;
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(store.session(session.id()).await.unwrap().is_some());
    // A write renews the lifetime: the TTL counts from the last change.
    create(&store, &session, Duration::from_secs(120)).await;
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(store.session(session.id()).await.unwrap().is_some());
    // One with no outcome is kept a little longer, for the sweep to end it.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(store.session(session.id()).await.unwrap().is_some());
    tokio::time::advance(SWEEP_GRACE).await;
    assert_eq!(store.session(session.id()).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn memory_ended_sessions_expire_at_their_ttl() {
    let store = MemoryStore::new();
    let mut session = Session::ringing(
        number(ALICE),
        Caller::Withheld,
        Mode::Auto,
        None,
        Timestamp::now(),
    );
    session
        .cancel(CancelReason::CallerHungUp, Timestamp::now())
        .unwrap();
    create(&store, &session, Duration::from_secs(120)).await;
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(store.session(session.id()).await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(store.session(session.id()).await.unwrap(), None);
}

#[tokio::test]
async fn redis_sessions_carry_the_ttl_and_keys_stay_under_the_prefix() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let store = crate::helpers::redis_store(&redis.url(), &prefix);
    let session = Session::ringing(
        number(ALICE),
        Caller::Withheld,
        Mode::Auto,
        None,
        Timestamp::now(),
    );
    create(&store, &session, Duration::from_secs(120)).await;
    store
        .put_subscriber(&record(ALICE, SHARED_FWD, &["desk"]))
        .await
        .unwrap();

    let mut conn = redis.connection().await;
    // Open: the sweep ends it when its lifetime is over.
    let (ends_in, open) = session_life_ms(&mut conn, &prefix, ALICE, session.id()).await;
    assert!(open);
    assert!(
        (119_000..=120_000).contains(&ends_in),
        "ends in {ends_in} ms"
    );
    // Ended: its record goes at the end of its TTL.
    let mut ended = store.session(session.id()).await.unwrap().unwrap();
    ended
        .cancel(CancelReason::CallerHungUp, Timestamp::now())
        .unwrap();
    assert!(
        store
            .update_session(&mut ended, Duration::from_secs(90))
            .await
            .unwrap()
    );
    let (goes_in, open) = session_life_ms(&mut conn, &prefix, ALICE, session.id()).await;
    assert!(!open);
    assert!((89_000..=90_000).contains(&goes_in), "goes in {goes_in} ms");
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

/// A token hash as the layout before named its key: hex (its JSON form).
fn hex_of(hash: &ringrelay_server::domain::credentials::TokenHash) -> String {
    serde_json::to_value(hash)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn redis_subscribers_of_the_layout_before_are_served_and_moved_with_their_tokens() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let store = crate::helpers::redis_store(&redis.url(), &prefix);
    let (alice, bob) = (
        record(ALICE, SHARED_FWD, &["desk"]),
        record(BOB, SHARED_FWD, &["desk"]),
    );
    // As the release before wrote them: Alice listed, Bob from before the
    // listing index.
    let mut raw = redis.connection().await;
    for (r, listed) in [(&alice, true), (&bob, false)] {
        let number = r.subscriber.number.as_str();
        let owners: Vec<(String, String)> =
            std::iter::once((hex_of(&r.credentials.device), number.to_owned()))
                .chain(
                    r.credentials
                        .destinations
                        .iter()
                        .map(|(id, h)| (hex_of(h), format!("{number} {id}"))),
                )
                .collect();
        let hashes: Vec<&str> = owners.iter().map(|(h, _)| h.as_str()).collect();
        ::redis::cmd("HSET")
            .arg(format!("{prefix}:sub:{number}"))
            .arg("record")
            .arg(serde_json::to_string(r).unwrap())
            .arg("fwd")
            .arg(SHARED_FWD)
            .arg("tokens")
            .arg(hashes.join(" "))
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
        for (hash, value) in &owners {
            ::redis::cmd("SET")
                .arg(format!("{prefix}:tok:{hash}"))
                .arg(value)
                .query_async::<()>(&mut raw)
                .await
                .unwrap();
        }
        ::redis::cmd("SADD")
            .arg(format!("{prefix}:fwd:{SHARED_FWD}"))
            .arg(number)
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
        if listed {
            ::redis::cmd("ZADD")
                .arg(format!("{prefix}:subs"))
                .arg(0)
                .arg(number)
                .query_async::<()>(&mut raw)
                .await
                .unwrap();
        }
    }

    // Served before they are moved.
    assert_eq!(
        store.subscriber(&number(ALICE)).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        forwarding_to(&store, &number(SHARED_FWD)).await,
        vec![alice.clone(), bob.clone()]
    );
    assert!(
        store
            .token_owner(&bob.credentials.device)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(store.index_subscribers().await.unwrap(), 2);

    assert_eq!(
        store.list_subscribers(None, 10).await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );
    assert_eq!(
        forwarding_to(&store, &number(SHARED_FWD)).await,
        vec![alice.clone(), bob.clone()]
    );
    for r in [&alice, &bob] {
        assert_eq!(
            store
                .token_subscriber(&r.credentials.device)
                .await
                .unwrap()
                .map(|(_, r)| r),
            Some(r.clone()),
            "its tokens still work"
        );
    }
    let old: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:s[u]b*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(old, Vec::<String>::new(), "the old keys are gone");
    assert_eq!(store.index_subscribers().await.unwrap(), 0, "once");
}

#[tokio::test]
async fn redis_stores_with_different_prefixes_do_not_see_each_other() {
    let backend = Backend::redis();
    let url = backend.test_redis().url();
    let a = crate::helpers::redis_store(&url, &unique_prefix());
    let b = crate::helpers::redis_store(&url, &unique_prefix());
    a.put_subscriber(&record(ALICE, SHARED_FWD, &["desk"]))
        .await
        .unwrap();
    assert_eq!(b.subscriber(&number(ALICE)).await.unwrap(), None);
    assert_eq!(forwarding_to(&b, &number(SHARED_FWD)).await, vec![]);
}

#[tokio::test]
async fn a_stopped_redis_is_reported_unavailable() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let store = crate::helpers::redis_store(&redis.url(), &unique_prefix());
    store.ping().await.unwrap();
    redis.stop();
    let err = store.subscriber(&number(ALICE)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn memory_claims_skip_expired_sessions() {
    let store = MemoryStore::new();
    let t0 = Timestamp::now();
    // The expired one is the most recently instructed: a claim would take
    // it first if it did not skip it.
    let live = awaiting(ALICE, caller(CALLER_A), t0);
    let expired = awaiting(ALICE, caller(CALLER_A), at(t0, 1));
    create(&store, &expired, Duration::from_secs(60)).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    create(&store, &live, Duration::from_secs(60)).await;
    tokio::time::advance(Duration::from_secs(31) + SWEEP_GRACE).await;

    let first = claim_for(&store, &[ALICE], &caller(CALLER_A), "CA1").await;
    let second = claim_for(&store, &[ALICE], &caller(CALLER_A), "CA2").await;

    assert_eq!(
        first.map(|s| id_of(&s)),
        Some(id_of(&live)),
        "the more recent one expired"
    );
    assert_eq!(second, None);
}

#[tokio::test(start_paused = true)]
async fn memory_claims_store_the_unreported_session_when_every_awaiting_one_expired() {
    let store = MemoryStore::new();
    let expired = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
    create(&store, &expired, Duration::from_secs(60)).await;
    tokio::time::advance(Duration::from_secs(61) + SWEEP_GRACE).await;
    let the_claim = claim("CA1");
    let unreported = Session::forwarded_without_report(
        number(ALICE),
        caller(CALLER_A),
        Route::default(),
        the_claim.clone(),
    );

    let claimed = store
        .claim_session(
            &[number(ALICE)],
            &caller(CALLER_A),
            &the_claim,
            an_hour_ago(),
            Some(&unreported),
            TTL,
        )
        .await
        .unwrap();

    assert_eq!(claimed, Some(unreported.clone()));
    assert_eq!(store.session(expired.id()).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn memory_a_claimed_session_lives_the_claim_ttl_from_the_claim() {
    let store = MemoryStore::new();
    let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
    create(&store, &session, Duration::from_secs(60)).await;
    tokio::time::advance(Duration::from_secs(50)).await;
    store
        .claim_session(
            &[number(ALICE)],
            &caller(CALLER_A),
            &claim("CA1"),
            an_hour_ago(),
            None,
            Duration::from_secs(120),
        )
        .await
        .unwrap()
        .expect("claimed");

    tokio::time::advance(Duration::from_secs(119) + SWEEP_GRACE).await;
    assert!(store.session(session.id()).await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(store.session(session.id()).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn memory_a_retried_report_finds_its_session_for_as_long_as_the_session_lives() {
    let store = MemoryStore::new();
    let session = Session::ringing(
        number(ALICE),
        caller(CALLER_A),
        Mode::Auto,
        Some("call-1".into()),
        Timestamp::now(),
    );
    store
        .create_session(&session, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    let mut session = session;
    assert!(
        store
            .update_session(&mut session, Duration::from_secs(600))
            .await
            .unwrap()
    );
    tokio::time::advance(Duration::from_secs(100)).await;
    let retry = Session::ringing(
        number(ALICE),
        caller(CALLER_A),
        Mode::Auto,
        Some("call-1".into()),
        Timestamp::now(),
    );

    let created = store
        .create_session(&retry, Duration::from_secs(60))
        .await
        .unwrap();

    // Created, then written once more (version 1).
    assert_eq!(created, SessionCreated::Existing(Box::new(session)));
}

#[tokio::test(start_paused = true)]
async fn memory_hit_windows_restart_after_they_pass() {
    let store = MemoryStore::new();
    let window = Duration::from_secs(10);
    store.hit("ip:1", window).await.unwrap();
    store.hit("ip:1", window).await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;

    let within = store.hit("ip:1", window).await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    let after = store.hit("ip:1", window).await.unwrap();

    assert_eq!(
        within,
        WindowCount {
            hits: 3,
            resets_in: Duration::from_secs(5)
        }
    );
    assert_eq!(
        after,
        WindowCount {
            hits: 1,
            resets_in: window
        }
    );
}

// Regression: the device-call key (`P:{sNN}:dcid:...`) once kept the TTL of
// create_session while a later write renewed the session, so a retried ring
// report for a session still alive created a duplicate, where the memory store
// answers `Existing` for as long as the session lives (see
// `memory_a_retried_report_finds_its_session_for_as_long_as_the_session_lives`).
#[tokio::test]
async fn redis_a_sessions_device_call_and_call_fields_go_with_it() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let store = crate::helpers::redis_store(&redis.url(), &prefix);
    let reported = awaiting_with(ALICE, caller(CALLER_A), Timestamp::now(), Some("call-1"));
    create(&store, &reported, TTL).await;
    let mut claimed = claim_for(&store, &[ALICE], &caller(CALLER_A), "CA1")
        .await
        .expect("claimed");
    claimed
        .end_missed(
            ringrelay_server::domain::session::MissedReason::CallerHungUp,
            Timestamp::now(),
        )
        .expect("ended");
    assert!(store.update_session(&mut claimed, TTL).await.unwrap());

    let fields = |conn: &mut ::redis::aio::MultiplexedConnection| {
        let key = format!("{}:ses", shard_keys(&prefix, ALICE));
        let mut conn = conn.clone();
        async move {
            let mut names: Vec<String> = ::redis::cmd("HKEYS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            names.sort();
            names
        }
    };
    let mut conn = redis.connection().await;
    let listed = fields(&mut conn).await;
    assert_eq!(
        listed.len(),
        3,
        "the session, its device call's and its call's fields: {listed:?}"
    );
    assert_eq!(
        store
            .session_for_call(&CallSid::parse("CA1").unwrap(), &[])
            .await
            .unwrap(),
        Some(id_of(&reported))
    );

    // Once its record's time came, the sweep drops all three.
    move_life_back(&mut conn, &prefix, claimed.id(), 1, false).await;
    store.sweep(an_hour_ago(), 10).await.unwrap();
    assert_eq!(fields(&mut conn).await, Vec::<String>::new());
    assert_eq!(
        store
            .session_for_call(&CallSid::parse("CA1").unwrap(), &[])
            .await
            .unwrap(),
        None
    );
}

/// A pick-mode ring report of Alice's from `caller_number`, not over.
fn alices_ringing(caller_number: &str) -> Session {
    Session::ringing(
        number(ALICE),
        caller(caller_number),
        Mode::Pick,
        None,
        Timestamp::now(),
    )
}

/// Sets the score of Alice's session `id` in her shard's `life` index, as
/// if its time had come (`ms_ago` before Redis's now), open (a half) or not; and what
/// the sweep index was told of the shard, as the write would have.
async fn move_life_back(
    conn: &mut ::redis::aio::MultiplexedConnection,
    prefix: &str,
    id: &SessionId,
    ms_ago: i64,
    open: bool,
) {
    let at = redis_now_ms(conn).await - ms_ago;
    let score = if open {
        format!("{at}.5")
    } else {
        at.to_string()
    };
    let shard = shard_keys(prefix, ALICE);
    ::redis::pipe()
        .cmd("ZADD")
        .arg(format!("{shard}:life"))
        .arg(score)
        .arg(id.as_str())
        .cmd("SET")
        .arg(format!("{shard}:next"))
        .arg(at)
        .cmd("ZADD")
        .arg(format!("{prefix}:sweep"))
        .arg(at)
        .arg(Shard::of(&number(ALICE)).index())
        .query_async::<()>(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_the_sweep_ends_an_open_session_then_its_record_goes_after_the_grace() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let store = crate::helpers::redis_store(&redis.url(), &prefix);
    let session = alices_ringing(CALLER_A);
    create(&store, &session, TTL).await;
    let mut conn = redis.connection().await;
    // Its lifetime ran out a while ago, past what the grace would be: it
    // is still there, for the sweep to end it.
    let grace = i64::try_from(SWEEP_GRACE.as_millis()).unwrap();
    move_life_back(&mut conn, &prefix, session.id(), 2 * grace, true).await;
    assert!(store.session(session.id()).await.unwrap().is_some());

    let swept = store.sweep(an_hour_ago(), 10).await.unwrap();
    assert_eq!(swept.idle, vec![(id_of(&session), 0)]);
    let (goes_in, open) = session_life_ms(&mut conn, &prefix, ALICE, session.id()).await;
    assert!(!open, "taken: its record goes after the grace");
    assert!(
        (grace - 1_000..=grace).contains(&goes_in),
        "goes in {goes_in} ms"
    );
    assert!(store.session(session.id()).await.unwrap().is_some());
    assert!(
        store
            .sweep(an_hour_ago(), 10)
            .await
            .unwrap()
            .idle
            .is_empty(),
        "taken once"
    );

    // Nobody ended it within the grace: its record goes.
    move_life_back(&mut conn, &prefix, session.id(), 1, false).await;
    assert_eq!(store.session(session.id()).await.unwrap(), None);
    store.sweep(an_hour_ago(), 10).await.unwrap();
    let left: Vec<String> = ::redis::cmd("HKEYS")
        .arg(format!("{}:ses", shard_keys(&prefix, ALICE)))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, Vec::<String>::new());
}

#[tokio::test]
async fn redis_the_sweep_moves_the_release_befores_two_lifetime_indexes_into_one() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let store = crate::helpers::redis_store(&redis.url(), &prefix);
    let open = alices_ringing(CALLER_A);
    let mut ended = alices_ringing(CALLER_B);
    ended
        .cancel(CancelReason::CallerHungUp, Timestamp::now())
        .unwrap();
    create(&store, &open, TTL).await;
    create(&store, &ended, TTL).await;
    // As the release before indexed them: every record in `gone`, the open
    // ones in `idle` too (by the end of their lifetime).
    let shard = shard_keys(&prefix, ALICE);
    let mut conn = redis.connection().await;
    let now = redis_now_ms(&mut conn).await;
    let grace = i64::try_from(SWEEP_GRACE.as_millis()).unwrap();
    ::redis::pipe()
        .cmd("DEL")
        .arg(format!("{shard}:life"))
        .cmd("ZADD")
        .arg(format!("{shard}:gone"))
        .arg(now + 100_000 + grace)
        .arg(open.id().as_str())
        .arg(now + 50_000)
        .arg(ended.id().as_str())
        .cmd("ZADD")
        .arg(format!("{shard}:idle"))
        .arg(now + 100_000)
        .arg(open.id().as_str())
        .arg(now - 5_000)
        .arg("an-entry-whose-record-went")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    // Not seen until the sweep moved them (every instance visits every
    // shard at its first sweep).
    assert_eq!(store.session(open.id()).await.unwrap(), None);

    store.sweep(an_hour_ago(), 10).await.unwrap();
    let (ends_in, is_open) = session_life_ms(&mut conn, &prefix, ALICE, open.id()).await;
    assert!(is_open);
    assert!(
        (95_000..=100_000).contains(&ends_in),
        "ends in {ends_in} ms"
    );
    let (goes_in, is_open) = session_life_ms(&mut conn, &prefix, ALICE, ended.id()).await;
    assert!(!is_open);
    assert!((45_000..=50_000).contains(&goes_in), "goes in {goes_in} ms");
    let legacy: i64 = ::redis::cmd("EXISTS")
        .arg(format!("{shard}:gone"))
        .arg(format!("{shard}:idle"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(legacy, 0, "the old indexes are deleted once moved");
    assert!(store.session(open.id()).await.unwrap().is_some());
    assert_eq!(
        store.open_sessions(&number(ALICE)).await.unwrap(),
        vec![id_of(&open)]
    );
}

#[tokio::test]
async fn redis_the_first_command_after_a_restart_succeeds_on_an_idle_store() {
    let backend = Backend::redis();
    let store = store_for(&backend);
    store.ping().await.expect("connected");

    backend.test_redis().restart();

    // Nothing used the store meanwhile: its connection dropped unnoticed.
    store
        .put_subscriber(&record(ALICE, SHARED_FWD, &["desk"]))
        .await
        .expect("the first command after the restart");
    assert!(store.subscriber(&number(ALICE)).await.unwrap().is_some());
}

#[tokio::test]
async fn redis_a_claim_that_timed_out_while_redis_was_frozen_is_never_applied() {
    let backend = Backend::redis();
    let store = store_for(&backend);
    let session = awaiting(ALICE, caller(CALLER_A), Timestamp::now());
    create(&*store, &session, TTL).await;
    // A claim for another caller first, so that Redis knows the script (a
    // frozen server must get the claim itself, not a request to load it).
    let other = awaiting(ALICE, caller(CALLER_B), Timestamp::now());
    create(&*store, &other, TTL).await;
    claim_for(&*store, &[ALICE], &caller(CALLER_B), "CA0")
        .await
        .expect("claimed");

    backend.test_redis().freeze();
    let claim = claim_for_result(&*store, &[ALICE], &caller(CALLER_A), "CA1").await;
    assert!(
        matches!(claim, Err(StoreError::Unavailable(_))),
        "{claim:?}"
    );
    // Redis comes back after the claim's deadline; the claim it still
    // holds must not take the session.
    tokio::time::sleep(Duration::from_secs(5)).await;
    backend.test_redis().thaw();

    let read = store.session(session.id()).await.unwrap().unwrap();
    assert_eq!(read.call_sid(), None, "{read:?}");
    assert!(read.awaits_forwarded_call());
}
