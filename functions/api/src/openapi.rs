//! The OpenAPI description, generated from the handlers' `#[utoipa::path]` annotations and the
//! request and response types. `GET /openapi.json` serves it; docs/openapi.json is the same
//! document, committed (a test keeps the two equal).

use crate::error::ErrorBody;
use crate::{participants, programs, referrals, waitlists, webhooks};
use axum::Json;
use serde::Serialize;
use std::sync::LazyLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Refwire API",
        description = "Every request and response body is JSON. Errors always have the shape of \
            `Error`, with a 4xx status for anything the caller can fix (and nothing changed). \
            Request bodies above 256 KB get 413. Unknown paths get 404 `not_found` and unsupported \
            methods 405 `method_not_allowed`.\n\n\
            JSON request bodies are strict: a field the operation does not define is refused with \
            400 `validation_failed` naming it (every body schema has `additionalProperties: false`), \
            and so is a control character (NUL, newline, DEL, ...) in any string outside the \
            free-form `metadata` and `data` objects, in a path parameter or in a query parameter. \
            Integer fields also take whole-valued numbers such as `30.0`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:3000", description = "refwire-local")),
    security(("ApiKey" = []), ("BearerAuth" = [])),
    tags(
        (name = "health"),
        (name = "programs", description = "Operator routes: programs and their API keys."),
        (name = "referrals", description = "The Tolinku-compatible referral routes."),
        (name = "events", description = "The program's outbox and custom events."),
        (name = "webhooks", description = "Webhook endpoints."),
        (name = "deliveries", description = "The delivery log and resends."),
        (name = "subscriptions", description = "The ReferralLoop-compatible subscribe/unsubscribe pair."),
        (name = "participants", description = "The people of a program, their own codes, and qualification (Referral Factory's inbound webhook)."),
        (name = "waitlists", description = "ReferralLoop-style waitlists: signups in order, boosted by referrals."),
    ),
    paths(
        health,
        document,
        programs::create_program,
        programs::issue_key,
        programs::revoke_key,
        referrals::get_settings,
        referrals::update_settings,
        referrals::create,
        referrals::milestone,
        referrals::claim_reward,
        referrals::claim_referee_reward,
        referrals::leaderboard,
        referrals::stats,
        referrals::get,
        referrals::events,
        referrals::list,
        referrals::list_events,
        webhooks::publish_event,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::send_test,
        webhooks::rotate_secret,
        webhooks::list_deliveries,
        webhooks::recover,
        webhooks::get_delivery,
        webhooks::retry_delivery,
        webhooks::subscribe,
        webhooks::unsubscribe,
        participants::join,
        participants::list,
        participants::get,
        participants::delete,
        participants::qualify,
        participants::rotate_inbound_token,
        participants::inbound_qualify,
        waitlists::create,
        waitlists::list,
        waitlists::get,
        waitlists::join,
        waitlists::signups,
        waitlists::signup,
        waitlists::move_signup,
        waitlists::remove_signup,
    ),
    components(responses(
        Unauthorized,
        OperatorUnauthorized,
        Forbidden,
        PayloadTooLarge,
        Unavailable
    )),
    modifiers(&SecuritySchemes, &OptionalBodies, &ParameterErrors),
)]
struct ApiDoc;

/// The description as served and committed.
pub fn description() -> Document {
    ApiDoc::openapi()
}

/// Generated once: the document depends only on the code.
static DESCRIPTION: LazyLock<Document> = LazyLock::new(description);

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                description,
            )))
        };
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "ApiKey",
            header("A program's secret key (`rw_sec_...`) or publishable key (`rw_pub_...`)."),
        );
        components.add_security_scheme(
            "BearerAuth",
            bearer("The same program key as `Authorization: Bearer <key>`."),
        );
        components.add_security_scheme(
            "OperatorApiKey",
            header("The operator key (`rw_op_...`), for the /v1/programs routes."),
        );
        components.add_security_scheme(
            "OperatorBearer",
            bearer("The operator key as `Authorization: Bearer <key>`."),
        );
    }
}

/// An `Option<Body>` request body (one that may be left out) comes out as `oneOf: [Body, null]`,
/// which would say that the JSON `null` is a body; `required: false`, which it also gets, is what
/// says it may be left out.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut Document) {
        let contents = operations(openapi)
            .filter_map(|operation| match &mut operation.request_body {
                Some(RefOr::T(body)) => Some(body),
                _ => None,
            })
            .flat_map(|body| body.content.values_mut());
        for content in contents {
            let RefOr::T(content) = content else { continue };
            let Some(RefOr::T(Schema::OneOf(one_of))) = &mut content.schema else {
                continue;
            };
            one_of.items.retain(|item| {
                !matches!(item, RefOr::T(Schema::Object(object))
                    if object.schema_type == SchemaType::Type(Type::Null))
            });
            if let [only] = one_of.items.as_slice() {
                content.schema = Some(only.clone());
            }
        }
    }
}

/// Every operation with parameters may answer 400: a path or query parameter with a control
/// character is refused, whatever the operation.
struct ParameterErrors;

impl Modify for ParameterErrors {
    fn modify(&self, openapi: &mut Document) {
        for operation in operations(openapi) {
            if operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                operation
                    .responses
                    .responses
                    .entry("400".into())
                    .or_insert_with(|| {
                        error_response(
                            "`validation_failed`: a parameter holds a control character.",
                        )
                    });
            }
        }
    }
}

fn operations(openapi: &mut Document) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .into()
}

/// Error responses shared by many operations, under `#/components/responses/`.
macro_rules! shared_error_responses {
    ($($name:ident => $description:literal,)*) => {$(
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response($description))
            }
        }
    )*};
}

shared_error_responses! {
    Unauthorized => "`unauthorized`: missing or invalid API key.",
    OperatorUnauthorized => "`unauthorized`: missing or wrong operator key (also when the deployment has no operator key).",
    Forbidden => "`forbidden`: a publishable key may not perform this action; use a secret key.",
    PayloadTooLarge => "`payload_too_large`: the request body is larger than 256 KB.",
    Unavailable => "`unavailable`: the data store is temporarily unavailable.",
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    summary = "Liveness check",
    description = "No key needed.",
    security(()),
    responses((status = 200, description = "The service is up.", body = Health)),
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "health",
    summary = "This OpenAPI description",
    description = "No key needed. The same document as docs/openapi.json in the repository.",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of this API.", content_type = "application/json")),
)]
pub async fn document() -> Json<&'static Document> {
    Json(&DESCRIPTION)
}
