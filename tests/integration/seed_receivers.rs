//! The products' own documented code, run unchanged against Refwire, on both runtimes (the real
//! refwire-local process, and the serverless pipeline on moto): ReferralLoop's Express and Flask
//! receivers and its verifier get all three signup events of one waitlist; Refir's Express receiver
//! gets new participants and the completed referral with the lead, the referrer and a message; and
//! Referral Factory's inbound qualify request (its curl, locally) qualifies the referred user.

use crate::aws_pipeline::Stack;
use refwire_tests::local::{LocalApi, LocalProcess};
use refwire_tests::script_receiver::{PATIENCE, ScriptReceiver, free_port};
use refwire_tests::{apigw_event, node, python};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Where the scenario runs: how it calls the API, sends the inbound qualify request, and lets the
/// pipeline deliver.
trait Runtime {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value);
    /// Referral Factory's documented request: POST the code as a form field to the inbound URL.
    async fn qualify_inbound(&mut self, qualify_url: &str, code: &str) -> (u16, Value);
    /// Lets the pipeline run a little (moto: one round of fan-out and delivery).
    async fn settle(&mut self);
}

struct Local {
    _process: LocalProcess,
    api: LocalApi,
}

impl Runtime for Local {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.api.send(method, path, body).await
    }

    async fn qualify_inbound(&mut self, qualify_url: &str, code: &str) -> (u16, Value) {
        // Referral Factory's curl, unchanged but for the host (the URL refwire-local gave us).
        let output = std::process::Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                qualify_url,
                "-X",
                "POST",
                "-d",
            ])
            .arg(format!("code={code}"))
            .output()
            .expect("curl runs (Referral Factory's documented request is a curl command)");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), serde_json::from_str(body).unwrap())
    }

    async fn settle(&mut self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Runtime for Stack {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.api(method, path, body).await;
        (response.status, response.body)
    }

    async fn qualify_inbound(&mut self, qualify_url: &str, code: &str) -> (u16, Value) {
        // The same request as API Gateway hands it to the API function.
        let path = qualify_url
            .split_once("/webhook/")
            .map(|(_, rest)| format!("/webhook/{rest}"))
            .unwrap();
        let mut event = apigw_event("POST", &path, None, Some(&format!("code={code}")));
        event["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
        let response = self.invoke(event).await;
        (response.status, response.body)
    }

    async fn settle(&mut self) {
        self.fan_out().await;
        self.deliver(0).await;
    }
}

async fn post(runtime: &mut impl Runtime, path: &str, body: Value) -> Value {
    let (status, response) = runtime.call("POST", path, Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "POST {path}: {status} {response}"
    );
    response
}

const SIGNUP_EVENTS: [&str; 3] = [
    "signup.created",
    "signup.position_changed",
    "signup.deleted",
];

async fn the_products_documented_receivers_work_unchanged(mut runtime: impl Runtime) {
    let launch = post(
        &mut runtime,
        "/v1/waitlists",
        json!({"name": "Launch", "boost": 2}),
    )
    .await;
    let waitlist = launch["id"].as_str().unwrap().to_string();
    let other = post(&mut runtime, "/v1/waitlists", json!({"name": "Other"})).await;

    // ReferralLoop subscriptions for this waitlist only, one per event type.
    let (express_port, flask_port, refir_port) = (free_port(), free_port(), free_port());
    let mut express_secrets = serde_json::Map::new();
    for port in [express_port, flask_port] {
        for event_type in SIGNUP_EVENTS {
            let subscribed = post(
                &mut runtime,
                "/api/v1/webhooks/subscribe",
                json!({"event_type": event_type, "target_url": format!("http://127.0.0.1:{port}/webhooks/referralloop"), "waitlist_id": waitlist}),
            )
            .await;
            if port == express_port {
                express_secrets.insert(
                    event_type.into(),
                    subscribed["subscription"]["signing_secret"].clone(),
                );
            }
        }
    }
    // Refir: new users and successful referrals.
    post(
        &mut runtime,
        "/v1/webhooks",
        json!({"name": "Refir", "url": format!("http://127.0.0.1:{refir_port}/webhook"), "events": ["participant.created", "referral.completed"]}),
    )
    .await;
    let express = ScriptReceiver::start(
        &node(),
        "referralloop_express_receiver.js",
        express_port,
        &[(
            "WEBHOOK_SECRETS",
            &Value::Object(express_secrets).to_string(),
        )],
    );
    let flask = ScriptReceiver::start(&python(), "referralloop_flask_receiver.py", flask_port, &[]);
    let refir = ScriptReceiver::start(&node(), "refir_express_receiver.js", refir_port, &[]);

    let signups = format!("/v1/waitlists/{waitlist}/signups");
    let mut people = std::collections::BTreeMap::new();
    for name in ["ann", "carol", "dave"] {
        let signup = post(
            &mut runtime,
            &signups,
            json!({"email": format!("{name}@example.com"), "name": name}),
        )
        .await;
        people.insert(name, signup);
    }
    let other_signups = format!("/v1/waitlists/{}/signups", other["id"].as_str().unwrap());
    post(
        &mut runtime,
        &other_signups,
        json!({"email": "zed@example.com"}),
    )
    .await;
    // Bob joins with Dave's code: Dave moves up two places, from 3 to 1.
    let bob = post(
        &mut runtime,
        &signups,
        json!({"email": "bob@example.com", "name": "Bob", "referral_code": people["dave"]["referral_code"]}),
    )
    .await;
    let carol = format!("{signups}/{}", people["carol"]["id"].as_str().unwrap());
    let (status, _) = runtime.call("DELETE", &carol, None).await;
    assert_eq!(status, 204);

    // Bob converts: Referral Factory's inbound webhook qualifies him by his own code.
    let inbound = post(&mut runtime, "/v1/inbound/rotate-token", json!({})).await;
    let qualify_url = inbound["qualify_url"].as_str().unwrap();
    let (status, qualified) = runtime
        .qualify_inbound(qualify_url, bob["referral_code"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{qualified}");
    assert_eq!(qualified["participant"]["email"], "bob@example.com");
    assert_eq!(qualified["qualified"], true);

    let started = Instant::now();
    while express.seen().len() < 6 || flask.seen().len() < 6 || refir.seen().len() < 6 {
        assert!(
            started.elapsed() < PATIENCE,
            "express {:?}\nflask {:?}\nrefir {:?}",
            express.seen(),
            flask.seen(),
            refir.seen()
        );
        runtime.settle().await;
    }

    // ReferralLoop: the three event types of this waitlist only, with ReferralLoop's documented data shapes.
    for (receiver, verifies) in [(&express, true), (&flask, false)] {
        let seen = receiver.seen();
        assert_eq!(seen.len(), 6, "{seen:?}");
        for line in &seen {
            assert_eq!(line["status"], 200, "{line}");
            assert_eq!(line["waitlist_id"], waitlist, "{line}");
            if verifies {
                assert_eq!(line["verified"], true, "{line}");
            }
        }
        let of = |event_type: &str| -> Vec<Value> {
            seen.iter()
                .filter(|line| line["event_type"] == event_type)
                .map(|line| line["data"].clone())
                .collect()
        };
        let created = of("signup.created");
        assert_eq!(created.len(), 4, "zed's signup is another waitlist's");
        let bob_created = created
            .iter()
            .find(|data| data["email"] == "bob@example.com")
            .unwrap();
        let keys: Vec<&str> = bob_created
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "email",
                "name",
                "position",
                "referral_code",
                "created_at"
            ]
        );
        assert_eq!(bob_created["position"], 4);
        assert_eq!(
            of("signup.position_changed"),
            [
                json!({"id": people["dave"]["id"], "email": "dave@example.com", "old_position": 3, "new_position": 1, "position_change": -2})
            ]
        );
        assert_eq!(
            of("signup.deleted"),
            [json!({"id": people["carol"]["id"], "email": "carol@example.com"})]
        );
    }

    // Refir: every new user, and the successful referral with the lead, the referrer and a message.
    let seen = refir.seen();
    assert!(
        seen.iter()
            .all(|line| line["status"] == 200 && line["path"] == "/webhook"),
        "{seen:?}"
    );
    let created: Vec<&Value> = seen
        .iter()
        .filter(|line| line["body"]["event"] == "participant.created")
        .collect();
    assert_eq!(created.len(), 5, "{seen:?}");
    let bob_joined = created
        .iter()
        .find(|line| line["body"]["data"]["participant"]["email"] == "bob@example.com")
        .unwrap();
    assert_eq!(
        bob_joined["body"]["data"]["referrer"]["email"],
        "dave@example.com"
    );
    assert_eq!(
        bob_joined["body"]["data"]["message"],
        "Bob joined, referred by dave."
    );
    let completed = seen
        .iter()
        .find(|line| line["body"]["event"] == "referral.completed")
        .expect("the successful referral arrived");
    let data = &completed["body"]["data"];
    assert_eq!(data["referee"]["email"], "bob@example.com");
    assert_eq!(data["referrer"]["email"], "dave@example.com");
    assert_eq!(
        data["message"],
        format!(
            "dave referred Bob: referral {} is complete.",
            data["referral_code"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn on_refwire_local() {
    let dir = tempfile::tempdir().unwrap();
    let process = LocalProcess::start(&dir.path().join("refwire.db"), &["--allow-loopback-http"]);
    let api = LocalApi::of(&process, &process.printed("secret key:").unwrap());
    let local = Local {
        _process: process,
        api,
    };
    the_products_documented_receivers_work_unchanged(local).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn on_the_serverless_pipeline_on_moto() {
    the_products_documented_receivers_work_unchanged(Stack::new().await).await;
}
