//! The MTN MoMo Open API dialect: routes, credentials, validation and the wire shapes.
//!
//! Faithful to the real sandbox where it and the published definitions disagree (reference
//! §15): `reason` is a bare string code (configurable to the spec's object), creating POSTs
//! answer 202 with an empty body, bad token credentials answer `500 {"error":"login_failed"}`,
//! and most business errors are 500 with `{"code","message"}`. The subscription-key check
//! runs first, like the API gateway in front of the real platform.

mod account;
mod auth;
mod collection;
pub mod error;
pub mod extract;
mod provisioning;
mod token;
pub mod validate;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router, middleware};
use mkoba_api_types::momo::{ErrorReason, Party as WireParty, Reason, RequestToPayResult};
use mkoba_platform::model::{Payment, Product};
use mkoba_platform::{CallbackRenderer, Platform};

/// How `reason` is rendered in status and callback bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasonFormat {
    /// `"reason":"APPROVAL_REJECTED"`, as the real sandbox sends it.
    #[default]
    String,
    /// `"reason":{"code":"APPROVAL_REJECTED","message":"…"}`, as the definitions declare.
    Object,
}

/// Dialect settings.
#[derive(Debug, Clone, Default)]
pub struct MomoConfig {
    pub reason_format: ReasonFormat,
}

/// What every MoMo handler gets.
#[derive(Debug, Clone)]
pub struct MomoState {
    pub platform: Platform,
    pub config: Arc<MomoConfig>,
}

/// The currency of a target environment (reference §13): EUR in the sandbox.
pub fn environment_currency(environment: &str) -> &'static str {
    match environment {
        "mtnuganda" => "UGX",
        "mtnghana" => "GHS",
        "mtnivorycoast" | "mtnbenin" => "XOF",
        "mtnzambia" => "ZMW",
        "mtncameroon" | "mtncongo" => "XAF",
        "mtnswaziland" => "SZL",
        "mtnguineaconakry" => "GNF",
        "mtnsouthafrica" => "ZAR",
        "mtnliberia" => "LRD",
        "mtnrwanda" => "RWF",
        _ => "EUR",
    }
}

/// The status body of a payment (`GET …/requesttopay/{id}`), also its callback body.
pub fn status_body(p: &Payment, format: ReasonFormat) -> RequestToPayResult {
    RequestToPayResult {
        financial_transaction_id: p.financial_transaction_id.clone(),
        external_id: p.external_id.clone(),
        amount: p.amount.to_decimal_string(),
        currency: p.currency().to_string(),
        payer: WireParty {
            party_id_type: p.party.id_type.as_str().to_owned(),
            party_id: p.party.id.clone(),
        },
        payer_message: p.payer_message.clone(),
        payee_note: p.payee_note.clone(),
        status: p.status.as_str().to_owned(),
        reason: p.reason.as_ref().map(|code| match format {
            ReasonFormat::String => Reason::Code(code.clone()),
            ReasonFormat::Object => Reason::Object(ErrorReason {
                code: code.clone(),
                message: error::message_for(code).to_owned(),
            }),
        }),
    }
}

/// The renderer the platform uses for callback bodies.
pub fn callback_renderer(config: &MomoConfig) -> CallbackRenderer {
    let format = config.reason_format;
    Arc::new(move |p: &Payment| {
        serde_json::to_string(&status_body(p, format)).unwrap_or_else(|_| "{}".to_owned())
    })
}

fn product_routes(state: &MomoState, product: Product) -> Router<MomoState> {
    let mut r = Router::new()
        .route("/token/", post(token::create_access_token))
        .route("/token", post(token::create_access_token))
        .route("/v1_0/account/balance", get(account::get_account_balance))
        .route(
            "/v1_0/account/balance/{currency}",
            get(account::get_account_balance_in_currency),
        )
        .route(
            "/v1_0/accountholder/{type}/{id}/active",
            get(account::validate_account_holder_status),
        )
        .route(
            "/v1_0/accountholder/{type}/{id}/basicuserinfo",
            get(account::get_basic_userinfo),
        );
    if product == Product::Collection {
        r = r
            .route("/v1_0/requesttopay", post(collection::request_to_pay))
            .route(
                "/v1_0/requesttopay/{reference_id}",
                get(collection::get_request_to_pay_status),
            )
            .route(
                "/v1_0/requesttopay/{reference_id}/deliverynotification",
                post(collection::request_to_pay_delivery_notification),
            );
    }
    r.route_layer(middleware::from_fn_with_state(
        (state.clone(), Some(product)),
        auth::require_subscription,
    ))
    .layer(Extension(product))
}

/// Every MoMo route: provisioning at the root and the three products under their prefix.
pub fn router(state: MomoState) -> Router {
    let provisioning = Router::new()
        .route("/v1_0/apiuser", post(provisioning::create_api_user))
        .route("/v1_0/apiuser/{id}", get(provisioning::get_api_user))
        .route(
            "/v1_0/apiuser/{id}/apikey",
            post(provisioning::create_api_key),
        )
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), None),
            auth::require_subscription,
        ));
    let mut app = provisioning;
    for product in Product::ALL {
        app = app.nest(
            &format!("/{}", product.as_str()),
            product_routes(&state, product),
        );
    }
    app.with_state(state)
}
