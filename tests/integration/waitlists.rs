//! Waitlists through lambda_http: joining, boosts by referral, moves, removal, the signup events
//! with ReferralLoop's data shapes, keys, bad input; and a race of joins and referrals whose order
//! stays a consistent total order, on the embedded store and on DynamoDB (moto).

use refwire_core::config::Config;
use refwire_core::ids::RandomIds;
use refwire_core::participants::NewParticipant;
use refwire_core::programs::KeyKind;
use refwire_core::service::{Deps, Principal, Refwire};
use refwire_tests::{Refusal, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;

async fn create_waitlist(t: &TestApp, boost: u32) -> String {
    let created = t
        .secret(
            "POST",
            "/v1/waitlists",
            Some(json!({"name": "Launch", "boost": boost})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    id
}

async fn sign_up(t: &TestApp, waitlist: &str, body: Value) -> Value {
    let response = t
        .secret(
            "POST",
            &format!("/v1/waitlists/{waitlist}/signups"),
            Some(body),
        )
        .await;
    assert!(matches!(response.status, 200 | 201), "{response:?}");
    response.body
}

async fn order(t: &TestApp, waitlist: &str) -> Vec<(String, u64)> {
    let page = t
        .secret(
            "GET",
            &format!("/v1/waitlists/{waitlist}/signups?limit=100"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["signups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_string(),
                s["position"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn emails(order: &[(String, u64)]) -> Vec<&str> {
    order.iter().map(|(email, _)| email.as_str()).collect()
}

#[tokio::test]
async fn referrals_boost_the_referrer_and_every_change_emits_the_seed_shapes() {
    let t = TestApp::new().await;
    let waitlist = create_waitlist(&t, 2).await;
    let mut signups = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        let signup = sign_up(
            &t,
            &waitlist,
            json!({"email": format!("{name}@example.com"), "name": name.to_uppercase()}),
        )
        .await;
        signups.push(signup);
    }
    assert_eq!(signups[4]["position"], 5);
    assert_eq!(signups[4]["waitlist_id"], waitlist);

    // f joins with e's code: e moves up two places, from 5 to 3.
    let e_code = signups[4]["referral_code"].as_str().unwrap();
    let f = sign_up(
        &t,
        &waitlist,
        json!({"email": "f@example.com", "name": "F", "referral_code": e_code}),
    )
    .await;
    assert_eq!(f["position"], 6);
    assert_eq!(
        emails(&order(&t, &waitlist).await),
        [
            "a@example.com",
            "b@example.com",
            "e@example.com",
            "c@example.com",
            "d@example.com",
            "f@example.com"
        ]
    );
    let positions: Vec<u64> = order(&t, &waitlist).await.iter().map(|(_, p)| *p).collect();
    assert_eq!(positions, [1, 2, 3, 4, 5, 6]);

    // Signing up again returns the same signup.
    let again = t
        .secret(
            "POST",
            &format!("/v1/waitlists/{waitlist}/signups"),
            Some(json!({"email": "E@example.com"})),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], signups[4]["id"]);
    assert_eq!(again.body["position"], 3);

    // A boost stops at the front.
    let b_code = signups[1]["referral_code"].as_str().unwrap();
    sign_up(
        &t,
        &waitlist,
        json!({"email": "g@example.com", "referral_code": b_code}),
    )
    .await;
    assert_eq!(
        &emails(&order(&t, &waitlist).await)[..2],
        ["b@example.com", "a@example.com"]
    );

    // An operator moves d to the front and a to the end, and removes c.
    let d_id = signups[3]["id"].as_str().unwrap();
    let moved = t
        .secret(
            "PATCH",
            &format!("/v1/waitlists/{waitlist}/signups/{d_id}"),
            Some(json!({"position": 1})),
        )
        .await;
    assert_eq!(
        (moved.status, moved.body["position"].clone()),
        (200, json!(1))
    );
    let a_id = signups[0]["id"].as_str().unwrap();
    let last = t
        .secret(
            "PATCH",
            &format!("/v1/waitlists/{waitlist}/signups/{a_id}"),
            Some(json!({"position": 99})),
        )
        .await;
    assert_eq!(last.body["position"], 7);
    let c_id = signups[2]["id"].as_str().unwrap();
    let removed = t
        .secret(
            "DELETE",
            &format!("/v1/waitlists/{waitlist}/signups/{c_id}"),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        emails(&order(&t, &waitlist).await),
        [
            "d@example.com",
            "b@example.com",
            "e@example.com",
            "f@example.com",
            "g@example.com",
            "a@example.com"
        ]
    );
    let gone = t
        .secret(
            "GET",
            &format!("/v1/waitlists/{waitlist}/signups/{c_id}"),
            None,
        )
        .await;
    assert_eq!(gone.status, 404);
    let waitlist_view = t
        .secret("GET", &format!("/v1/waitlists/{waitlist}"), None)
        .await
        .body;
    assert_eq!(waitlist_view["signup_count"], 6);

    // The events, with exactly ReferralLoop's data fields.
    let events = t.events().await;
    let of = |name: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|event| event.event == name)
            .map(|event| event.data.clone())
            .collect()
    };
    let created = of("signup.created");
    assert_eq!(created.len(), 7);
    assert_eq!(
        created[4],
        json!({
            "id": signups[4]["id"], "email": "e@example.com", "name": "E", "position": 5,
            "referral_code": e_code, "created_at": "2026-04-08T14:30:00.000Z",
        })
    );
    let changed = of("signup.position_changed");
    assert_eq!(
        changed[0],
        json!({"id": signups[4]["id"], "email": "e@example.com", "old_position": 5, "new_position": 3, "position_change": -2})
    );
    assert_eq!(
        changed
            .iter()
            .map(|c| c["position_change"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [-2, -1, -4, 4],
        "boost e, boost b, move d up, move a down"
    );
    assert_eq!(
        of("signup.deleted"),
        [json!({"id": c_id, "email": "c@example.com"})]
    );
}

#[tokio::test]
async fn publishable_keys_join_and_read_their_own_signup_only() {
    let t = TestApp::new().await;
    let waitlist = create_waitlist(&t, 1).await;
    let path = format!("/v1/waitlists/{waitlist}/signups");
    let body = json!({"email": "ann@example.com"}).to_string();
    let joined = t
        .call("POST", &path, Some(&t.publishable_key), Some(&body))
        .await;
    assert_eq!(joined.status, 201, "{joined:?}");
    let own = t
        .call(
            "GET",
            &format!("{path}/{}", joined.body["id"].as_str().unwrap()),
            Some(&t.publishable_key),
            None,
        )
        .await;
    assert_eq!((own.status, own.body["position"].clone()), (200, json!(1)));
    for (method, path) in [
        ("GET", path.clone()),
        ("GET", format!("/v1/waitlists/{waitlist}")),
        ("GET", "/v1/waitlists".to_string()),
        (
            "DELETE",
            format!("{path}/{}", joined.body["id"].as_str().unwrap()),
        ),
    ] {
        let refused = t.call(method, &path, Some(&t.publishable_key), None).await;
        assert_eq!(refused.status, 403, "{method} {path}");
    }
}

#[tokio::test]
async fn bad_waitlist_input_is_a_clear_4xx_and_changes_nothing() {
    let t = TestApp::new().await;
    let waitlist = create_waitlist(&t, 1).await;
    let signup = sign_up(&t, &waitlist, json!({"email": "ann@example.com"})).await;
    let signup_path = format!(
        "/v1/waitlists/{waitlist}/signups/{}",
        signup["id"].as_str().unwrap()
    );
    let before = t.events().await.len();
    let before_order = order(&t, &waitlist).await;
    let cases: Vec<Refusal> = vec![
        ("POST", "/v1/waitlists".into(), Some(json!({})), 400, "name"),
        (
            "POST",
            "/v1/waitlists".into(),
            Some(json!({"name": " "})),
            400,
            "name",
        ),
        (
            "POST",
            "/v1/waitlists".into(),
            Some(json!({"name": "x", "boost": 101})),
            400,
            "boost",
        ),
        (
            "POST",
            "/v1/waitlists".into(),
            Some(json!({"name": "x", "boost": -1})),
            400,
            "boost",
        ),
        (
            "POST",
            "/v1/waitlists".into(),
            Some(json!({"name": "x", "colour": "red"})),
            400,
            "colour",
        ),
        (
            "POST",
            format!("/v1/waitlists/{waitlist}/signups"),
            Some(json!({})),
            400,
            "email",
        ),
        (
            "POST",
            format!("/v1/waitlists/{waitlist}/signups"),
            Some(json!({"email": "nope"})),
            400,
            "email",
        ),
        (
            "POST",
            format!("/v1/waitlists/{waitlist}/signups"),
            Some(json!({"email": "b@example.com", "referral_code": "NOSUCH"})),
            400,
            "referral_code",
        ),
        (
            "POST",
            "/v1/waitlists/00000000-0000-4000-8000-000000000000/signups".into(),
            Some(json!({"email": "b@example.com"})),
            404,
            "",
        ),
        (
            "GET",
            format!("/v1/waitlists/{waitlist}/signups?cursor=x"),
            None,
            400,
            "cursor",
        ),
        (
            "GET",
            format!("/v1/waitlists/{waitlist}/signups?limit=0"),
            None,
            400,
            "limit",
        ),
        (
            "GET",
            format!("/v1/waitlists/{waitlist}/signups/nope"),
            None,
            404,
            "",
        ),
        (
            "PATCH",
            signup_path.clone(),
            Some(json!({"position": 0})),
            400,
            "position",
        ),
        (
            "PATCH",
            signup_path.clone(),
            Some(json!({"position": "1"})),
            400,
            "position",
        ),
        (
            "PATCH",
            signup_path.clone(),
            Some(json!({})),
            400,
            "position",
        ),
        (
            "DELETE",
            format!("/v1/waitlists/{waitlist}/signups/nope"),
            None,
            404,
            "",
        ),
    ];
    t.assert_refused(&cases).await;
    assert_eq!(t.events().await.len(), before);
    assert_eq!(order(&t, &waitlist).await, before_order);
    // Nobody was left behind as a participant by a refused signup.
    let search = t
        .secret("GET", "/v1/participants?email=b@example.com", None)
        .await;
    assert_eq!(search.body["participants"], json!([]));
}

/// Joins and referrals racing on one waitlist: afterwards the order is a permutation with
/// positions 1..n, each signup's own position agrees with the list, and the events report every
/// position once.
async fn racing_joins_and_referrals_keep_one_total_order(app: Arc<Refwire>) {
    let owner = app.create_program("Race", None).await.unwrap();
    let principal = Principal {
        program_id: owner.program.id.clone(),
        kind: KeyKind::Secret,
    };
    let waitlist = app
        .waitlists()
        .create(&principal, "Race", Some(3))
        .await
        .unwrap();
    let mut seeds = Vec::new();
    for n in 0..4 {
        let person = NewParticipant {
            email: Some(format!("seed{n}@example.com")),
            ..NewParticipant::default()
        };
        let (placed, _) = app
            .waitlists()
            .join(&principal, &waitlist.id, person)
            .await
            .unwrap();
        seeds.push(placed.signup.referral_code);
    }
    let mut racers = tokio::task::JoinSet::new();
    for n in 0..24 {
        let (app, principal, waitlist_id) = (app.clone(), principal.clone(), waitlist.id.clone());
        // Every other newcomer was referred by one of the first signups.
        let referral_code = (n % 2 == 0).then(|| seeds[n % seeds.len()].clone());
        racers.spawn(async move {
            let person = NewParticipant {
                email: Some(format!("racer{n}@example.com")),
                referral_code: referral_code.map(String::from),
                ..NewParticipant::default()
            };
            app.waitlists().join(&principal, &waitlist_id, person).await
        });
    }
    for joined in racers.join_all().await {
        joined.unwrap();
    }
    let (listed, next) = app
        .waitlists()
        .signups(&principal, &waitlist.id, None, Some(100))
        .await
        .unwrap();
    assert_eq!(next, None);
    assert_eq!(listed.len(), 28);
    for (index, placed) in listed.iter().enumerate() {
        assert_eq!(placed.position, index as u64 + 1);
        let own = app
            .waitlists()
            .signup(&principal, &waitlist.id, &placed.signup.id)
            .await
            .unwrap();
        assert_eq!(own.position, placed.position, "{}", placed.signup.id);
    }
    let ranks: std::collections::BTreeSet<_> = listed.iter().map(|p| &p.signup.rank).collect();
    assert_eq!(ranks.len(), 28, "every rank distinct");
    let stored = app.waitlists().get(&principal, &waitlist.id).await.unwrap();
    assert_eq!(stored.signup_count, 28);
    // Each join reported the next position: 1..=28 exactly once.
    let events = app.list_events(&principal, None, Some(100)).await.unwrap();
    let mut reported: Vec<u64> = events
        .iter()
        .filter(|event| event.event == "signup.created")
        .map(|event| event.data["position"].as_u64().unwrap())
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, (1..=28).collect::<Vec<_>>());
    let boosts = events
        .iter()
        .filter(|event| event.event == "signup.position_changed")
        .count();
    assert!(boosts > 0, "referrals boosted someone");
}

fn app_over(
    store: Arc<dyn refwire_core::ports::Store>,
    queue: Arc<dyn refwire_core::ports::JobQueue>,
) -> Arc<Refwire> {
    let deps = Deps {
        store,
        queue,
        clock: Arc::new(refwire_core::time::SystemClock),
        ids: Arc::new(RandomIds),
    };
    Arc::new(Refwire::new(deps, Config::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_joins_and_referrals_keep_one_total_order_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = refwire_embedded::EmbeddedStore::open(&dir.path().join("race.db")).unwrap();
    let queue = refwire_embedded::EmbeddedQueue::new(
        store.clone(),
        Arc::new(refwire_core::time::SystemClock),
    );
    racing_joins_and_referrals_keep_one_total_order(app_over(Arc::new(store), Arc::new(queue)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn racing_joins_and_referrals_keep_one_total_order_on_dynamodb() {
    let sdk = refwire_tests::moto_config().await;
    let settings = refwire_tests::moto_stack(&sdk).await;
    let deps = refwire_lambda::deps_with_clients(
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        aws_sdk_scheduler::Client::new(&sdk),
        &settings,
    );
    racing_joins_and_referrals_keep_one_total_order(app_over(deps.store, deps.queue)).await;
}
