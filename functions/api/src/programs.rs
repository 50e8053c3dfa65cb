//! Operator routes: programs and their API keys.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, Operator, PathParams};
use crate::openapi::{OperatorUnauthorized, PayloadTooLarge, Unavailable};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use refwire_core::programs::KeyKind;
use refwire_core::programs::{ReferralSettings, SettingsUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProgram {
    /// 1-200 characters after trimming.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Settings that differ from the defaults; absent or `null` keeps every default.
    settings: Option<SettingsUpdate>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedProgram {
    program_id: String,
    name: String,
    settings: ReferralSettings,
    /// Shown only in this response.
    secret_key: String,
    /// Shown only in this response.
    publishable_key: String,
}

/// 201 with the program and its first secret and publishable keys, shown only in this response.
#[utoipa::path(
    post,
    path = "/v1/programs",
    operation_id = "createProgram",
    tag = "programs",
    summary = "Create a program",
    description = "Key: the operator key (`REFWIRE_OPERATOR_KEY`, or the one refwire-local printed on first start), not a program key.",
    request_body = CreateProgram,
    security(("OperatorApiKey" = []), ("OperatorBearer" = [])),
    responses(
        (status = 201, description = "The program with its first secret and publishable keys, shown only in this response.", body = CreatedProgram),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = OperatorUnauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create_program(
    State(app): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<CreateProgram>,
) -> Result<(StatusCode, Json<CreatedProgram>), ApiError> {
    let created = app.create_program(&body.name, body.settings).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedProgram {
            program_id: created.program.id.into(),
            name: created.program.name,
            settings: created.program.settings,
            secret_key: created.secret_key,
            publishable_key: created.publishable_key,
        }),
    ))
}

/// The kinds of API key an operator issues (inbound tokens come from `/v1/inbound/rotate-token`).
/// `secret` (`rw_sec_...`): everything in its program. `publishable` (`rw_pub_...`): create and
/// read referrals and read the leaderboard.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = KeyKind)]
pub enum ApiKeyKind {
    Secret,
    Publishable,
}

impl From<ApiKeyKind> for KeyKind {
    fn from(kind: ApiKeyKind) -> KeyKind {
        match kind {
            ApiKeyKind::Secret => KeyKind::Secret,
            ApiKeyKind::Publishable => KeyKind::Publishable,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKey {
    kind: ApiKeyKind,
}

#[derive(Serialize, ToSchema)]
#[schema(as = IssuedKey)]
pub struct IssuedKeyView {
    key_id: String,
    kind: ApiKeyKind,
    /// The key itself, shown only in this response.
    key: String,
}

#[utoipa::path(
    post,
    path = "/v1/programs/{program_id}/keys",
    operation_id = "issueKey",
    tag = "programs",
    summary = "Issue another API key for a program",
    description = "Key: the operator key (`REFWIRE_OPERATOR_KEY`, or the one refwire-local printed on first start), not a program key.",
    params(("program_id" = String, Path, description = "The program id.")),
    request_body = IssueKey,
    security(("OperatorApiKey" = []), ("OperatorBearer" = [])),
    responses(
        (status = 201, description = "The new key, shown only in this response.", body = IssuedKeyView),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = OperatorUnauthorized),
        (status = 404, description = "`not_found`: no such program.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn issue_key(
    State(app): State<AppState>,
    _operator: Operator,
    PathParams(program_id): PathParams<String>,
    JsonBody(body): JsonBody<IssueKey>,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let (key_id, key) = app.issue_api_key(&program_id, body.kind.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKeyView {
            key_id,
            kind: body.kind,
            key,
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/programs/{program_id}/keys/{key_id}",
    operation_id = "revokeKey",
    tag = "programs",
    summary = "Revoke an API key",
    description = "Key: the operator key (`REFWIRE_OPERATOR_KEY`, or the one refwire-local printed on first start), not a program key.",
    params(("program_id" = String, Path, description = "The program id."), ("key_id" = String, Path, description = "The key id.")),
    security(("OperatorApiKey" = []), ("OperatorBearer" = [])),
    responses(
        (status = 204, description = "The key is revoked; no body."),
        (status = 401, response = OperatorUnauthorized),
        (status = 404, description = "`not_found`: no such key in this program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn revoke_key(
    State(app): State<AppState>,
    _operator: Operator,
    PathParams((program_id, key_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.revoke_api_key(&program_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
