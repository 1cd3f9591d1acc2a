//! The MTN MoMo Open API dialect: routes, credentials, validation and the wire shapes.
//!
//! Faithful to the real sandbox where it and the published definitions disagree (reference
//! §15): `reason` is a bare string code (configurable to the spec's object), creating POSTs
//! answer 202 with an empty body, bad token credentials answer `500 {"error":"login_failed"}`,
//! and most business errors are 500 with `{"code","message"}`. The subscription-key check
//! runs first, like the API gateway in front of the real platform.

mod account;
pub mod auth;
pub mod catalogue;
mod collection;
mod consent;
pub mod error;
pub mod extract;
pub mod openapi;
mod payments;
mod provisioning;
mod token;
mod v2;
pub mod validate;
pub mod widget;

use std::sync::Arc;

use axum::{Extension, Router, middleware};
use mkoba_api_types::momo::{
    CashTransferDetails, CashTransferResult, ErrorReason, Party as WireParty, Reason,
    RequestToPayResult, TransferResult,
};
use mkoba_platform::model::{Payment, PaymentKind, PaymentStatus, Product};

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
    /// The Collection Widget's limits.
    pub widget: widget::WidgetConfig,
}

/// What every MoMo handler gets: one `Arc`, so the clone axum makes for each extractor and
/// middleware of a request is one reference count, not one per field.
#[derive(Debug, Clone)]
pub struct MomoState(Arc<MomoShared>);

/// What [`MomoState`] shares.
#[derive(Debug)]
pub struct MomoShared {
    pub platform: Platform,
    pub config: MomoConfig,
    /// The Collection Widget's rate limiters and long-poll bound.
    pub widget: widget::Widget,
}

impl MomoState {
    pub fn new(platform: Platform, config: MomoConfig) -> MomoState {
        MomoState(Arc::new(MomoShared {
            platform,
            widget: widget::Widget::new(config.widget.clone()),
            config,
        }))
    }
}

impl std::ops::Deref for MomoState {
    type Target = MomoShared;

    fn deref(&self) -> &MomoShared {
        &self.0
    }
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

pub use mkoba_platform::widget::environment_currency;

/// The status body of a payment (`GET …/{referenceId}`), also its callback body:
/// `RequestToPayResult` (with `payer`) for collections, `TransferResult` (with `payee`) for
/// payouts. `reason` appears only once FAILED.
pub fn status_body(p: &Payment, format: ReasonFormat) -> StatusBody {
    let party = WireParty {
        party_id_type: p.party.id_type.as_str().to_owned(),
        party_id: p.party.id.clone(),
    };
    let reason = p
        .reason
        .as_ref()
        .filter(|_| p.status == PaymentStatus::Failed)
        .map(|code| match format {
            ReasonFormat::String => Reason::Code(code.as_str().to_owned()),
            ReasonFormat::Object => Reason::Object(ErrorReason {
                code: code.as_str().to_owned(),
                message: error::message_for(code.as_str()).to_owned(),
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
        // MTN's sandbox answers a deposit without its transaction id, even once it
        // succeeded (reference §5, §15.2); the markets' environments carry it.
        let sandbox_deposit = p.kind == PaymentKind::Deposit && p.environment == "sandbox";
        StatusBody::Payout(TransferResult {
            financial_transaction_id: p
                .financial_transaction_id
                .clone()
                .filter(|_| !sandbox_deposit),
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
        Some(serde_json::to_string(&status_body(p, format)).unwrap_or_else(|_| "{}".to_owned()))
    })
}

/// A product's routes, with their full paths (`/collection/v1_0/requesttopay`): merged
/// into the one router rather than nested under the product's prefix, so a request is
/// routed once and its URI is not rewritten on the way (issue 17).
fn product_routes(state: &MomoState, product: Product) -> Router<MomoState> {
    let prefix = format!("/{}", product.as_str());
    let mut r = Router::new();
    for route in catalogue::routes() {
        if route.product != Some(product) {
            continue;
        }
        if let Some(handler) = route.handler {
            if route.path == "/token/" {
                r = r.route(&format!("{prefix}/token"), handler.clone());
            }
            r = r.route(&format!("{prefix}{}", route.path), handler);
        }
    }
    r.merge(consent::routes(&prefix))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), Some(product)),
            auth::require_subscription,
        ))
        .layer(Extension(product))
}

/// Every MoMo route: provisioning at the root, the three API products under their prefix,
/// and the Collection Widget.
pub fn router(state: MomoState) -> Router {
    let mut provisioning = Router::new();
    for route in catalogue::routes() {
        if let (None, Some(handler)) = (route.product, route.handler) {
            provisioning = provisioning.route(&route.path, handler);
        }
    }
    let mut app = provisioning.route_layer(middleware::from_fn_with_state(
        (state.clone(), None),
        auth::require_subscription,
    ));
    for product in Product::APIS {
        app = app.merge(product_routes(&state, product));
    }
    // The Collection Widget: the partner's settings behind its own subscription key, the
    // page-side endpoints and the script without one.
    let widget = Product::CollectionWidget;
    app = app
        .nest(
            &format!("/{}", widget.as_str()),
            widget::partner_routes().route_layer(middleware::from_fn_with_state(
                (state.clone(), Some(widget)),
                auth::require_subscription,
            )),
        )
        .merge(widget::public_routes(&state));
    app.with_state(state)
}
