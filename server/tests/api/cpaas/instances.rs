//! Claim atomicity: exactly one webhook, on one instance, takes a waiting
//! session, and another instance goes on with the hunt.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        voice_gives_the_waiting_session_to_exactly_one_of_twenty_concurrent_webhooks,
    ],
    once: [
        voice_on_another_instance_claims_the_session_and_the_first_continues_the_hunt,
        voice_gives_the_session_to_exactly_one_webhook_across_two_instances,
    ],
}

async fn voice_gives_the_waiting_session_to_exactly_one_of_twenty_concurrent_webhooks(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_ids: Vec<String> = (0..20).map(|_| cpaas.new_call_id()).collect();

    let responses = futures_util::future::join_all(
        call_ids
            .iter()
            .map(|id| forwarded_as(&app, cpaas, id, CALLER, SHARED, None)),
    )
    .await;

    let sessions: Vec<String> = responses
        .iter()
        .map(|r| session_in(only_dial(r)).expect("every call is dialed with a session"))
        .collect();
    let winners: Vec<usize> = (0..sessions.len())
        .filter(|&i| sessions[i] == alices)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim: {sessions:?}");
    let mut others: Vec<&String> = sessions.iter().filter(|s| **s != alices).collect();
    others.sort();
    others.dedup();
    assert_eq!(
        others.len(),
        19,
        "each other call has its own session: {sessions:?}"
    );
    let s = session(&app, &alices).await;
    assert_eq!(s["call_sid"], call_ids[winners[0]].as_str(), "{s}");
    for other in others {
        let o = session(&app, other).await;
        assert_eq!(o["timeline"]["reported_at"], Value::Null, "{o}");
        assert_eq!(o["state"], "forwarded", "{o}");
    }
}

async fn voice_on_another_instance_claims_the_session_and_the_first_continues_the_hunt(
    cpaas: Cpaas,
) {
    let (a, b) = two_instances().await;
    let alice_reg = a.register(ALICE, &alice()).await;
    let alices = ring(&a, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();

    let first = forwarded_as(&b, cpaas, &call_id, CALLER, SHARED, None).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [cpaas.phone_noun(ALICE_DESK)]);
    assert_alice_dial(cpaas, desk, Some(CALLER), &alices);

    let second = dial_ended(&a, cpaas, desk, DialEnd::Busy).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_alice_dial(cpaas, laptop, Some(CALLER), &alices);

    let third = dial_ended(&b, cpaas, laptop, DialEnd::Answered).await;
    assert_hangup(&third);
    let s = session(&a, &alices).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["call_sid"], call_id.as_str());
    assert_eq!(s["selected_destination"], "laptop", "{s}");
}

async fn voice_gives_the_session_to_exactly_one_webhook_across_two_instances(cpaas: Cpaas) {
    let (a, b) = two_instances().await;
    let alice_reg = a.register(ALICE, &alice()).await;
    let alices = ring(&a, &alice_reg, Some(CALLER)).await;
    let call_ids: Vec<String> = (0..20).map(|_| cpaas.new_call_id()).collect();

    let responses = futures_util::future::join_all(call_ids.iter().enumerate().map(|(i, id)| {
        let app = if i % 2 == 0 { &a } else { &b };
        forwarded_as(app, cpaas, id, CALLER, SHARED, None)
    }))
    .await;

    let claims = responses
        .iter()
        .filter(|r| session_in(only_dial(r)).as_deref() == Some(alices.as_str()))
        .count();
    assert_eq!(claims, 1, "exactly one claim across instances");
}
