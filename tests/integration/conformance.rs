//! The store conformance suite: the port contracts of `refwire_core::ports`, run against every adapter.
//! An adapter is conformant when `conformance_suite!(name, factory)` passes for it.

use chrono::Duration;
use refwire_core::StoreError;
use refwire_core::conflicts::{Revision, Versioned};
use refwire_core::deliveries::retry::RetrySchedule;
use refwire_core::deliveries::signing::generate_signing_secret;
use refwire_core::deliveries::{Delivery, DeliveryState, SendResult};
use refwire_core::events::OutboxEvent;
use refwire_core::ids::{Ids, RandomIds};
use refwire_core::participants::{Participant, ParticipantKey, Source};
use refwire_core::ports::{ReferralQuery, Store};
use refwire_core::programs::ReferralSettings;
use refwire_core::programs::{KeyKind, Program, issue_key};
use refwire_core::referrals::{NewReferral, Referral, ReferralStatus};
use refwire_core::time::Timestamp;
use refwire_core::waitlists::{Signup, SignupChange, Waitlist};
use refwire_core::webhooks::url_rules::TargetPolicy;
use refwire_core::webhooks::{EnvelopeStyle, Webhook, WebhookFields};
use refwire_tests::start_time;
use serde_json::json;
use std::sync::Arc;

/// A store under test plus whatever keeps it alive (a temp dir, an emulator table).
pub struct Subject {
    pub store: Arc<dyn Store>,
    pub _guard: Box<dyn std::any::Any + Send>,
}

fn embedded() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = refwire_embedded::EmbeddedStore::open(&dir.path().join("conformance.db")).unwrap();
    Subject {
        store: Arc::new(store),
        _guard: Box::new(dir),
    }
}

/// A fresh table on the moto server.
async fn dynamodb() -> Subject {
    let client = aws_sdk_dynamodb::Client::new(&refwire_tests::moto_config().await);
    let table = RandomIds.new_id("conformance");
    refwire_aws::dynamo::table::create(&client, &table)
        .await
        .unwrap();
    Subject {
        store: Arc::new(refwire_aws::DynamoStore::new(client, table)),
        _guard: Box::new(()),
    }
}

async fn program(store: &dyn Store) -> Program {
    let program = Program {
        id: RandomIds.new_id("prg").into(),
        name: "conformance".into(),
        settings: ReferralSettings::default(),
        created_at: start_time(),
    };
    store.create_program(&program, &[]).await.unwrap();
    program
}

fn referral(
    program: &Program,
    referrer: &str,
    code: &str,
    at: Timestamp,
) -> (Referral, OutboxEvent) {
    let request = NewReferral {
        user_id: referrer.into(),
        user_name: Some(format!("{referrer} name")),
        ..Default::default()
    };
    let (referral, change) = Referral::open(
        request,
        &program.settings,
        RandomIds.new_id("ref"),
        program.id.clone(),
        code.into(),
        at,
    );
    (referral, event(program, change.event, change.data, at))
}

fn event(program: &Program, name: &str, data: serde_json::Value, at: Timestamp) -> OutboxEvent {
    OutboxEvent::new(RandomIds.new_id("evt"), &program.id, name, at, data)
}

async fn insert(store: &dyn Store, program: &Program, referrer: &str, code: &str) -> Referral {
    let (referral, created) = referral(program, referrer, code, start_time());
    store
        .insert_referral(&referral, &created, None, start_time())
        .await
        .unwrap();
    referral
}

/// Gives a referral a referee, at its next version, as the service does.
fn with_referee(mut referral: Referral, referee: &str) -> Revision<Referral> {
    referral.referred_user_id = Some(referee.into());
    Revision::next(referral)
}

/// Writes a referral's next revision.
async fn update(
    store: &dyn Store,
    revision: &Revision<Referral>,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    store
        .update_referral(&revision.record, revision.expected_version, events)
        .await
}

pub async fn programs_settings_and_keys(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    assert_eq!(
        store.get_program(&program.id).await.unwrap(),
        Some(program.clone())
    );
    assert_eq!(store.get_program("prg_missing").await.unwrap(), None);

    let mut settings = program.settings.clone();
    settings.code_length = 12;
    store.save_settings(&program.id, &settings).await.unwrap();
    assert_eq!(
        store
            .get_program(&program.id)
            .await
            .unwrap()
            .unwrap()
            .settings,
        settings
    );
    assert!(matches!(
        store.save_settings("prg_missing", &settings).await,
        Err(StoreError::NotFound)
    ));

    let key = issue_key(&program.id, KeyKind::Publishable, start_time());
    store.insert_api_key(&key.record).await.unwrap();
    assert_eq!(
        store.find_api_key(&key.record.key_id).await.unwrap(),
        Some(key.record.clone())
    );
    let orphan = issue_key("prg_missing", KeyKind::Secret, start_time());
    assert!(matches!(
        store.insert_api_key(&orphan.record).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !store
            .delete_api_key("prg_other", &key.record.key_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_api_key(&program.id, &key.record.key_id)
            .await
            .unwrap()
    );
    assert_eq!(store.find_api_key(&key.record.key_id).await.unwrap(), None);
}

pub async fn insert_writes_the_referral_and_its_event_together(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let (referral, created) = referral(&program, "alice", "CODEAAAAAA", start_time());
    store
        .insert_referral(&referral, &created, None, start_time())
        .await
        .unwrap();
    assert_eq!(
        store
            .find_referral(&program.id, "CODEAAAAAA")
            .await
            .unwrap(),
        Some(referral.clone())
    );
    assert_eq!(
        store
            .find_referral("prg_other", "CODEAAAAAA")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.list_events(&program.id, None, 10).await.unwrap(),
        vec![created]
    );
}

pub async fn a_referrals_events_are_found_by_its_code(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let (first, first_created) = referral(&program, "alice", "CODEEVTAAA", start_time());
    store
        .insert_referral(&first, &first_created, None, start_time())
        .await
        .unwrap();
    let (other, other_created) = referral(&program, "bob", "CODEEVTBBB", start_time());
    store
        .insert_referral(&other, &other_created, None, start_time())
        .await
        .unwrap();
    let later = start_time() + chrono::Duration::seconds(1);
    let milestone = event(
        &program,
        "referral.milestone_reached",
        json!({"referral_code": "CODEEVTAAA", "milestone": "signed_up"}),
        later,
    );
    store.publish_event(&milestone, None).await.unwrap();
    let unrelated = event(&program, "link.clicked", json!({"n": 1}), later);
    store.publish_event(&unrelated, None).await.unwrap();

    assert_eq!(
        store
            .referral_events(&program.id, "CODEEVTAAA", 10)
            .await
            .unwrap(),
        vec![first_created, milestone]
    );
    assert_eq!(
        store
            .referral_events(&program.id, "CODEEVTBBB", 10)
            .await
            .unwrap(),
        vec![other_created]
    );
    assert_eq!(
        store
            .referral_events("prg_other", "CODEEVTAAA", 10)
            .await
            .unwrap(),
        vec![]
    );
}

pub async fn uniqueness_rules_hold(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let first = insert(store.as_ref(), &program, "alice", "CODEBBBBBB").await;

    let (same_code, event) = referral(&program, "bob", "CODEBBBBBB", start_time());
    let refused = store
        .insert_referral(&same_code, &event, None, start_time())
        .await;
    assert!(matches!(refused, Err(StoreError::CodeTaken)), "{refused:?}");

    let (second_open, event) = referral(&program, "alice", "CODECCCCCC", start_time());
    let refused = store
        .insert_referral(&second_open, &event, None, start_time())
        .await;
    assert!(
        matches!(refused, Err(StoreError::OpenReferralExists)),
        "{refused:?}"
    );
    assert_eq!(
        store
            .find_open_referral(&program.id, "alice")
            .await
            .unwrap(),
        Some(first.clone())
    );

    update(store.as_ref(), &with_referee(first, "friend"), &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .find_open_referral(&program.id, "alice")
            .await
            .unwrap(),
        None
    );
    let bobs = insert(store.as_ref(), &program, "bob", "CODEDDDDDD").await;
    let refused = update(store.as_ref(), &with_referee(bobs.clone(), "friend"), &[]).await;
    assert!(
        matches!(refused, Err(StoreError::RefereeTaken)),
        "{refused:?}"
    );
    assert_eq!(
        store
            .find_referral(&program.id, "CODEDDDDDD")
            .await
            .unwrap(),
        Some(bobs)
    );
    assert!(
        store
            .list_events(&program.id, None, 10)
            .await
            .unwrap()
            .len()
            == 2,
        "refused writes leave no event"
    );
}

pub async fn updates_are_conditional_on_the_version(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let original = insert(store.as_ref(), &program, "alice", "CODEEEEEEE").await;
    let winner = with_referee(original.clone(), "friend");
    let completed = event(
        &program,
        "referral.completed",
        json!({"n": 1}),
        start_time(),
    );
    update(store.as_ref(), &winner, std::slice::from_ref(&completed))
        .await
        .unwrap();

    let mut loser = original.clone();
    loser.status = ReferralStatus::Expired;
    let expected_version = loser.next_version();
    let lost = event(&program, "referral.expired", json!({}), start_time());
    let refused = store
        .update_referral(&loser, expected_version, std::slice::from_ref(&lost))
        .await;
    assert!(
        matches!(refused, Err(StoreError::VersionConflict)),
        "{refused:?}"
    );
    assert_eq!(
        store
            .find_referral(&program.id, "CODEEEEEEE")
            .await
            .unwrap(),
        Some(winner.record)
    );
    let names: Vec<_> = store
        .list_events(&program.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        names,
        ["referral.created", "referral.completed"],
        "the losing write's event is not kept"
    );
}

pub async fn pending_cap_counts_only_unlapsed_pending_referrals(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let first = insert(store.as_ref(), &program, "alice", "CODEFFFFFF").await;
    update(store.as_ref(), &with_referee(first, "f1"), &[])
        .await
        .unwrap();
    let (second, event) = referral(&program, "alice", "CODEGGGGGG", start_time());
    let refused = store
        .insert_referral(&second, &event, Some(1), start_time())
        .await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached)),
        "{refused:?}"
    );
    // Once the first has lapsed it no longer counts.
    let later = start_time() + Duration::days(31);
    store
        .insert_referral(&second, &event, Some(1), later)
        .await
        .unwrap();
}

pub async fn lists_counts_and_leaderboard_see_lapsed_as_expired(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let mut codes = Vec::new();
    for (n, referrer) in ["alice", "bob", "carol"].iter().enumerate() {
        let code = format!("CODELIST{n:02}");
        insert(store.as_ref(), &program, referrer, &code).await;
        codes.push(code);
    }
    let mut done = store
        .find_referral(&program.id, &codes[1])
        .await
        .unwrap()
        .unwrap();
    done.status = ReferralStatus::Completed;
    done.reward_claimed = true;
    let expected_version = done.next_version();
    store
        .update_referral(&done, expected_version, &[])
        .await
        .unwrap();
    let later = start_time() + Duration::days(31);

    let counts = store.count_referrals(&program.id, later).await.unwrap();
    assert_eq!(
        (
            counts.total,
            counts.pending,
            counts.completed,
            counts.expired,
            counts.rewards_claimed
        ),
        (3, 0, 1, 2, 1)
    );
    let now_counts = store
        .count_referrals(&program.id, start_time())
        .await
        .unwrap();
    assert_eq!((now_counts.pending, now_counts.expired), (2, 0));

    let expired = ReferralQuery {
        status: Some(ReferralStatus::Expired),
        ..Default::default()
    };
    let page = store
        .list_referrals(&program.id, &expired, 10, later)
        .await
        .unwrap();
    let listed: Vec<_> = page
        .referrals
        .iter()
        .map(|r| r.referral_code.clone())
        .collect();
    assert_eq!(listed, [codes[2].clone(), codes[0].clone()], "newest first");

    let first_page = store
        .list_referrals(&program.id, &ReferralQuery::default(), 2, later)
        .await
        .unwrap();
    assert_eq!(first_page.referrals.len(), 2);
    let cursor = first_page.next_cursor.clone().expect("a second page");
    let next = ReferralQuery {
        cursor: Some(cursor),
        ..Default::default()
    };
    let second_page = store
        .list_referrals(&program.id, &next, 2, later)
        .await
        .unwrap();
    assert_eq!(second_page.referrals.len(), 1);
    assert_eq!(second_page.next_cursor, None);

    let board = store.top_referrers(&program.id, 2, later).await.unwrap();
    assert_eq!(board[0].referrer_id, "bob");
    assert_eq!(
        (board[0].completed, board[0].total, board[0].pending),
        (1, 1, 0)
    );
    assert_eq!(board[0].user_name.as_deref(), Some("bob name"));
    assert_eq!(board[1].referrer_id, "alice", "ties break by referrer id");
    assert_eq!(board.len(), 2);

    let lapsed = store.lapsed_referrals(later, 10).await.unwrap();
    let mut lapsed_codes: Vec<_> = lapsed
        .iter()
        .filter(|r| r.program_id == program.id)
        .map(|r| r.referral_code.clone())
        .collect();
    lapsed_codes.sort();
    assert_eq!(lapsed_codes, [codes[0].clone(), codes[2].clone()]);
}

/// (total, pending, completed, expired, rewards_claimed) at `at`.
async fn counts_at(store: &dyn Store, program: &Program, at: Timestamp) -> [u64; 5] {
    let counts = store.count_referrals(&program.id, at).await.unwrap();
    [
        counts.total,
        counts.pending,
        counts.completed,
        counts.expired,
        counts.rewards_claimed,
    ]
}

/// The leaderboard at `at` as (referrer, total, completed, pending, user name).
async fn board_at(
    store: &dyn Store,
    program: &Program,
    limit: u32,
    at: Timestamp,
) -> Vec<(String, u64, u64, u64, Option<String>)> {
    let board = store.top_referrers(&program.id, limit, at).await.unwrap();
    board
        .into_iter()
        .map(|tally| {
            (
                tally.referrer_id,
                tally.total,
                tally.completed,
                tally.pending,
                tally.user_name,
            )
        })
        .collect()
}

/// Completes a referral through its reward milestone, at its next version, as the service does.
fn completed(program: &Program, mut referral: Referral, referee: &str) -> Revision<Referral> {
    let settings = &program.settings;
    referral
        .record_milestone(
            settings,
            &settings.referral_reward_milestone,
            Some(referee),
            start_time(),
        )
        .unwrap();
    Revision::next(referral)
}

pub async fn counts_and_the_leaderboard_follow_every_write(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (other, empty) = (program(store).await, program(store).await);
    let program = program(store).await;
    let name = |referrer: &str| Some(format!("{referrer} name"));
    let row = |referrer: &str, total, completed, pending| {
        (
            referrer.to_string(),
            total,
            completed,
            pending,
            name(referrer),
        )
    };
    let first = insert(store, &program, "alice", "CODECNT001").await;
    let first = with_referee(first, "f1");
    update(store, &first, &[]).await.unwrap();
    insert(store, &program, "alice", "CODECNT002").await;
    let bobs = insert(store, &program, "bob", "CODECNT003").await;
    insert(store, &program, "carol", "CODECNT004").await;
    insert(store, &other, "dave", "CODECNT005").await;
    let now = start_time();
    assert_eq!(counts_at(store, &program, now).await, [4, 4, 0, 0, 0]);
    assert_eq!(
        board_at(store, &program, 10, now).await,
        [
            row("alice", 2, 0, 2),
            row("bob", 1, 0, 1),
            row("carol", 1, 0, 1)
        ]
    );

    let bobs = completed(&program, bobs, "b1");
    update(store, &bobs, &[]).await.unwrap();
    let mut bobs = bobs.record;
    assert_eq!(counts_at(store, &program, now).await, [4, 3, 1, 0, 0]);
    for claim in [
        |r: &mut Referral| r.reward_claimed = true,
        |r: &mut Referral| r.referee_reward_claimed = true,
    ] {
        claim(&mut bobs);
        let expected_version = bobs.next_version();
        store
            .update_referral(&bobs, expected_version, &[])
            .await
            .unwrap();
    }
    assert_eq!(counts_at(store, &program, now).await, [4, 3, 1, 0, 2]);
    assert_eq!(
        board_at(store, &program, 2, now).await,
        [row("bob", 1, 1, 0), row("alice", 2, 0, 2)],
        "completed first, then total; `limit` places"
    );

    let mut expired = first.record.clone();
    expired.status = ReferralStatus::Expired;
    let expected_version = expired.next_version();
    store
        .update_referral(&expired, expected_version, &[])
        .await
        .unwrap();
    assert_eq!(counts_at(store, &program, now).await, [4, 2, 1, 1, 2]);

    // Past the others' expiry, before anything writes it, they read as expired; once the sweep
    // writes it, the counts are the same.
    let later = start_time() + Duration::days(31);
    assert_eq!(counts_at(store, &program, later).await, [4, 0, 1, 3, 2]);
    let lapsed_board = board_at(store, &program, 10, later).await;
    assert_eq!(
        lapsed_board,
        [
            row("bob", 1, 1, 0),
            row("alice", 2, 0, 0),
            row("carol", 1, 0, 0)
        ]
    );
    for mut lapsed in store.lapsed_referrals(later, 100).await.unwrap() {
        if lapsed.program_id == program.id {
            lapsed.expire_if_lapsed(later).unwrap();
            let expected_version = lapsed.next_version();
            store
                .update_referral(&lapsed, expected_version, &[])
                .await
                .unwrap();
        }
    }
    assert_eq!(counts_at(store, &program, later).await, [4, 0, 1, 3, 2]);
    assert_eq!(counts_at(store, &program, now).await, [4, 0, 1, 3, 2]);
    assert_eq!(board_at(store, &program, 10, later).await, lapsed_board);

    // The board keeps the name of the referrer's latest referral that gave one.
    let (mut renamed, created) = referral(&program, "carol", "CODECNT006", later);
    renamed.user_name = Some("Carol C.".into());
    store
        .insert_referral(&renamed, &created, None, later)
        .await
        .unwrap();
    assert_eq!(
        board_at(store, &program, 10, later).await[1..],
        [
            row("alice", 2, 0, 0),
            ("carol".into(), 2, 0, 1, Some("Carol C.".into()))
        ],
        "ties (0 completed, 2 in total) break by referrer id"
    );
    assert_eq!(counts_at(store, &other, now).await, [1, 1, 0, 0, 0]);
    assert_eq!(counts_at(store, &empty, now).await, [0; 5]);
    assert_eq!(board_at(store, &empty, 10, now).await, []);
}

pub async fn counts_stay_exact_under_concurrent_writes(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let referrers = ["ann", "ben", "cat"];
    let mut inserts = tokio::task::JoinSet::new();
    for n in 0..12 {
        let (store, program) = (store.clone(), program.clone());
        inserts.spawn(async move {
            let referrer = referrers[n % referrers.len()];
            let (mut referral, created) =
                referral(&program, referrer, &format!("CODERACE{n:02}"), start_time());
            referral.referred_user_id = Some(format!("friend_{n}"));
            store
                .insert_referral(&referral, &created, None, start_time())
                .await
                .unwrap();
            referral
        });
    }
    let referrals = inserts.join_all().await;
    let now = start_time();
    assert_eq!(
        counts_at(store.as_ref(), &program, now).await,
        [12, 12, 0, 0, 0]
    );

    // Three writers race to complete each referral, retrying from a fresh read as the service
    // does (a referrer's referrals share a guard on DynamoDB, so they conflict too); whichever
    // completes it, it is counted once.
    let mut racers = tokio::task::JoinSet::new();
    for referral in referrals.iter().flat_map(|r| [r, r, r]) {
        let (store, program, code) = (
            store.clone(),
            program.clone(),
            referral.referral_code.clone(),
        );
        racers.spawn(async move {
            loop {
                let current = store.find_referral(&program.id, &code).await.unwrap();
                let current = current.unwrap();
                if current.status == ReferralStatus::Completed {
                    return 0;
                }
                let referee = current.referred_user_id.clone().unwrap();
                let next = completed(&program, current, &referee);
                match update(store.as_ref(), &next, &[]).await {
                    Ok(()) => return 1,
                    Err(StoreError::VersionConflict) => continue,
                    Err(err) => panic!("{err:?}"),
                }
            }
        });
    }
    let completions: u32 = racers.join_all().await.into_iter().sum();
    assert_eq!(completions, 12);
    assert_eq!(
        counts_at(store.as_ref(), &program, now).await,
        [12, 0, 12, 0, 0]
    );

    // Both rewards of each referral claimed at once: each claim retries until it is written.
    let mut claims = tokio::task::JoinSet::new();
    for (referral, referee_side) in referrals.iter().flat_map(|r| [(r, false), (r, true)]) {
        let (store, program, code) = (
            store.clone(),
            program.clone(),
            referral.referral_code.clone(),
        );
        claims.spawn(async move {
            loop {
                let mut next = store.find_referral(&program.id, &code).await.unwrap();
                let next = next.as_mut().unwrap();
                if referee_side {
                    next.referee_reward_claimed = true;
                } else {
                    next.reward_claimed = true;
                }
                let expected_version = next.next_version();
                match store.update_referral(next, expected_version, &[]).await {
                    Ok(()) => return,
                    Err(StoreError::VersionConflict) => continue,
                    Err(err) => panic!("{err:?}"),
                }
            }
        });
    }
    claims.join_all().await;
    assert_eq!(
        counts_at(store.as_ref(), &program, now).await,
        [12, 0, 12, 0, 24]
    );
    let board = board_at(store.as_ref(), &program, 10, now).await;
    let expected: Vec<_> = referrers
        .iter()
        .map(|referrer| {
            (
                referrer.to_string(),
                4,
                4,
                0,
                Some(format!("{referrer} name")),
            )
        })
        .collect();
    assert_eq!(board, expected);
}

pub async fn events_page_in_write_order(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let mut written = Vec::new();
    for n in 0..5 {
        let referral = insert(
            store.as_ref(),
            &program,
            &format!("user{n}"),
            &format!("CODEEVT{n:03}"),
        )
        .await;
        let extra = event(
            &program,
            "referral.milestone_reached",
            json!({"n": n}),
            start_time(),
        );
        let updated = with_referee(referral, &format!("friend{n}"));
        update(store.as_ref(), &updated, std::slice::from_ref(&extra))
            .await
            .unwrap();
        written.push(extra.id);
    }
    let all = store.list_events(&program.id, None, 100).await.unwrap();
    assert_eq!(all.len(), 10);
    let first = store.list_events(&program.id, None, 4).await.unwrap();
    let rest = store
        .list_events(&program.id, Some(&first[3].id), 100)
        .await
        .unwrap();
    assert_eq!([first, rest].concat(), all);
    let milestones: Vec<_> = all
        .iter()
        .filter(|e| e.event != "referral.created")
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(milestones, written);
}

fn webhook(program: &Program, name: &str) -> Webhook {
    let fields = WebhookFields {
        name: Some(name.into()),
        url: Some("https://hooks.example.com/in".into()),
        events: Some(vec!["referral.*".into()]),
        ..Default::default()
    };
    Webhook::create(
        fields,
        RandomIds.new_id("wh"),
        program.id.clone(),
        generate_signing_secret(),
        EnvelopeStyle::Refwire,
        RetrySchedule::default(),
        TargetPolicy::Strict,
        start_time(),
    )
    .unwrap()
}

pub async fn webhooks_are_versioned_and_scoped_to_their_program(store: Arc<dyn Store>) {
    let (program, other) = (program(store.as_ref()).await, program(store.as_ref()).await);
    let first = webhook(&program, "first");
    let second = webhook(&program, "second");
    for hook in [&first, &second, &webhook(&other, "elsewhere")] {
        store.insert_webhook(hook).await.unwrap();
    }
    let listed: Vec<String> = store
        .list_webhooks(&program.id)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(
        listed,
        ["first", "second"],
        "a program's webhooks, oldest first"
    );
    assert_eq!(
        store.get_webhook(&first.id).await.unwrap(),
        Some(first.clone())
    );

    // A versioned update writes its events in the same transaction; a stale one writes nothing.
    let mut disabled = first.clone();
    disabled.active = false;
    let expected_version = disabled.next_version();
    let (_, change) = referral(&program, "unused", "UNUSED0001", start_time());
    store
        .update_webhook(&disabled, expected_version, std::slice::from_ref(&change))
        .await
        .unwrap();
    assert_eq!(
        store.get_webhook(&first.id).await.unwrap(),
        Some(disabled.clone())
    );
    assert!(store.get_event(&change.id).await.unwrap().is_some());
    let mut stale = first.clone();
    let expected_version = stale.next_version();
    let (_, lost) = referral(&program, "unused", "UNUSED0002", start_time());
    assert!(matches!(
        store
            .update_webhook(&stale, expected_version, std::slice::from_ref(&lost))
            .await,
        Err(StoreError::VersionConflict)
    ));
    assert_eq!(store.get_event(&lost.id).await.unwrap(), None);

    assert!(
        !store.delete_webhook(&other.id, &first.id).await.unwrap(),
        "only within its program"
    );
    assert!(store.delete_webhook(&program.id, &first.id).await.unwrap());
    assert!(!store.delete_webhook(&program.id, &first.id).await.unwrap());
    let mut gone = disabled;
    let expected_version = gone.next_version();
    assert!(matches!(
        store.update_webhook(&gone, expected_version, &[]).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn deliveries_insert_once_update_by_version_and_list_newest_first(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let hook = webhook(&program, "log");
    store.insert_webhook(&hook).await.unwrap();
    let mut ids = Vec::new();
    let events: Vec<OutboxEvent> = (0..5)
        .map(|_| event(&program, "referral.created", json!({}), start_time()))
        .collect();
    for (n, event) in (0..).zip(&events) {
        let at = start_time() + Duration::seconds(n);
        let delivery = Delivery::new(event, &hook.id, at);
        let stored = store.insert_delivery(&delivery).await.unwrap();
        assert_eq!(stored, delivery);
        ids.push(delivery.id);
    }
    // Inserting the same (event, webhook) again returns the stored delivery, unchanged.
    let mut progressed = store.get_delivery(&ids[0]).await.unwrap().unwrap();
    progressed.record_attempt(
        SendResult {
            status: Some(500),
            ..Default::default()
        },
        &RetrySchedule::default(),
        start_time(),
    );
    let expected_version = progressed.next_version();
    store
        .update_delivery(&progressed, expected_version)
        .await
        .unwrap();
    let again = Delivery::new(&events[0], &hook.id, start_time());
    assert_eq!(store.insert_delivery(&again).await.unwrap(), progressed);
    assert!(matches!(
        store.update_delivery(&progressed, expected_version).await,
        Err(StoreError::VersionConflict)
    ));

    let first_page = store
        .list_deliveries(&hook.id, None, None, 2)
        .await
        .unwrap();
    let page_ids: Vec<_> = first_page.deliveries.iter().map(|d| d.id.clone()).collect();
    assert_eq!(page_ids, [ids[4].clone(), ids[3].clone()]);
    assert_eq!(first_page.next_cursor.as_deref(), Some(ids[3].as_str()));
    let rest = store
        .list_deliveries(&hook.id, None, first_page.deliveries.last(), 10)
        .await
        .unwrap();
    assert_eq!(rest.deliveries.len(), 3);
    assert_eq!(rest.next_cursor, None);
    let retrying = store
        .list_deliveries(&hook.id, Some(DeliveryState::Retrying), None, 10)
        .await
        .unwrap();
    assert_eq!(retrying.deliveries, [progressed.clone()]);

    let mut failed = progressed;
    failed.abandon("gave up", start_time());
    let expected_version = failed.next_version();
    store
        .update_delivery(&failed, expected_version)
        .await
        .unwrap();
    let since_start = store
        .failed_deliveries_since(&hook.id, start_time(), 10)
        .await
        .unwrap();
    assert_eq!(since_start, [failed]);
    let later = start_time() + Duration::seconds(1);
    assert!(
        store
            .failed_deliveries_since(&hook.id, later, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn published_events_are_idempotent_per_key(store: Arc<dyn Store>) {
    let (program, other) = (program(store.as_ref()).await, program(store.as_ref()).await);
    let first = event(&program, "link.clicked", json!({"n": 1}), start_time());
    let retry = event(&program, "link.clicked", json!({"n": 2}), start_time());
    assert_eq!(
        store.publish_event(&first, Some("click-1")).await.unwrap(),
        first
    );
    assert_eq!(
        store.publish_event(&retry, Some("click-1")).await.unwrap(),
        first,
        "the first one stands"
    );
    assert_eq!(store.get_event(&retry.id).await.unwrap(), None);
    let elsewhere = event(&other, "link.clicked", json!({"n": 3}), start_time());
    assert_eq!(
        store
            .publish_event(&elsewhere, Some("click-1"))
            .await
            .unwrap(),
        elsewhere,
        "keys are per program"
    );
    let unkeyed = event(&program, "link.clicked", json!({"n": 4}), start_time());
    assert_eq!(store.publish_event(&unkeyed, None).await.unwrap(), unkeyed);
    let names: Vec<_> = store
        .list_events(&program.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.data["n"].clone())
        .collect();
    assert_eq!(names, [json!(1), json!(4)]);
}

pub async fn racing_updates_of_one_version_succeed_once(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let stored = insert(store.as_ref(), &program, "racer", "CODERACE01").await;
    let mut racers = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (store, program) = (store.clone(), program.clone());
        let next = with_referee(stored.clone(), &format!("referee_{n}"));
        racers.spawn(async move {
            let completed = event(
                &program,
                "referral.completed",
                json!({"n": n}),
                start_time(),
            );
            update(store.as_ref(), &next, &[completed]).await
        });
    }
    let results: Vec<_> = racers.join_all().await;
    let won = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|result| matches!(result, Ok(()) | Err(StoreError::VersionConflict)))
    );
    let events = store.list_events(&program.id, None, 100).await.unwrap();
    let completed = events
        .iter()
        .filter(|e| e.event == "referral.completed")
        .count();
    assert_eq!(completed, 1, "only the winner's event was written");
}

pub async fn the_pending_cap_holds_under_concurrent_inserts(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let mut inserts = tokio::task::JoinSet::new();
    for n in 0..10 {
        let (store, program) = (store.clone(), program.clone());
        inserts.spawn(async move {
            let (mut referral, created) =
                referral(&program, "capped", &format!("CODECAP{n:03}"), start_time());
            // With a referee, none of them is the referrer's one open referral.
            referral.referred_user_id = Some(format!("referee_{n}"));
            store
                .insert_referral(&referral, &created, Some(3), start_time())
                .await
        });
    }
    let results: Vec<_> = inserts.join_all().await;
    let inserted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(inserted, 3, "{results:?}");
    assert!(results.iter().all(|result| matches!(
        result,
        Ok(()) | Err(StoreError::LimitReached) | Err(StoreError::VersionConflict)
    )));
    let counts = store
        .count_referrals(&program.id, start_time())
        .await
        .unwrap();
    assert_eq!(counts.pending, 3);
}

fn participant(
    program: &Program,
    email: Option<&str>,
    user_id: Option<&str>,
    code: &str,
) -> Participant {
    Participant {
        id: RandomIds.new_id("par").into(),
        program_id: program.id.clone(),
        user_id: user_id.map(str::to_string),
        email: email.map(str::to_string),
        name: Some("Ann".into()),
        referral_url: program.settings.referral_url(code),
        referral_code: code.into(),
        referred_by: None,
        referred_via: None,
        source: Source::Direct,
        referrals_count: 0,
        qualified: false,
        qualified_at: None,
        metadata: None,
        created_at: start_time(),
        version: 1,
    }
}

fn joined(program: &Program) -> OutboxEvent {
    event(program, "participant.created", json!({}), start_time())
}

pub async fn participants_are_unique_by_email_user_id_and_code(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let ann = participant(&program, Some("Ann@Example.com"), Some("u1"), "PCODE0001");
    store
        .insert_participant(&ann, &[joined(&program)])
        .await
        .unwrap();
    let by = |key| {
        let store = store.clone();
        let program_id = program.id.clone();
        async move { store.find_participant(&program_id, key).await.unwrap() }
    };
    for key in [
        ParticipantKey::Email("ann@example.com"),
        ParticipantKey::UserId("u1"),
        ParticipantKey::Code("PCODE0001"),
    ] {
        assert_eq!(by(key).await.as_ref(), Some(&ann), "{key:?}");
    }
    assert_eq!(by(ParticipantKey::Email("bob@example.com")).await, None);

    let same_email = participant(&program, Some("ANN@example.COM"), None, "PCODE0002");
    let same_user = participant(&program, None, Some("u1"), "PCODE0003");
    let same_code = participant(&program, Some("bob@example.com"), None, "PCODE0001");
    for (duplicate, expected) in [
        (same_email, "ParticipantExists"),
        (same_user, "ParticipantExists"),
        (same_code, "CodeTaken"),
    ] {
        let err = store
            .insert_participant(&duplicate, &[joined(&program)])
            .await
            .unwrap_err();
        assert_eq!(format!("{err:?}"), expected);
    }
    // Referral codes and participant codes share one namespace, both ways.
    insert(store.as_ref(), &program, "user_1", "RCODE0001").await;
    let on_referral_code = participant(&program, Some("cy@example.com"), None, "RCODE0001");
    assert!(matches!(
        store.insert_participant(&on_referral_code, &[]).await,
        Err(StoreError::CodeTaken)
    ));
    let (on_participant_code, created) = referral(&program, "user_2", "PCODE0001", start_time());
    assert!(matches!(
        store
            .insert_referral(&on_participant_code, &created, None, start_time())
            .await,
        Err(StoreError::CodeTaken)
    ));
    assert_eq!(
        store.find_referral(&program.id, "PCODE0001").await.unwrap(),
        None
    );
    assert_eq!(by(ParticipantKey::Code("RCODE0001")).await, None);
    // Only the one participant and its one event were written.
    let page = store
        .list_participants(&program.id, None, 10)
        .await
        .unwrap();
    assert_eq!(page.participants, vec![ann]);
    let events = store.list_events(&program.id, None, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == "participant.created")
            .count(),
        1
    );
}

pub async fn joins_count_on_the_referrer_atomically(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let referrer = participant(&program, Some("ref@example.com"), None, "REFERRER1");
    store.insert_participant(&referrer, &[]).await.unwrap();
    let mut joins = tokio::task::JoinSet::new();
    for n in 0..5 {
        let store = store.clone();
        let mut newcomer = participant(
            &program,
            Some(&format!("n{n}@example.com")),
            None,
            &format!("NEWCOMER{n}"),
        );
        newcomer.referred_by = Some(referrer.id.clone());
        newcomer.source = Source::Referred;
        joins.spawn(async move { store.insert_participant(&newcomer, &[]).await });
    }
    for result in joins.join_all().await {
        result.unwrap();
    }
    let counted = store
        .get_participant(&program.id, &referrer.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counted.referrals_count, 5);
    assert_eq!(counted.version, 6, "each count is a new version");

    // An update from a stale read loses; one from the fresh read keeps the count.
    let mut stale = referrer.clone();
    stale.qualified = true;
    let expected_version = stale.next_version();
    assert!(matches!(
        store
            .update_participant(&stale, expected_version, &[])
            .await,
        Err(StoreError::VersionConflict)
    ));
    let mut fresh = counted.clone();
    fresh.qualified = true;
    let expected_version = fresh.next_version();
    store
        .update_participant(&fresh, expected_version, &[])
        .await
        .unwrap();
    let updated = store
        .get_participant(&program.id, &referrer.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.qualified, updated.referrals_count, updated.version),
        (true, 5, 7)
    );

    // Joining through a referrer who is gone writes nothing.
    let mut orphan = participant(&program, Some("orphan@example.com"), None, "ORPHAN001");
    orphan.referred_by = Some("par_gone".into());
    assert!(matches!(
        store.insert_participant(&orphan, &[joined(&program)]).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .find_participant(&program.id, ParticipantKey::Email("orphan@example.com"))
            .await
            .unwrap(),
        None
    );
}

pub async fn participants_page_newest_first_and_deleting_frees_their_keys(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let other = self::program(store.as_ref()).await;
    let mut inserted = Vec::new();
    for n in 0..5 {
        let one = participant(
            &program,
            Some(&format!("p{n}@example.com")),
            Some(&format!("u{n}")),
            &format!("LISTED00{n}"),
        );
        store.insert_participant(&one, &[]).await.unwrap();
        inserted.push(one);
    }
    store
        .insert_participant(
            &participant(&other, Some("p0@example.com"), None, "OTHER0001"),
            &[],
        )
        .await
        .unwrap();
    let first = store.list_participants(&program.id, None, 3).await.unwrap();
    let ids = |page: &refwire_core::ports::ParticipantPage| {
        page.participants
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
    };
    let newest: Vec<_> = inserted.iter().rev().map(|p| p.id.clone()).collect();
    assert_eq!(ids(&first), newest[..3]);
    let second = store
        .list_participants(&program.id, first.next_cursor.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!(ids(&second), newest[3..]);
    assert_eq!(second.next_cursor, None);
    assert_eq!(
        store
            .get_participant(&other.id, &inserted[0].id)
            .await
            .unwrap(),
        None,
        "another program's participant is invisible"
    );

    let gone = &inserted[0];
    let deleted = event(&program, "participant.deleted", json!({}), start_time());
    assert!(
        store
            .delete_participant(gone, std::slice::from_ref(&deleted))
            .await
            .unwrap()
    );
    assert!(!store.delete_participant(gone, &[]).await.unwrap());
    assert_eq!(
        store.get_participant(&program.id, &gone.id).await.unwrap(),
        None
    );
    assert_eq!(store.get_event(&deleted.id).await.unwrap(), Some(deleted));
    // Its email, user id and code can be used again.
    let again = participant(&program, Some("P0@example.com"), Some("u0"), "LISTED000");
    store.insert_participant(&again, &[]).await.unwrap();
}

pub async fn the_inbound_key_is_replaced_atomically(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let first = issue_key(&program.id, KeyKind::Inbound, start_time());
    let second = issue_key(&program.id, KeyKind::Inbound, start_time());
    store.replace_inbound_key(&first.record).await.unwrap();
    store.replace_inbound_key(&second.record).await.unwrap();
    assert_eq!(
        store.find_api_key(&first.record.key_id).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_api_key(&second.record.key_id).await.unwrap(),
        Some(second.record.clone())
    );
    let mut orphan = issue_key("prg_missing", KeyKind::Inbound, start_time()).record;
    orphan.program_id = "prg_missing".into();
    assert!(matches!(
        store.replace_inbound_key(&orphan).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn a_referral_is_found_by_its_referee(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let referral = insert(store.as_ref(), &program, "user_1", "BYREFEREE1").await;
    assert_eq!(
        store
            .find_referral_by_referee(&program.id, "user_9")
            .await
            .unwrap(),
        None
    );
    let attached = with_referee(referral, "user_9");
    update(store.as_ref(), &attached, &[]).await.unwrap();
    assert_eq!(
        store
            .find_referral_by_referee(&program.id, "user_9")
            .await
            .unwrap(),
        Some(attached.record)
    );
}

fn signup(waitlist: &Waitlist, participant_id: &str, key: &str) -> Signup {
    let id = RandomIds.new_uuid();
    Signup {
        rank: format!("{key}#{id}"),
        id,
        waitlist_id: waitlist.id.clone(),
        program_id: waitlist.program_id.clone(),
        participant_id: participant_id.into(),
        email: Some(format!("{participant_id}@example.com")),
        name: None,
        referral_code: "CODE".into(),
        created_at: start_time(),
        version: 1,
    }
}

/// The waitlist as the next change writes it.
fn bumped(waitlist: &Waitlist, count_change: i64) -> Revision<Waitlist> {
    let mut next = waitlist.clone();
    next.signup_count = next.signup_count.saturating_add_signed(count_change);
    Revision::next(next)
}

fn creating(waitlist: &Waitlist, created: &Signup) -> SignupChange {
    SignupChange {
        waitlist: bumped(waitlist, 1),
        created: Some(created.clone()),
        moved: None,
        deleted: None,
        events: Vec::new(),
    }
}

pub async fn waitlist_order_changes_are_versioned_transactions(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let mut waitlist = Waitlist {
        id: RandomIds.new_uuid().into(),
        program_id: program.id.clone(),
        name: "Launch".into(),
        boost: 2,
        signup_count: 0,
        created_at: start_time(),
        version: 1,
    };
    store.insert_waitlist(&waitlist).await.unwrap();
    assert_eq!(
        store.get_waitlist(&program.id, &waitlist.id).await.unwrap(),
        Some(waitlist.clone())
    );
    assert_eq!(
        store.get_waitlist("prg_other", &waitlist.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.list_waitlists(&program.id).await.unwrap(),
        vec![waitlist.clone()]
    );

    let mut signups = Vec::new();
    for (participant, key) in [("p1", "V"), ("p2", "k"), ("p3", "t")] {
        let created = signup(&waitlist, participant, key);
        store
            .write_signups(&creating(&waitlist, &created))
            .await
            .unwrap();
        waitlist = bumped(&waitlist, 1).record;
        signups.push(created);
    }
    let ranks = |list: Vec<Signup>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = store.signups_from(&waitlist.id, 0, 10).await.unwrap();
    assert_eq!(all, signups);
    assert_eq!(
        ranks(store.signups_from(&waitlist.id, 1, 1).await.unwrap()),
        [signups[1].id.clone()]
    );
    assert_eq!(
        ranks(
            store
                .signups_before(&waitlist.id, &signups[2].rank, 5)
                .await
                .unwrap()
        ),
        [signups[1].id.clone(), signups[0].id.clone()],
        "nearest first"
    );
    assert_eq!(
        ranks(store.signups_before(&waitlist.id, "~", 1).await.unwrap()),
        [signups[2].id.clone()]
    );
    for (index, signup) in signups.iter().enumerate() {
        assert_eq!(
            store
                .count_before(&waitlist.id, &signup.rank)
                .await
                .unwrap(),
            index as u64
        );
    }
    assert_eq!(
        store.find_signup(&waitlist.id, "p2").await.unwrap(),
        Some(signups[1].clone())
    );
    assert_eq!(
        store
            .get_signup(&waitlist.id, &signups[1].id)
            .await
            .unwrap(),
        Some(signups[1].clone())
    );

    // A change from a stale read of the waitlist loses and writes nothing.
    let stale = SignupChange {
        waitlist: bumped(&bumped(&waitlist, 0).record, 0),
        ..creating(&waitlist, &signup(&waitlist, "p9", "z"))
    };
    assert!(matches!(
        store.write_signups(&stale).await,
        Err(StoreError::VersionConflict)
    ));
    assert_eq!(store.find_signup(&waitlist.id, "p9").await.unwrap(), None);
    // One signup per participant.
    let twice = creating(&waitlist, &signup(&waitlist, "p1", "x"));
    assert!(matches!(
        store.write_signups(&twice).await,
        Err(StoreError::ParticipantExists)
    ));

    // Moving the last one to the front rewrites its rank only; its event goes in the same write.
    let mut moved = signups[2].clone();
    moved.rank = format!("F#{}", moved.id);
    let moved_event = event(&program, "signup.position_changed", json!({}), start_time());
    let change = SignupChange {
        waitlist: bumped(&waitlist, 0),
        created: None,
        moved: Some(Revision::next(moved.clone())),
        deleted: None,
        events: vec![moved_event.clone()],
    };
    store.write_signups(&change).await.unwrap();
    waitlist = bumped(&waitlist, 0).record;
    assert_eq!(
        store.get_event(&moved_event.id).await.unwrap(),
        Some(moved_event)
    );
    assert_eq!(
        ranks(store.signups_from(&waitlist.id, 0, 10).await.unwrap()),
        [
            moved.id.clone(),
            signups[0].id.clone(),
            signups[1].id.clone()
        ]
    );
    // A move from a stale signup loses.
    let stale_move = Revision::next(signups[2].clone());
    let change = SignupChange {
        waitlist: bumped(&waitlist, 0),
        created: None,
        moved: Some(stale_move),
        deleted: None,
        events: Vec::new(),
    };
    assert!(matches!(
        store.write_signups(&change).await,
        Err(StoreError::VersionConflict)
    ));

    // Deleting frees the participant's place.
    let change = SignupChange {
        waitlist: bumped(&waitlist, -1),
        created: None,
        moved: None,
        deleted: Some(signups[0].clone()),
        events: Vec::new(),
    };
    store.write_signups(&change).await.unwrap();
    waitlist = bumped(&waitlist, -1).record;
    assert_eq!(store.find_signup(&waitlist.id, "p1").await.unwrap(), None);
    assert_eq!(
        store
            .count_before(&waitlist.id, &signups[1].rank)
            .await
            .unwrap(),
        1
    );
    let stored = store
        .get_waitlist(&program.id, &waitlist.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.signup_count, stored.version), (2, waitlist.version));
    store
        .write_signups(&creating(&waitlist, &signup(&waitlist, "p1", "zz")))
        .await
        .unwrap();
}

pub async fn events_keep_their_waitlist_and_every_digit(store: Arc<dyn Store>) {
    let program = program(store.as_ref()).await;
    let data = r#"{"n":99999999999999999999999999999,"x":5,"y":5.0,"z":0.1,"e":1.50e-7}"#;
    let mut about_a_waitlist = event(
        &program,
        "signup.created",
        serde_json::from_str(data).unwrap(),
        start_time(),
    );
    about_a_waitlist.waitlist_id = Some("wl_1".into());
    let about_none = event(&program, "link.clicked", json!({}), start_time());
    for event in [&about_a_waitlist, &about_none] {
        store.publish_event(event, None).await.unwrap();
    }
    let read = store
        .get_event(&about_a_waitlist.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.waitlist_id.as_deref(), Some("wl_1"));
    assert_eq!(read.data.to_string(), data);
    let listed = store.list_events(&program.id, None, 10).await.unwrap();
    assert_eq!(listed, [about_a_waitlist, about_none]);
    assert_eq!(listed[1].waitlist_id, None);
}

macro_rules! conformance_suite {
    ($adapter:ident, $factory:expr $(, $needs:ident)?) => {
        mod $adapter {
            use super::*;
            conformance_suite!(@cases [$($needs)?] $factory;
                programs_settings_and_keys,
                insert_writes_the_referral_and_its_event_together,
                a_referrals_events_are_found_by_its_code,
                uniqueness_rules_hold,
                updates_are_conditional_on_the_version,
                pending_cap_counts_only_unlapsed_pending_referrals,
                lists_counts_and_leaderboard_see_lapsed_as_expired,
                counts_and_the_leaderboard_follow_every_write,
                counts_stay_exact_under_concurrent_writes,
                events_page_in_write_order,
                webhooks_are_versioned_and_scoped_to_their_program,
                deliveries_insert_once_update_by_version_and_list_newest_first,
                published_events_are_idempotent_per_key,
                events_keep_their_waitlist_and_every_digit,
                racing_updates_of_one_version_succeed_once,
                the_pending_cap_holds_under_concurrent_inserts,
                participants_are_unique_by_email_user_id_and_code,
                joins_count_on_the_referrer_atomically,
                participants_page_newest_first_and_deleting_frees_their_keys,
                the_inbound_key_is_replaced_atomically,
                a_referral_is_found_by_its_referee,
                waitlist_order_changes_are_versioned_transactions,
            );
        }
    };
    (@cases [] $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let subject: Subject = $factory;
                super::$case(subject.store.clone()).await;
            }
        )+
    };
    (@cases [emulators] $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            #[cfg_attr(not(feature = "emulators"), ignore = "needs moto server: scripts/test.sh runs it")]
            async fn $case() {
                let subject: Subject = $factory;
                super::$case(subject.store.clone()).await;
            }
        )+
    };
}

conformance_suite!(embedded_store, embedded());
conformance_suite!(dynamodb_store, dynamodb().await, emulators);
