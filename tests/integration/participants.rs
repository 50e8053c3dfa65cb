//! Participants through lambda_http with API Gateway v2 events: one referral lifecycle behind
//! joins and qualification, search, deletion, the inbound qualify webhook, and bad input.

use refwire_tests::{Refusal, TestApp, apigw_event};
use serde_json::{Value, json};

async fn join(t: &TestApp, body: Value) -> Value {
    let response = t.secret("POST", "/v1/participants", Some(body)).await;
    assert!(matches!(response.status, 200 | 201), "{response:?}");
    response.body
}

async fn participant(t: &TestApp, id: &str) -> Value {
    let response = t
        .secret("GET", &format!("/v1/participants/{id}"), None)
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    response.body
}

fn data_of<'a>(events: &'a [refwire_core::events::OutboxEvent], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event.event == name)
        .map(|event| &event.data)
        .collect()
}

#[tokio::test]
async fn joining_with_a_code_and_qualifying_drive_one_referral_lifecycle() {
    let t = TestApp::new().await;
    let settings = json!({"reward_type": "credit", "reward_value": 5});
    let updated = t
        .secret("PUT", "/v1/api/referral/settings", Some(settings))
        .await;
    assert_eq!(updated.status, 200);

    let created = t
        .secret(
            "POST",
            "/v1/participants",
            Some(json!({"email": "Ann@Example.com", "name": "Ann", "user_id": "user_ann"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let ann = created.body;
    assert!(ann["id"].as_str().unwrap().starts_with("par_"));
    assert_eq!(ann["source"], "direct");
    assert_eq!(ann["referrals_count"], 0);
    let ann_code = ann["referral_code"].as_str().unwrap();
    assert_eq!(
        ann["referral_url"],
        format!("https://example.com/r/{ann_code}")
    );

    // Joining again (any case of the email) returns the same participant.
    let again = t
        .secret(
            "POST",
            "/v1/participants",
            Some(json!({"email": "ann@EXAMPLE.com"})),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], ann["id"]);

    // Bob joins with Ann's code: that is Bob reaching the first milestone of Ann's referral.
    let bob = join(
        &t,
        json!({"email": "bob@example.com", "name": "Bob", "referral_code": ann_code.to_lowercase()}),
    )
    .await;
    assert_eq!(bob["source"], "referred");
    assert_eq!(bob["referred_by"], ann["id"]);
    let via = bob["referred_via"].as_str().unwrap().to_string();
    assert_ne!(via, ann_code, "the referral has its own code");
    assert_eq!(
        participant(&t, ann["id"].as_str().unwrap()).await["referrals_count"],
        1
    );
    let referral = t
        .secret("GET", &format!("/v1/api/referral/{via}"), None)
        .await
        .body;
    assert_eq!(referral["referrer_id"], "user_ann");
    assert_eq!(referral["referred_user_id"], bob["id"]);
    assert_eq!(referral["status"], "pending");
    assert_eq!(referral["milestone"], "signed_up");

    // Qualifying Bob reaches the reward milestone: the referral completes, once.
    let qualified = t
        .secret(
            "POST",
            &format!("/v1/participants/{}/qualify", bob["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(qualified.status, 200, "{qualified:?}");
    assert_eq!(qualified.body["qualified"], true);
    let events_after_first = t.events().await.len();
    let repeated = t
        .secret(
            "POST",
            &format!("/v1/participants/{}/qualify", bob["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(repeated.status, 200);
    assert_eq!(repeated.body, qualified.body);
    assert_eq!(
        t.events().await.len(),
        events_after_first,
        "a repeat emits nothing"
    );
    let referral = t
        .secret("GET", &format!("/v1/api/referral/{via}"), None)
        .await
        .body;
    assert_eq!(referral["status"], "completed");

    // A direct participant has nothing to qualify.
    let direct = t
        .secret(
            "POST",
            &format!("/v1/participants/{}/qualify", ann["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(direct.status, 409);
    assert_eq!(direct.body["error"]["code"], "not_referred");

    // Carol also joins with Ann's code: a second referral of Ann's.
    let carol = join(
        &t,
        json!({"email": "carol@example.com", "referral_code": ann_code}),
    )
    .await;
    assert_ne!(carol["referred_via"], bob["referred_via"]);
    let ann_now = participant(&t, ann["id"].as_str().unwrap()).await;
    assert_eq!(ann_now["referrals_count"], 2);
    let board = t
        .secret("GET", "/v1/api/referral/leaderboard", None)
        .await
        .body;
    assert_eq!(
        board["leaderboard"][0],
        json!({"rank": 1, "referrer_id": "user_ann", "user_name": "Ann", "total": 2, "completed": 1, "pending": 1})
    );

    // One set of events, carrying the people and a message.
    let events = t.events().await;
    let names: Vec<_> = events.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "participant.created",
            "referral.created",
            "participant.created",
            "referral.milestone_reached",
            "referral.milestone_reached",
            "referral.completed",
            "participant.qualified",
            "referral.created",
            "participant.created",
            "referral.milestone_reached",
        ]
    );
    let ann_summary =
        json!({"id": ann["id"], "email": "Ann@Example.com", "name": "Ann", "code": ann_code});
    let bob_summary = json!({"id": bob["id"], "email": "bob@example.com", "name": "Bob", "code": bob["referral_code"]});
    let bob_joined = data_of(&events, "participant.created")[1];
    assert_eq!(bob_joined["participant"]["email"], "bob@example.com");
    assert_eq!(bob_joined["participant"]["source"], "referred");
    assert_eq!(bob_joined["participant"]["date"], "2026-04-08");
    assert_eq!(bob_joined["referrer"], ann_summary);
    assert_eq!(bob_joined["message"], "Bob joined, referred by Ann.");
    let completed = data_of(&events, "referral.completed")[0];
    assert_eq!(completed["referral_code"], via);
    assert_eq!(completed["referrer_id"], "user_ann");
    assert_eq!(completed["referred_user_id"], bob["id"]);
    assert_eq!(completed["reward_value"], 5);
    assert_eq!(completed["referrer"], ann_summary);
    assert_eq!(completed["referee"], bob_summary);
    assert_eq!(
        completed["message"],
        format!("Ann referred Bob: referral {via} is complete.")
    );
    let qualified_event = data_of(&events, "participant.qualified")[0];
    assert_eq!(qualified_event["participant"]["qualified"], true);
    assert_eq!(qualified_event["referrer"], ann_summary);
}

#[tokio::test]
async fn a_referral_code_from_the_referral_api_works_for_joining_too() {
    let t = TestApp::new().await;
    let code = t.create_referral("user_123").await;
    let dana = join(
        &t,
        json!({"user_id": "user_dana", "name": "Dana", "referral_code": code}),
    )
    .await;
    assert_eq!(dana["source"], "referred");
    assert_eq!(
        dana["referred_by"],
        Value::Null,
        "user_123 is no participant"
    );
    assert_eq!(dana["referred_via"], code);
    let referral = t
        .secret("GET", &format!("/v1/api/referral/{code}"), None)
        .await
        .body;
    assert_eq!(referral["referred_user_id"], "user_dana");

    // A user already referred in the program (here through the referral API) cannot be referred
    // again by joining, and the refused join writes nothing.
    let first = t.create_referral("user_999").await;
    let attached = t.milestone(&first, "signed_up", Some("user_x")).await;
    assert_eq!(attached.status, 200);
    let second = t.create_referral("user_777").await;
    let before = t.events().await.len();
    let refused = t
        .secret(
            "POST",
            "/v1/participants",
            Some(json!({"user_id": "user_x", "referral_code": second})),
        )
        .await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(refused.body["error"]["code"], "already_referred");
    assert_eq!(t.events().await.len(), before);
}

#[tokio::test]
async fn the_referrers_pending_cap_applies_to_joins() {
    let t = TestApp::new().await;
    t.secret(
        "PUT",
        "/v1/api/referral/settings",
        Some(json!({"referral_max_per_user": 1})),
    )
    .await;
    let ann = join(&t, json!({"email": "ann@example.com"})).await;
    let code = ann["referral_code"].as_str().unwrap();
    join(
        &t,
        json!({"email": "bob@example.com", "referral_code": code}),
    )
    .await;
    let before = t.events().await.len();
    let capped = t
        .secret(
            "POST",
            "/v1/participants",
            Some(json!({"email": "carol@example.com", "referral_code": code})),
        )
        .await;
    assert_eq!(capped.status, 400, "{capped:?}");
    assert_eq!(
        capped.body["error"]["message"],
        "Maximum referrals per user reached"
    );
    assert_eq!(t.events().await.len(), before, "nothing was written");
    let search = t
        .secret("GET", "/v1/participants?email=carol@example.com", None)
        .await;
    assert_eq!(search.body["participants"], json!([]));
}

#[tokio::test]
async fn participants_are_listed_searched_and_deleted() {
    let t = TestApp::new().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let joined = join(
            &t,
            json!({"email": format!("p{n}@example.com"), "metadata": {"plan": n}}),
        )
        .await;
        ids.push(joined["id"].as_str().unwrap().to_string());
    }
    let first = t.secret("GET", "/v1/participants?limit=2", None).await.body;
    let listed: Vec<_> = first["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = t
        .secret(
            "GET",
            &format!("/v1/participants?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .body;
    assert_eq!(second["participants"][0]["id"], ids[0]);
    assert_eq!(second["next_cursor"], Value::Null);

    let by_email = t
        .secret("GET", "/v1/participants?email=P1@EXAMPLE.COM", None)
        .await
        .body;
    assert_eq!(by_email["participants"][0]["id"], ids[1]);
    assert_eq!(by_email["participants"][0]["metadata"], json!({"plan": 1}));
    let code = by_email["participants"][0]["referral_code"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let by_code = t
        .secret("GET", &format!("/v1/participants?code={code}"), None)
        .await
        .body;
    assert_eq!(by_code["participants"][0]["id"], ids[1]);

    let deleted = t
        .secret("DELETE", &format!("/v1/participants/{}", ids[1]), None)
        .await;
    assert_eq!(deleted.status, 204);
    let gone = t
        .secret("GET", &format!("/v1/participants/{}", ids[1]), None)
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["error"]["code"], "not_found");
    let again = t
        .secret("DELETE", &format!("/v1/participants/{}", ids[1]), None)
        .await;
    assert_eq!(again.status, 404);
    let deleted_event = t
        .events()
        .await
        .into_iter()
        .find(|event| event.event == "participant.deleted")
        .unwrap();
    assert_eq!(deleted_event.data["participant"]["email"], "p1@example.com");
    assert_eq!(deleted_event.data["message"], "p1@example.com was removed.");

    // Publishable keys cannot reach participants.
    let publishable = t
        .call("GET", "/v1/participants", Some(&t.publishable_key), None)
        .await;
    assert_eq!(publishable.status, 403);
}

/// An inbound qualify request as API Gateway would deliver it, with no API key.
async fn inbound(t: &TestApp, path: &str, content_type: &str, body: Option<&str>) -> (u16, Value) {
    let mut event = apigw_event("POST", path, None, body);
    event["headers"]["content-type"] = json!(content_type);
    let response = t.invoke(event).await;
    (response.status, response.body)
}

#[tokio::test]
async fn the_inbound_webhook_qualifies_by_code_in_any_form_and_hides_wrong_tokens() {
    let t = TestApp::new().await;
    let rotated = t.secret("POST", "/v1/inbound/rotate-token", None).await;
    assert_eq!(rotated.status, 201, "{rotated:?}");
    let url = rotated.body["qualify_url"].as_str().unwrap();
    let token = rotated.body["token"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/webhook/{token}/qualify")), "{url}");
    assert!(url.starts_with("https://"), "API Gateway says https: {url}");

    let ann = join(&t, json!({"email": "ann@example.com"})).await;
    let ann_code = ann["referral_code"].as_str().unwrap();
    let mut referred = Vec::new();
    for name in ["form", "json", "query"] {
        let joined = join(
            &t,
            json!({"email": format!("{name}@example.com"), "referral_code": ann_code}),
        )
        .await;
        referred.push(joined["referral_code"].as_str().unwrap().to_string());
    }
    let path = format!("/webhook/{token}/qualify");
    let form = format!("code={}", referred[0]);
    let (status, body) = inbound(&t, &path, "application/x-www-form-urlencoded", Some(&form)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["qualified"], true);
    assert_eq!(body["participant"]["email"], "form@example.com");
    // Repeating it answers the same.
    let (status, repeat) =
        inbound(&t, &path, "application/x-www-form-urlencoded", Some(&form)).await;
    assert_eq!((status, &repeat), (200, &body));

    let json_body = json!({"code": referred[1]}).to_string();
    let (status, body) = inbound(&t, &path, "application/json", Some(&json_body)).await;
    assert_eq!(
        (status, body["participant"]["email"].clone()),
        (200, json!("json@example.com"))
    );
    let (status, body) = inbound(
        &t,
        &format!("{path}?code={}", referred[2].to_lowercase()),
        "text/plain",
        None,
    )
    .await;
    assert_eq!(
        (status, body["participant"]["email"].clone()),
        (200, json!("query@example.com"))
    );

    let completed = t
        .events()
        .await
        .iter()
        .filter(|event| event.event == "referral.completed")
        .count();
    assert_eq!(completed, 3);

    // Unknown code: a 404 naming the participant; direct participant: 409.
    let (status, body) = inbound(
        &t,
        &path,
        "application/x-www-form-urlencoded",
        Some("code=NOSUCHCODE"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (404, json!("participant not found"))
    );
    let direct = format!("code={ann_code}");
    let (status, body) = inbound(
        &t,
        &path,
        "application/x-www-form-urlencoded",
        Some(&direct),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("not_referred"))
    );
    let (status, body) = inbound(
        &t,
        &path,
        "application/x-www-form-urlencoded",
        Some("nothing=here"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("code"))
    );

    // A wrong, a rotated-out or a non-inbound token answers exactly like a route that does not exist.
    let old_path = path.clone();
    let rotated_again = t.secret("POST", "/v1/inbound/rotate-token", None).await;
    assert_ne!(rotated_again.body["token"], json!(token));
    for bad in [
        old_path,
        "/webhook/rw_in_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/qualify".to_string(),
        format!("/webhook/{}/qualify", t.secret_key),
        "/webhook/anything/qualify".to_string(),
    ] {
        let (status, body) =
            inbound(&t, &bad, "application/x-www-form-urlencoded", Some(&form)).await;
        assert_eq!(status, 404, "{bad}");
        assert_eq!(
            body,
            json!({"error": {"code": "not_found", "message": format!("no route for POST {bad}")}})
        );
    }
    // Inbound tokens are no API keys.
    let new_token = rotated_again.body["token"].as_str().unwrap();
    let as_key = t
        .call("GET", "/v1/participants", Some(new_token), None)
        .await;
    assert_eq!(as_key.status, 401);
}

#[tokio::test]
async fn bad_participant_input_is_a_clear_4xx_and_changes_nothing() {
    let t = TestApp::new().await;
    let ann = join(&t, json!({"email": "ann@example.com", "user_id": "u_ann"})).await;
    join(&t, json!({"email": "bob@example.com", "user_id": "u_bob"})).await;
    let before_events = t.events().await.len();
    let before_list = t
        .secret("GET", "/v1/participants?limit=100", None)
        .await
        .body;
    let cases: Vec<Refusal> = vec![
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({})),
            400,
            "email",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "not-an-email"})),
            400,
            "email",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": 5})),
            400,
            "email",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "c@example.com", "name": "C\u{7}"})),
            400,
            "name",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "c@example.com", "referral_code": "NOPE42"})),
            400,
            "referral_code",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "c@example.com", "referral_code": "../x"})),
            400,
            "referral_code",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "c@example.com", "metadata": "x"})),
            400,
            "metadata",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "c@example.com", "nickname": "C"})),
            400,
            "nickname",
        ),
        (
            "POST",
            "/v1/participants".into(),
            Some(json!({"email": "ann@example.com", "user_id": "u_bob"})),
            409,
            "",
        ),
        ("GET", "/v1/participants?limit=0".into(), None, 400, "limit"),
        ("GET", "/v1/participants?limit=-1".into(), None, 400, ""),
        (
            "GET",
            "/v1/participants?cursor=garbage".into(),
            None,
            400,
            "cursor",
        ),
        ("GET", "/v1/participants?code=a-b".into(), None, 400, "code"),
        (
            "GET",
            "/v1/participants?code=ABC&email=a@b.c".into(),
            None,
            400,
            "code",
        ),
        ("GET", "/v1/participants/par_missing".into(), None, 404, ""),
        (
            "DELETE",
            "/v1/participants/par_missing".into(),
            None,
            404,
            "",
        ),
        (
            "POST",
            "/v1/participants/par_missing/qualify".into(),
            None,
            404,
            "",
        ),
        (
            "POST",
            format!("/v1/participants/{}/qualify", ann["id"].as_str().unwrap()),
            None,
            409,
            "",
        ),
    ];
    t.assert_refused(&cases).await;
    let raw = t
        .call(
            "POST",
            "/v1/participants",
            Some(&t.secret_key),
            Some("{not json"),
        )
        .await;
    assert_eq!(raw.status, 400);
    assert_eq!(raw.body["error"]["code"], "invalid_json");
    assert_eq!(t.events().await.len(), before_events);
    assert_eq!(
        t.secret("GET", "/v1/participants?limit=100", None)
            .await
            .body,
        before_list
    );
}

#[tokio::test]
async fn a_referral_factory_style_outbound_webhook_sends_the_selected_participant_fields() {
    use refwire_tests::receiver::Receiver;
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let field_map = json!({
        "referrer.id": "referrer_id", "referrer.code": "referrer_code",
        "referrer.name": "referrer_first_name", "referrer.email": "referrer_email",
        "participant.id": "id", "participant.code": "code", "participant.name": "first_name",
        "participant.email": "email", "participant.url": "url",
        "participant.source_label": "source", "participant.date": "date",
        "participant.referrals_count": "referrals_count",
    });
    t.create_webhook(
        &receiver.url,
        json!({"events": ["participant.created"], "method": "GET", "field_map": field_map, "hidden_fields": {"campaign_id": "4815"}}),
    )
    .await;
    let jessica = join(
        &t,
        json!({"email": "support+jessica@example.com", "name": "Jessica"}),
    )
    .await;
    let byron = join(
        &t,
        json!({"email": "support+byron@example.com", "name": "Byron", "referral_code": jessica["referral_code"]}),
    )
    .await;
    t.pump().await;
    let queries: Vec<String> = receiver
        .received()
        .iter()
        .map(|request| request.uri.query().unwrap().to_string())
        .collect();
    assert_eq!(queries.len(), 2);
    // `referrer_first_name=...` contains `first_name=...`: match the whole parameter.
    let query_of = |first_name: &str| {
        let parameter = format!("&first_name={first_name}&");
        queries
            .iter()
            .find(|query| query.contains(&parameter))
            .unwrap_or_else(|| panic!("no query with {parameter}: {queries:?}"))
            .clone()
    };
    let query = query_of("Byron");
    let expected = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("referrer_id", jessica["id"].as_str().unwrap()),
            ("referrer_code", jessica["referral_code"].as_str().unwrap()),
            ("referrer_first_name", "Jessica"),
            ("referrer_email", "support+jessica@example.com"),
            ("id", byron["id"].as_str().unwrap()),
            ("code", byron["referral_code"].as_str().unwrap()),
            ("first_name", "Byron"),
            ("email", "support+byron@example.com"),
            ("url", byron["referral_url"].as_str().unwrap()),
            ("source", "Referred"),
            ("date", "2026-04-08"),
            ("referrals_count", "0"),
            ("campaign_id", "4815"),
        ])
        .finish();
    assert_eq!(query, expected);
    // A direct participant has no referrer: those fields are sent empty, never dropped.
    let direct = query_of("Jessica");
    assert!(
        direct.starts_with("referrer_id=&referrer_code=&"),
        "{direct}"
    );
}

#[tokio::test]
async fn field_maps_never_send_a_name_twice() {
    let t = TestApp::new().await;
    let before = t.secret("GET", "/v1/webhooks", None).await.body;
    for (fields, field) in [
        (
            json!({"field_map": {"participant.id": "id", "referrer.id": "id"}}),
            "field_map",
        ),
        (
            json!({"field_map": {"participant.id": "campaign_id"}, "hidden_fields": {"campaign_id": "1"}}),
            "field_map",
        ),
    ] {
        let mut body = json!({"name": "rf", "url": "https://hooks.example.com/rf", "events": ["participant.created"]});
        for (name, value) in fields.as_object().unwrap() {
            body[name] = value.clone();
        }
        let refused = t.secret("POST", "/v1/webhooks", Some(body)).await;
        assert_eq!(refused.status, 400, "{refused:?}");
        assert_eq!(refused.body["error"]["field"], field, "{refused:?}");
    }
    let duplicate_source = r#"{"name": "rf", "url": "https://hooks.example.com/rf", "events": ["*"], "field_map": {"participant.id": "id", "participant.id": "other"}}"#;
    let refused = t
        .call(
            "POST",
            "/v1/webhooks",
            Some(&t.secret_key),
            Some(duplicate_source),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.body["error"]["field"], "field_map");
    assert_eq!(t.secret("GET", "/v1/webhooks", None).await.body, before);
}
