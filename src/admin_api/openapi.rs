//! `GET /openapi.json`: the API's OpenAPI 3 description, generated from the handlers.

use std::sync::LazyLock;

use actix_web::{HttpRequest, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::OpenApi;

use super::auth::Admin;
use super::bans::{Ban, BanKind, Bans, Unbanned};
use super::problem::Problem;
use super::rules::{CreateRule, Trimmed};
use crate::rules::{Rule, RuleAction, RuleId, RulePage, RuleSource, RuleState, Trim};

/// The description, with paths relative to where the scope is mounted.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "actix-bouncer admin API",
        description = "Rules, bans and trimming of an actix-bouncer instance. Every route needs `Authorization: Bearer <token>`; errors are `application/problem+json`, validation errors name the bad `field`."
    ),
    paths(
        super::rules::list_rules,
        super::rules::add_rule,
        super::rules::remove_rule,
        super::bans::list_bans,
        super::bans::lift_ban,
        super::rules::trim_rules,
        openapi_json,
    ),
    components(schemas(
        Rule, RuleId, RuleAction, RuleSource, RuleState, RulePage, CreateRule, Trim, Trimmed,
        Bans, Ban, BanKind, Unbanned, Problem
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "rules", description = "Block and allow rules, shared by every instance using the rule store"),
        (name = "bans", description = "Bans of this instance, and the automatic rules that record them"),
        (name = "meta", description = "This description"),
    )
)]
struct AdminApiDoc;

/// Adds the `bearer` security scheme every route requires.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A token configured with `[[admin_api.tokens]]` or `BouncerBuilder::admin_token`",
                        ))
                        .build(),
                ),
            );
    }
}

/// Built once: the handlers' descriptions do not change.
static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(AdminApiDoc::openapi);

/// The admin API's OpenAPI 3 description, with paths relative to where
/// [`admin_scope`](crate::Bouncer::admin_scope) is mounted (`/rules`, `/bans/{key}`, …) and no
/// `servers`: merge it into an app's own description with
/// [`nest`](utoipa::openapi::OpenApi::nest) under the mount path.
///
/// ```
/// let doc = actix_bouncer::admin_api::openapi();
/// assert!(doc.paths.paths.contains_key("/rules"));
/// ```
pub fn openapi() -> utoipa::openapi::OpenApi {
    DOC.clone()
}

/// This description, with the mount path as its server.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3 description of this API", content_type = "application/json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn openapi_json(_: Admin, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let mut doc = openapi();
    // The path this request came by, less this route: where the scope is mounted, outer
    // scopes included.
    if let Some(mount) = req.path().strip_suffix("/openapi.json") {
        doc.servers = Some(vec![Server::new(mount)]);
    }
    let json = doc.to_json().map_err(|error| {
        tracing::error!(target: "actix_bouncer", %error, "admin API: the OpenAPI description failed to serialize");
        Problem::new(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "The description could not be written.",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}
