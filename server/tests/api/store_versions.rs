//! The store conformance suite, continued: writes that must not be based on
//! a stale copy (`update_session`).

use std::sync::Arc;
use std::time::Duration;

use ringrelay_server::domain::caller_context::CallerContext;
use ringrelay_server::domain::ids::CallSid;
use ringrelay_server::domain::phone::{Caller, PhoneNumber, Region};
use ringrelay_server::domain::rules::Route;
use ringrelay_server::domain::session::{
    CancelReason, Claim, Instruction, MissedReason, Session, SessionState,
};
use ringrelay_server::domain::subscriber::Mode;
use ringrelay_server::domain::time::Timestamp;
use ringrelay_server::store::{MemoryStore, Store};

use crate::both_backends;
use crate::helpers::{Backend, unique_prefix};
use crate::store::create;

const TTL: Duration = Duration::from_secs(60);

fn store_for(backend: &Backend) -> Arc<dyn Store> {
    match backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        redis => Arc::new(redis.redis_store(&unique_prefix())),
    }
}

fn number(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s, Region::default()).unwrap()
}

/// A session told to reject at `instructed_at`: it awaits the forwarded call.
fn awaiting_since(caller: &str, instructed_at: Timestamp) -> Session {
    let mut session = Session::ringing(
        number("+12025550199"),
        Caller::Number(number(caller)),
        Mode::Auto,
        None,
        instructed_at,
    );
    session.instruct(Instruction::Reject, instructed_at);
    session
}

fn awaiting(caller: &str) -> Session {
    awaiting_since(caller, Timestamp::now())
}

fn claim(sid: &str) -> Claim {
    Claim::new(
        CallSid::parse(sid).unwrap(),
        Timestamp::now(),
        "twilio",
        CallerContext::default(),
    )
}

/// Claims made in these tests take sessions instructed in the last hour.
fn cutoff() -> Timestamp {
    Timestamp::now().before(Duration::from_secs(3600))
}

both_backends! {
    an_update_of_the_latest_copy_is_written_and_a_stale_one_is_refused => |backend: Backend| async move {
        let store = store_for(&backend);
        let created = Session::ringing(number("+12025550199"), Caller::Withheld, Mode::Pick, None, Timestamp::now());
        create(&*store, &created, TTL).await;

        let mut first = store.session(created.id()).await.unwrap().unwrap();
        let mut stale = first.clone();
        first.notified(Timestamp::now());
        assert!(store.update_session(&mut first, TTL).await.unwrap());

        stale.cancel(CancelReason::CallerHungUp, Timestamp::now()).unwrap();
        assert!(!store.update_session(&mut stale, TTL).await.unwrap(), "written on a stale copy");
        assert_eq!(store.session(created.id()).await.unwrap().unwrap().state(), SessionState::Notified);

        // The copy that was written stays current for its writer.
        first.instruct(Instruction::Ignore, Timestamp::now());
        assert!(store.update_session(&mut first, TTL).await.unwrap());
        assert_eq!(store.session(created.id()).await.unwrap().unwrap().state(), SessionState::Instructed);
    };

    a_fresh_session_can_be_updated_right_after_it_was_created => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut session = Session::ringing(number("+12025550199"), Caller::Withheld, Mode::Auto, Some("c1".into()), Timestamp::now());
        store.create_session(&session, TTL).await.unwrap();
        session.notified(Timestamp::now());
        assert!(store.update_session(&mut session, TTL).await.unwrap());
    };

    a_claim_makes_copies_read_before_it_stale => |backend: Backend| async move {
        let store = store_for(&backend);
        let session = awaiting("+12025550302");
        create(&*store, &session, TTL).await;
        let mut before_claim = store.session(session.id()).await.unwrap().unwrap();

        let claimed = store
            .claim_session(std::slice::from_ref(session.subscriber()), session.caller(), &claim("CA1"), cutoff(), None, TTL)
            .await
            .unwrap()
            .expect("claimed");
        before_claim.cancel(CancelReason::CallerHungUp, Timestamp::now()).unwrap();
        assert!(!store.update_session(&mut before_claim, TTL).await.unwrap());

        let mut after_claim = claimed;
        assert_eq!(after_claim.state(), SessionState::Forwarded);
        after_claim.end_missed(MissedReason::NobodyAnswered, Timestamp::now());
        assert!(store.update_session(&mut after_claim, TTL).await.unwrap());
        let read = store.session(session.id()).await.unwrap().unwrap();
        assert_eq!(read.state(), SessionState::Missed);
        assert_eq!(read.call_sid().map(CallSid::as_str), Some("CA1"));
    };

    a_retried_webhook_for_the_same_call_gets_the_session_it_took => |backend: Backend| async move {
        let store = store_for(&backend);
        let t0 = Timestamp::now();
        let older = awaiting_since("+12025550302", t0);
        create(&*store, &older, TTL).await;
        let newer = awaiting_since("+12025550302", t0.after(Duration::from_secs(1)));
        create(&*store, &newer, TTL).await;
        let subscribers = std::slice::from_ref(newer.subscriber());
        let caller = newer.caller();

        let took = store.claim_session(subscribers, caller, &claim("CA1"), cutoff(), None, TTL).await.unwrap().unwrap();
        assert_eq!(took.id(), newer.id());
        let retried = store.claim_session(subscribers, caller, &claim("CA1"), cutoff(), None, TTL).await.unwrap().unwrap();
        assert_eq!(retried.id(), newer.id(), "the retry does not take the next session");
        let other = store.claim_session(subscribers, caller, &claim("CA2"), cutoff(), None, TTL).await.unwrap().unwrap();
        assert_eq!(other.id(), older.id());

        // A call that matched no ring report: its retry finds the session
        // recorded the first time, not a second one.
        let unreported = |sid: &str| {
            Session::forwarded_without_report(newer.subscriber().clone(), caller.clone(), Route::default(), claim(sid))
        };
        let recorded = unreported("CA3");
        let took = store.claim_session(subscribers, caller, &claim("CA3"), cutoff(), Some(&recorded), TTL).await.unwrap().unwrap();
        assert_eq!(took.id(), recorded.id());
        let retry = unreported("CA3");
        let again = store.claim_session(subscribers, caller, &claim("CA3"), cutoff(), Some(&retry), TTL).await.unwrap().unwrap();
        assert_eq!(again.id(), recorded.id());
        assert_eq!(store.session(retry.id()).await.unwrap(), None, "no second session");
    };

    an_expired_or_unknown_session_is_never_updated => |backend: Backend| async move {
        let store = store_for(&backend);
        let mut never_stored = awaiting("+12025550302");
        assert!(!store.update_session(&mut never_stored, TTL).await.unwrap());
        assert_eq!(store.session(never_stored.id()).await.unwrap(), None, "nothing was created");
    };
}
