//! Schema and migrations, versioned with `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry migrates from version `index` to `index + 1`; append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE programs (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    program_id TEXT NOT NULL REFERENCES programs (id),
    doc TEXT NOT NULL
);
CREATE TABLE referrals (
    referral_id TEXT PRIMARY KEY,
    program_id TEXT NOT NULL REFERENCES programs (id),
    code TEXT NOT NULL,
    referrer_id TEXT NOT NULL,
    referred_user_id TEXT,
    user_name TEXT,
    status TEXT NOT NULL,
    expires_at INTEGER,
    rewards_claimed INTEGER NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (program_id, code)
);
-- A user is referred at most once per program.
CREATE UNIQUE INDEX referrals_referee ON referrals (program_id, referred_user_id)
    WHERE referred_user_id IS NOT NULL;
-- At most one open (pending, no referee) code per referrer: it is reused, never duplicated.
CREATE UNIQUE INDEX referrals_open ON referrals (program_id, referrer_id)
    WHERE status = 'pending' AND referred_user_id IS NULL;
CREATE INDEX referrals_by_referrer ON referrals (program_id, referrer_id, status);
CREATE INDEX referrals_lapsing ON referrals (status, expires_at);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    program_id TEXT NOT NULL,
    event TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX outbox_by_program ON outbox (program_id, seq);
"#,
    r#"
ALTER TABLE outbox ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX outbox_idempotency ON outbox (program_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE webhooks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    program_id TEXT NOT NULL REFERENCES programs (id),
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX webhooks_by_program ON webhooks (program_id, seq);
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
-- The delivery queue: a job is due once visible_at (ms) has passed; claiming it leases it by
-- moving visible_at forward, so a worker that dies mid-send leaves it to be claimed again.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    visible_at INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (visible_at);
"#,
    r#"
CREATE TABLE participants (
    id TEXT PRIMARY KEY,
    program_id TEXT NOT NULL REFERENCES programs (id),
    email_key TEXT,
    user_id TEXT,
    code TEXT NOT NULL,
    -- Kept outside the document: joins add to the referrer's count (and version) in their own
    -- transaction; reads put both back into the document.
    referrals_count INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (program_id, code)
);
CREATE UNIQUE INDEX participants_email ON participants (program_id, email_key)
    WHERE email_key IS NOT NULL;
CREATE UNIQUE INDEX participants_user ON participants (program_id, user_id)
    WHERE user_id IS NOT NULL;
-- Participant codes and referral codes share one namespace per program: a join may name either.
CREATE TRIGGER participant_code_is_free BEFORE INSERT ON participants
WHEN EXISTS (SELECT 1 FROM referrals WHERE program_id = NEW.program_id AND code = NEW.code)
BEGIN SELECT RAISE(ABORT, 'code taken'); END;
CREATE TRIGGER referral_code_is_free BEFORE INSERT ON referrals
WHEN EXISTS (SELECT 1 FROM participants WHERE program_id = NEW.program_id AND code = NEW.code)
BEGIN SELECT RAISE(ABORT, 'code taken'); END;
"#,
    r#"
CREATE TABLE waitlists (
    id TEXT PRIMARY KEY,
    program_id TEXT NOT NULL REFERENCES programs (id),
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX waitlists_by_program ON waitlists (program_id);
-- A signup's place is the byte order of its rank (BINARY collation).
CREATE TABLE signups (
    id TEXT PRIMARY KEY,
    waitlist_id TEXT NOT NULL REFERENCES waitlists (id),
    participant_id TEXT NOT NULL,
    rank TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (waitlist_id, participant_id),
    UNIQUE (waitlist_id, rank)
);
"#,
    r#"
-- Whose job it is, so the delivery engine limits each webhook's attempts in flight.
ALTER TABLE jobs ADD COLUMN webhook_id TEXT NOT NULL DEFAULT '';
"#,
    r#"
-- Whether a worker holds the job (visible_at is then its lease's end, not a delay), so a restart can
-- hand back what a killed process held.
ALTER TABLE jobs ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- A referral's events, for its page in the dashboard.
CREATE INDEX outbox_by_referral ON outbox (program_id, json_extract(doc, '$.data.referral_code'), seq);
"#,
    r#"
-- Attempts started per webhook per second, for webhooks with a rate limit.
CREATE TABLE send_windows (
    webhook_id TEXT NOT NULL,
    second INTEGER NOT NULL,
    sends INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, second)
) WITHOUT ROWID;
"#,
];

pub fn prepare(connection: &mut Connection) -> rusqlite::Result<()> {
    // WAL lets readers proceed during a write; FULL sync makes every commit survive power loss too.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = connection.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}
