//! Operator routes: programs and their API keys.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, Operator};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use refwire_core::program::KeyKind;
use refwire_core::settings::SettingsUpdate;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct CreateProgram {
    name: String,
    settings: Option<SettingsUpdate>,
}

/// 201 with the program and its first secret and publishable keys, shown only in this response.
pub async fn create_program(
    State(app): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<CreateProgram>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let created = app.create_program(&body.name, body.settings).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "program_id": created.program.id,
            "name": created.program.name,
            "settings": created.program.settings,
            "secret_key": created.secret_key,
            "publishable_key": created.publishable_key,
        })),
    ))
}

#[derive(Deserialize)]
pub struct IssueKey {
    kind: KeyKind,
}

pub async fn issue_key(
    State(app): State<AppState>,
    _operator: Operator,
    Path(program_id): Path<String>,
    JsonBody(body): JsonBody<IssueKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key_id, key) = app.issue_api_key(&program_id, body.kind).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key_id": key_id, "kind": body.kind, "key": key })),
    ))
}

pub async fn revoke_key(
    State(app): State<AppState>,
    _operator: Operator,
    Path((program_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.revoke_api_key(&program_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
