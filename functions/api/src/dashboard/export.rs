//! CSV exports of a program's referrals and participants, read page by page through the same use
//! cases as the API.

use super::require_session;
use crate::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use refwire_core::ports::ReferralQuery;
use refwire_core::service::MAX_PAGE_LIMIT;
use refwire_core::time::{self, Timestamp};

pub async fn referrals(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = require_session(&app, &headers).await?.principal;
    let mut csv = Csv::new(&[
        "referral_code",
        "referral_url",
        "referrer_id",
        "user_name",
        "referred_user_id",
        "status",
        "milestone",
        "reward_claimed",
        "referee_reward_claimed",
        "created_at",
        "completed_at",
        "expires_at",
    ]);
    let mut query = ReferralQuery::default();
    loop {
        let page = app
            .list_referrals(&principal, &query, Some(MAX_PAGE_LIMIT))
            .await?;
        for referral in &page.referrals {
            csv.row(&[
                &referral.referral_code,
                &referral.referral_url,
                &referral.referrer_id,
                referral.user_name.as_deref().unwrap_or_default(),
                referral.referred_user_id.as_deref().unwrap_or_default(),
                referral.status.as_str(),
                referral.milestone.as_deref().unwrap_or_default(),
                &referral.reward_claimed.to_string(),
                &referral.referee_reward_claimed.to_string(),
                &time::format(&referral.created_at),
                &optional_time(referral.completed_at),
                &optional_time(referral.expires_at),
            ]);
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(csv.into_response("referrals.csv")),
        }
    }
}

pub async fn participants(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = require_session(&app, &headers).await?.principal;
    let mut csv = Csv::new(&[
        "id",
        "email",
        "user_id",
        "name",
        "referral_code",
        "referral_url",
        "referred_by",
        "source",
        "referrals_count",
        "qualified",
        "qualified_at",
        "created_at",
    ]);
    let mut cursor = None;
    loop {
        let page = app
            .participants()
            .list(
                &principal,
                None,
                None,
                cursor.as_deref(),
                Some(MAX_PAGE_LIMIT),
            )
            .await?;
        for participant in &page.participants {
            csv.row(&[
                &participant.id,
                participant.email.as_deref().unwrap_or_default(),
                participant.user_id.as_deref().unwrap_or_default(),
                participant.name.as_deref().unwrap_or_default(),
                &participant.referral_code,
                &participant.referral_url,
                participant.referred_by.as_deref().unwrap_or_default(),
                participant.source.label(),
                &participant.referrals_count.to_string(),
                &participant.qualified.to_string(),
                &optional_time(participant.qualified_at),
                &time::format(&participant.created_at),
            ]);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(csv.into_response("participants.csv")),
        }
    }
}

fn optional_time(at: Option<Timestamp>) -> String {
    at.as_ref().map(time::format).unwrap_or_default()
}

struct Csv(csv::Writer<Vec<u8>>);

impl Csv {
    fn new(header: &[&str]) -> Self {
        let mut csv = Csv(csv::Writer::from_writer(Vec::new()));
        csv.row(header);
        csv
    }

    /// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) gets a leading `'`, so
    /// opening an export cannot run what a user typed as their name.
    fn row(&mut self, cells: &[&str]) {
        let cells = cells.iter().map(|cell| {
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{cell}")
            } else {
                cell.to_string()
            }
        });
        // Writing into a Vec cannot fail.
        let _ = self.0.write_record(cells);
    }

    fn into_response(self, file_name: &str) -> Response {
        let body = self.0.into_inner().unwrap_or_default();
        let disposition = format!("attachment; filename=\"{file_name}\"");
        (
            [
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition).expect("file names are ASCII"),
                ),
            ],
            body,
        )
            .into_response()
    }
}
