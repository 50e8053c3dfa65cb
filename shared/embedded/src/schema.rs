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
    r#"
-- Running counts per program and totals per referrer, written in the transaction of every referral
-- write, so stats and the leaderboard read a few rows at any program size. Statuses as stored: a
-- pending referral past its expiry counts as expired to a reader (referrals.rs), written or not.
CREATE TABLE referral_counts (
    program_id TEXT PRIMARY KEY,
    total INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    expired INTEGER NOT NULL,
    rewards_claimed INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO referral_counts
SELECT program_id, COUNT(*), SUM(status = 'pending'), SUM(status = 'completed'),
       SUM(status = 'expired'), SUM(rewards_claimed)
FROM referrals GROUP BY program_id;
-- user_name comes from named_by, the referrer's latest referral (by id) that gave one.
CREATE TABLE referrer_totals (
    program_id TEXT NOT NULL,
    referrer_id TEXT NOT NULL,
    total INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    user_name TEXT,
    named_by TEXT,
    PRIMARY KEY (program_id, referrer_id)
) WITHOUT ROWID;
CREATE INDEX referrer_totals_ranked
    ON referrer_totals (program_id, completed DESC, total DESC, referrer_id);
INSERT INTO referrer_totals (program_id, referrer_id, total, completed, named_by)
SELECT program_id, referrer_id, COUNT(*), SUM(status = 'completed'),
       MAX(CASE WHEN user_name IS NOT NULL THEN referral_id END)
FROM referrals GROUP BY program_id, referrer_id;
UPDATE referrer_totals
SET user_name = (SELECT user_name FROM referrals WHERE referral_id = referrer_totals.named_by)
WHERE named_by IS NOT NULL;
-- A referrer's unlapsed pending referrals (the cap, the leaderboard's pending) and a program's
-- lapsed ones (stats) are ranges of these.
DROP INDEX referrals_by_referrer;
CREATE INDEX referrals_by_referrer ON referrals (program_id, referrer_id, status, expires_at);
CREATE INDEX referrals_lapsing_by_program ON referrals (program_id, status, expires_at);
"#,
    r#"
-- A delivery is its own job: due_at (ms) is when a worker should next look at it (its next attempt,
-- or the end of a claim on that attempt; NULL once final) and next_attempt the attempt it makes.
-- Which deliveries are being sent is held in the process's memory (a restart drops the holds;
-- claims in the documents keep in-flight attempts back). This saves a row written, leased and
-- deleted per attempt; the jobs table goes.
ALTER TABLE deliveries ADD COLUMN due_at INTEGER;
ALTER TABLE deliveries ADD COLUMN next_attempt INTEGER NOT NULL DEFAULT 1;
UPDATE deliveries SET
    next_attempt = json_array_length(doc, '$.attempts') + 1,
    due_at = CASE WHEN state IN ('pending', 'retrying') THEN CAST(1000 * unixepoch(MAX(
        json_extract(doc, '$.next_attempt_at'),
        CASE WHEN json_extract(doc, '$.claim.attempt') = json_array_length(doc, '$.attempts') + 1
             THEN json_extract(doc, '$.claim.until')
             ELSE json_extract(doc, '$.next_attempt_at') END
    ), 'subsec') AS INTEGER) END;
CREATE INDEX deliveries_due ON deliveries (due_at, webhook_id, id, next_attempt)
    WHERE due_at IS NOT NULL;
DROP TABLE jobs;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::FromSql;

    /// The migration that added referral_counts and referrer_totals; the one that made deliveries
    /// their own jobs.
    const COUNTS_MIGRATION: usize = 8;
    const DUE_AT_MIGRATION: usize = 9;

    /// A database migrated up to (not including) migration `index`.
    fn at_version(index: usize) -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..index] {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .pragma_update(None, "user_version", index)
            .unwrap();
        connection
    }

    /// Every row `sql` selects, as a tuple of its six columns.
    fn six_columns<A, B, C, D, E, F>(connection: &Connection, sql: &str) -> Vec<(A, B, C, D, E, F)>
    where
        A: FromSql,
        B: FromSql,
        C: FromSql,
        D: FromSql,
        E: FromSql,
        F: FromSql,
    {
        connection
            .prepare(sql)
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn upgrading_a_file_counts_the_referrals_it_holds() {
        let mut connection = at_version(COUNTS_MIGRATION);
        connection
            .execute_batch(
                "INSERT INTO programs VALUES ('prg_1', '{}'), ('prg_2', '{}');
                 INSERT INTO referrals (referral_id, program_id, code, referrer_id, user_name,
                     status, rewards_claimed, version, doc)
                 VALUES ('ref_1', 'prg_1', 'C1', 'ann', 'Ann', 'pending', 0, 1, '{}'),
                        ('ref_2', 'prg_1', 'C2', 'ann', 'Annie', 'completed', 2, 3, '{}'),
                        ('ref_3', 'prg_1', 'C3', 'ann', NULL, 'expired', 0, 2, '{}'),
                        ('ref_4', 'prg_1', 'C4', 'bob', NULL, 'pending', 0, 1, '{}'),
                        ('ref_5', 'prg_2', 'C5', 'ann', 'Other', 'completed', 1, 2, '{}');",
            )
            .unwrap();

        prepare(&mut connection).unwrap();

        let counts: Vec<(String, i64, i64, i64, i64, i64)> = six_columns(
            &connection,
            "SELECT * FROM referral_counts ORDER BY program_id",
        );
        assert_eq!(
            counts,
            [
                ("prg_1".into(), 4, 2, 1, 1, 2),
                ("prg_2".into(), 1, 0, 1, 0, 1)
            ]
        );
        type Totals = (String, String, i64, i64, Option<String>, Option<String>);
        let totals: Vec<Totals> = six_columns(
            &connection,
            "SELECT * FROM referrer_totals ORDER BY program_id, referrer_id",
        );
        assert_eq!(
            totals,
            [
                (
                    "prg_1".into(),
                    "ann".into(),
                    3,
                    1,
                    Some("Annie".into()),
                    Some("ref_2".into())
                ),
                ("prg_1".into(), "bob".into(), 1, 0, None, None),
                (
                    "prg_2".into(),
                    "ann".into(),
                    1,
                    1,
                    Some("Other".into()),
                    Some("ref_5".into())
                ),
            ]
        );
    }

    #[test]
    fn upgrading_a_file_makes_each_open_delivery_due_when_its_document_says() {
        let mut connection = at_version(DUE_AT_MIGRATION);
        let attempt = r#"{"n":1,"at":"2027-01-15T08:00:00.000Z","status":500,"response_ms":3,"error":null,"response_excerpt":null}"#;
        connection
            .execute_batch(&format!(
                r#"INSERT INTO deliveries (id, webhook_id, state, created_at, version, doc) VALUES
                ('dlv_new', 'wh_1', 'pending', 0, 1,
                 '{{"attempts":[],"next_attempt_at":"2027-01-15T08:00:00.000Z"}}'),
                ('dlv_held', 'wh_1', 'retrying', 0, 3,
                 '{{"attempts":[{attempt}],"next_attempt_at":"2027-01-15T08:01:00.000Z",
                   "claim":{{"attempt":2,"until":"2027-01-15T08:01:40.250Z"}}}}'),
                ('dlv_stale_claim', 'wh_1', 'retrying', 0, 2,
                 '{{"attempts":[{attempt}],"next_attempt_at":"2027-01-15T08:01:00.000Z",
                   "claim":{{"attempt":1,"until":"2027-01-15T08:09:00.000Z"}}}}'),
                ('dlv_done', 'wh_1', 'succeeded', 0, 3,
                 '{{"attempts":[{attempt}],"next_attempt_at":null}}');
                INSERT INTO jobs (id, delivery_id, attempt, visible_at, webhook_id)
                VALUES ('dlv_new-1', 'dlv_new', 1, 0, 'wh_1');"#
            ))
            .unwrap();

        prepare(&mut connection).unwrap();

        let eight: i64 = 1_800_000_000_000; // 2027-01-15T08:00:00Z in milliseconds
        let rows: Vec<(String, Option<i64>, i64)> = connection
            .prepare("SELECT id, due_at, next_attempt FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("dlv_done".into(), None, 2),
                ("dlv_held".into(), Some(eight + 100_250), 2),
                ("dlv_new".into(), Some(eight), 1),
                ("dlv_stale_claim".into(), Some(eight + 60_000), 2),
            ]
        );
        let jobs: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'jobs'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(jobs, 0);
    }
}
