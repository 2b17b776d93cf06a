//! Signatures: a webhook whose signature is missing or wrong is refused
//! before anything is read or written; unset credentials answer 503.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        voice_refuses_with_403_and_changes_nothing_when_the_signature_is_missing_or_wrong,
        callbacks_refuse_with_403_and_change_nothing_when_the_signature_is_wrong,
    ],
    once: [
        routes_answer_503_when_the_providers_auth_token_is_unset,
    ],
}

async fn voice_refuses_with_403_and_changes_nothing_when_the_signature_is_missing_or_wrong(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();
    let request = cpaas.inbound_call(&call_id, CALLER, SHARED, None);
    let (path, params) = (request.path.as_str(), request.params.as_slice());
    let url = format!("{PUBLIC_BASE_URL}{path}");
    let genuine = independent_signature_headers(cpaas, &url, params);
    let refused = |headers: Vec<(&'static str, String)>, params: Vec<(String, String)>| {
        let app = &app;
        async move { assert_refused(post_form(app, path, &params, &headers).await).await }
    };

    // No header at all.
    refused(Vec::new(), params.to_vec()).await;
    // An empty signature.
    refused(with_signature(cpaas, &genuine, ""), params.to_vec()).await;
    // Not the signature of this request.
    refused(
        with_signature(cpaas, &genuine, forged_signature(cpaas)),
        params.to_vec(),
    )
    .await;
    // Where the URL is signed: a signature over another URL (a query the
    // provider never sent), and over another host. (Telnyx signs the body
    // and a timestamp only; its own cases are in `telnyx.rs`.)
    if cpaas.signs_the_url() {
        let other_url = independent_signature_headers(cpaas, &format!("{url}?x=1"), params);
        refused(other_url, params.to_vec()).await;
        let other_host = independent_signature_headers(
            cpaas,
            &format!("https://evil.example.com{path}"),
            params,
        );
        refused(other_host, params.to_vec()).await;
    }
    // A parameter changed after signing.
    let tampered = request.clone().with("From", &cpaas.number(OTHER_CALLER));
    refused(genuine.clone(), tampered.params).await;
    // A parameter added after signing.
    let added = request.clone().with("ForwardedFrom", &cpaas.number(BOB));
    refused(genuine.clone(), added.params).await;

    assert_unclaimed(&app, &alices).await;
    // The genuine request, signed independently of the service, claims it.
    let response = post_form(&app, path, params, &genuine).await;
    assert_eq!(response.status(), 200);
    let markup = crate::helpers::parse_markup(&response.text().await.unwrap());
    assert_callback(only_dial(&markup), cpaas.routes().dial_status, &alices);
    assert_eq!(session(&app, &alices).await["call_sid"], call_id.as_str());
}

async fn callbacks_refuse_with_403_and_change_nothing_when_the_signature_is_wrong(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let routes = cpaas.routes();
    let dial_path = local_path(only_dial(&first).attr("action").unwrap());
    let voicemail_path = dial_path.replace(routes.dial_status, routes.voicemail);
    let answered = cpaas.request("dial_completed").at(&dial_path);
    let recorded = cpaas.request("record").at(&voicemail_path);
    // Signed for another request: for another session (the query is part of
    // what is signed), or, where only the body is (Telnyx), of another body.
    let signed_elsewhere = if cpaas.signs_the_url() {
        independent_signature_headers(
            cpaas,
            &format!(
                "{PUBLIC_BASE_URL}{}?subscriber=%2B12025550199&session=ses_AAAAAAAAAAAAAAAAAAAAAA&step=0",
                routes.dial_status
            ),
            &answered.params,
        )
    } else {
        independent_signature_headers(
            cpaas,
            &format!("{PUBLIC_BASE_URL}{dial_path}"),
            &cpaas.request("dial_busy").params,
        )
    };
    let genuine_recording = independent_signature_headers(
        cpaas,
        &format!("{PUBLIC_BASE_URL}{voicemail_path}"),
        &recorded.params,
    );
    let screen = cpaas.request("screen");
    let screen_result = cpaas.request("screen_result");
    let status = cpaas.status_request();

    for (request, headers) in [
        (&answered, Vec::new()),
        (&answered, signed_elsewhere),
        (&recorded, Vec::new()),
        (
            &recorded,
            with_signature(cpaas, &genuine_recording, forged_signature(cpaas)),
        ),
        (&screen, Vec::new()),
        (&screen_result, Vec::new()),
        (&status, Vec::new()),
    ] {
        assert_refused(post_form(&app, &request.path, &request.params, &headers).await).await;
    }

    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["legs"], json!([]), "{s}");
}

async fn routes_answer_503_when_the_providers_auth_token_is_unset(cpaas: Cpaas) {
    let app = spawn_app_with(Backend::Memory, &[(cpaas.credential_variable(), "")]).await;
    app.register(ALICE, &alice()).await;
    let request = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
    let some_signature = independent_signature_headers(
        cpaas,
        &format!("{PUBLIC_BASE_URL}{}", request.path),
        &request.params,
    );
    let context = "?subscriber=%2B12025550199&step=0";

    for (route, _) in cpaas.routes().described() {
        for path in [route.to_owned(), format!("{route}{context}")] {
            for headers in [Vec::new(), some_signature.clone()] {
                let response = post_form(&app, &path, &request.params, &headers).await;
                let body = assert_error(response, 503, "not_configured").await;
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains(cpaas.credential_variable()),
                    "{path}: {body}"
                );
            }
        }
    }
    // The other provider, configured, still answers.
    let other = cpaas.other();
    let response = forwarded(&app, other, CALLER, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [other.phone_noun(ALICE_DESK)]);
}
