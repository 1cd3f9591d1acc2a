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
mod consent;
pub mod error;
pub mod extract;
mod payments;
mod provisioning;
mod token;
mod v2;
pub mod validate;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Router, middleware};
use mkoba_api_types::momo::{
    CashTransferDetails, CashTransferResult, ErrorReason, Party as WireParty, Reason,
    RequestToPayResult, TransferResult,
};
use mkoba_platform::model::{
    CallbackMethod, Payment, PaymentKind, PaymentStatus, Product, SubscriptionKey,
};

use crate::extract::Path;
use crate::payments::Operation;
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

/// Every target environment an API user can be created for: the sandbox and MTN's markets
/// (reference §13).
pub const ENVIRONMENTS: [&str; 13] = [
    "sandbox",
    "mtnuganda",
    "mtnghana",
    "mtnivorycoast",
    "mtnzambia",
    "mtncameroon",
    "mtnbenin",
    "mtncongo",
    "mtnswaziland",
    "mtnguineaconakry",
    "mtnsouthafrica",
    "mtnliberia",
    "mtnrwanda",
];

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

/// The status body of a payment (`GET …/{referenceId}`), also its callback body:
/// `RequestToPayResult` (with `payer`) for collections, `TransferResult` (with `payee`) for
/// payouts. `reason` appears only once FAILED.
pub fn status_value(p: &Payment, format: ReasonFormat) -> StatusBody {
    let party = WireParty {
        party_id_type: p.party.id_type.as_str().to_owned(),
        party_id: p.party.id.clone(),
    };
    let reason = p
        .reason
        .as_ref()
        .filter(|_| p.status == PaymentStatus::Failed)
        .map(|code| match format {
            ReasonFormat::String => Reason::Code(code.clone()),
            ReasonFormat::Object => Reason::Object(ErrorReason {
                code: code.clone(),
                message: error::message_for(code).to_owned(),
            }),
        });
    if matches!(
        p.kind,
        PaymentKind::Invoice | PaymentKind::PreApproval | PaymentKind::BillPayment
    ) {
        return v2::status_body(p);
    }
    if p.kind == PaymentKind::CashTransfer {
        let d: CashTransferDetails = p
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        return StatusBody::CashTransfer(Box::new(CashTransferResult {
            financial_transaction_id: p.financial_transaction_id.clone(),
            status: p.status.as_str().to_owned(),
            reason,
            amount: p.amount.to_decimal_string(),
            currency: p.currency().to_string(),
            payee: party,
            external_id: p.external_id.clone(),
            orginating_country: d.orginating_country,
            original_amount: d.original_amount,
            original_currency: d.original_currency,
            payer_message: p.payer_message.clone(),
            payee_note: p.payee_note.clone(),
            payer_identification_type: d.payer_identification_type,
            payer_identification_number: d.payer_identification_number,
            payer_identity: d.payer_identity,
            payer_first_name: d.payer_first_name,
            payer_sur_name: d.payer_sur_name,
            payer_language_code: d.payer_language_code,
            payer_email: d.payer_email,
            payer_msisdn: d.payer_msisdn,
            payer_gender: d.payer_gender,
        }));
    }
    if p.kind.is_collection() {
        StatusBody::Collection(RequestToPayResult {
            financial_transaction_id: p.financial_transaction_id.clone(),
            external_id: p.external_id.clone(),
            amount: p.amount.to_decimal_string(),
            currency: p.currency().to_string(),
            payer: party,
            payer_message: p.payer_message.clone(),
            payee_note: p.payee_note.clone(),
            status: p.status.as_str().to_owned(),
            reason,
        })
    } else {
        StatusBody::Payout(TransferResult {
            financial_transaction_id: p.financial_transaction_id.clone(),
            external_id: p.external_id.clone(),
            amount: p.amount.to_decimal_string(),
            currency: p.currency().to_string(),
            payee: party,
            payer_message: p.payer_message.clone(),
            payee_note: p.payee_note.clone(),
            status: p.status.as_str().to_owned(),
            reason,
        })
    }
}

/// A status body, serialised in the field order the real platform uses.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum StatusBody {
    Collection(RequestToPayResult),
    Payout(TransferResult),
    CashTransfer(Box<CashTransferResult>),
    Invoice(Box<mkoba_api_types::momo::InvoiceResult>),
    PreApproval(mkoba_api_types::momo::PreApprovalResult),
    Payment(mkoba_api_types::momo::PaymentResult),
}

/// The renderer the platform uses for callback bodies.
pub fn callback_renderer(config: &MomoConfig) -> CallbackRenderer {
    let format = config.reason_format;
    Arc::new(move |p: &Payment| {
        serde_json::to_string(&status_value(p, format)).unwrap_or_else(|_| "{}".to_owned())
    })
}

fn create_route(op: Operation) -> MethodRouter<MomoState> {
    post(
        move |State(state): State<MomoState>,
              Extension(subscription): Extension<SubscriptionKey>,
              headers: HeaderMap,
              body: Bytes| async move {
            payments::create(state, subscription, headers, body, op).await
        },
    )
}

fn status_route(product: Product, kind: PaymentKind) -> MethodRouter<MomoState> {
    get(
        move |State(state): State<MomoState>,
              Extension(subscription): Extension<SubscriptionKey>,
              headers: HeaderMap,
              Path(reference_id): Path<String>| async move {
            payments::status(state, subscription, headers, reference_id, product, kind).await
        },
    )
}

/// The payment operations of a product: `(create path, kind, callback method)` per
/// definition; the status path is [`status_path`]. V1 of withdraw, deposit and refund call back with POST, V2 with PUT
/// (reference §11); the others use the platform's default.
fn payment_operations(
    product: Product,
) -> Vec<(&'static str, PaymentKind, Option<CallbackMethod>)> {
    use CallbackMethod::{Post, Put};
    use PaymentKind::{CashTransfer, Deposit, Refund, RequestToPay, RequestToWithdraw, Transfer};
    match product {
        Product::Collection => vec![
            ("/v1_0/requesttopay", RequestToPay, None),
            ("/v1_0/requesttowithdraw", RequestToWithdraw, Some(Post)),
            ("/v2_0/requesttowithdraw", RequestToWithdraw, Some(Put)),
        ],
        Product::Disbursement => vec![
            ("/v1_0/transfer", Transfer, None),
            ("/v1_0/deposit", Deposit, Some(Post)),
            ("/v2_0/deposit", Deposit, Some(Put)),
            ("/v1_0/refund", Refund, Some(Post)),
            ("/v2_0/refund", Refund, Some(Put)),
        ],
        Product::Remittance => vec![
            ("/v1_0/transfer", Transfer, None),
            ("/v2_0/cashtransfer", CashTransfer, Some(Put)),
        ],
    }
}

fn v2_status_route(kind: PaymentKind) -> MethodRouter<MomoState> {
    get(
        move |State(state): State<MomoState>,
              Extension(subscription): Extension<SubscriptionKey>,
              headers: HeaderMap,
              Path(reference_id): Path<String>| async move {
            v2::get_status(state, subscription, headers, reference_id, kind).await
        },
    )
}

/// Where the status of a kind of payment is read: `/v1_0/{kind}/{referenceId}`, except the
/// v2-only cash transfer.
fn status_path(kind: PaymentKind) -> String {
    let version = if kind == PaymentKind::CashTransfer {
        "v2_0"
    } else {
        "v1_0"
    };
    format!("/{version}/{}/{{reference_id}}", kind.as_str())
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
    r = r.merge(consent::routes());
    let mut status_paths = Vec::new();
    for (path, kind, callback_method) in payment_operations(product) {
        r = r.route(
            path,
            create_route(Operation {
                product,
                kind,
                callback_method,
            }),
        );
        if !status_paths.contains(&kind) {
            status_paths.push(kind);
            r = r.route(&status_path(kind), status_route(product, kind));
        }
    }
    if product == Product::Collection {
        r = r
            .route(
                "/v1_0/requesttopay/{reference_id}/deliverynotification",
                post(collection::request_to_pay_delivery_notification),
            )
            .route("/v2_0/invoice", post(v2::create_invoice))
            .route(
                "/v2_0/invoice/{reference_id}",
                v2_status_route(PaymentKind::Invoice).delete(v2::cancel_invoice),
            )
            .route("/v2_0/preapproval", post(v2::create_pre_approval))
            .route(
                "/v2_0/preapproval/{reference_id}",
                v2_status_route(PaymentKind::PreApproval),
            )
            .route(
                "/v1_0/preapproval/{reference_id}",
                axum::routing::delete(v2::cancel_pre_approval),
            )
            .route(
                "/v1_0/preapprovals/{type}/{id}",
                get(v2::get_approved_pre_approvals),
            )
            .route("/v2_0/payment", post(v2::create_payment))
            .route(
                "/v2_0/payment/{reference_id}",
                v2_status_route(PaymentKind::BillPayment),
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
