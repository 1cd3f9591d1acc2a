//! The one list of MoMo operations: the router is built from it and so is the OpenAPI
//! document ([`crate::openapi`]), so what is served and what is documented cannot drift.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::routing::{MethodRouter, delete, get, post};
use mkoba_platform::model::{CallbackMethod, PaymentKind, Product, SubscriptionKey};

use crate::extract::Path;
use crate::payments::Operation;
use crate::{MomoState, account, collection, payments, provisioning, token, v2};

/// How an operation authenticates (besides the subscription key every call needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Subscription key only (provisioning).
    None,
    /// `Authorization: Basic base64(apiUser:apiKey)`.
    Basic,
    /// `Authorization: Bearer <access token>`.
    Bearer,
    /// Nothing: the Collection Widget's page-side endpoints, called by the script from a
    /// merchant's page (guarded by the API user's allowed origins and rate limits).
    Public,
}

/// What the OpenAPI document says about an operation.
#[derive(Debug, Clone)]
pub struct Doc {
    pub operation_id: String,
    pub summary: String,
    pub auth: Auth,
    /// Needs `X-Reference-Id` (a creating POST, or an invoice cancellation).
    pub reference_id: bool,
    /// Accepts `X-Callback-Url`, called back with this method.
    pub callback: Option<CallbackMethod>,
    /// Needs `X-Target-Environment`.
    pub target_environment: bool,
    /// Request body schema.
    pub body: Option<&'static str>,
    /// Success status and body schema (`None`: empty body).
    pub success: (u16, Option<&'static str>),
    /// Documented error statuses.
    pub errors: &'static [u16],
    /// Query parameters.
    pub query: &'static [QueryParam],
    /// Other headers it reads: name, required, description.
    pub headers: &'static [(&'static str, bool, &'static str)],
}

/// A documented query parameter.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub required: bool,
    /// `string` or `integer`.
    pub kind: &'static str,
    pub description: &'static str,
}

/// One served operation.
pub struct Route {
    /// `None`: at the host root (provisioning).
    pub product: Option<Product>,
    pub method: Method,
    /// Relative to the product prefix, with `{param}` placeholders.
    pub path: String,
    pub doc: Doc,
    /// `None` when a sub-router serves it (the consent flow's own module).
    pub handler: Option<MethodRouter<MomoState>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn doc(operation_id: &str, summary: &str, auth: Auth) -> Doc {
    Doc {
        operation_id: operation_id.to_owned(),
        summary: summary.to_owned(),
        auth,
        reference_id: false,
        callback: None,
        target_environment: auth == Auth::Bearer,
        body: None,
        success: (200, None),
        errors: &[400, 401, 500],
        query: &[],
        headers: &[],
    }
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

/// `(create path, kind, callback method, request schema, result schema)` per payment
/// operation of a product. V1 of withdraw, deposit and refund call back with POST, V2 with
/// PUT (reference §11); transfer and request-to-pay use the platform's default.
type PaymentOp = (
    &'static str,
    PaymentKind,
    Option<CallbackMethod>,
    &'static str,
    &'static str,
);

fn payment_operations(product: Product) -> Vec<PaymentOp> {
    use CallbackMethod::{Post, Put};
    use PaymentKind::{CashTransfer, Deposit, Refund, RequestToPay, RequestToWithdraw, Transfer};
    match product {
        Product::Collection => vec![
            (
                "/v1_0/requesttopay",
                RequestToPay,
                None,
                "RequestToPay",
                "RequestToPayResult",
            ),
            (
                "/v1_0/requesttowithdraw",
                RequestToWithdraw,
                Some(Post),
                "RequestToPay",
                "RequestToPayResult",
            ),
            (
                "/v2_0/requesttowithdraw",
                RequestToWithdraw,
                Some(Put),
                "RequestToPay",
                "RequestToPayResult",
            ),
        ],
        Product::Disbursement => vec![
            (
                "/v1_0/transfer",
                Transfer,
                None,
                "Transfer",
                "TransferResult",
            ),
            (
                "/v1_0/deposit",
                Deposit,
                Some(Post),
                "Transfer",
                "TransferResult",
            ),
            (
                "/v2_0/deposit",
                Deposit,
                Some(Put),
                "Transfer",
                "TransferResult",
            ),
            (
                "/v1_0/refund",
                Refund,
                Some(Post),
                "Refund",
                "TransferResult",
            ),
            (
                "/v2_0/refund",
                Refund,
                Some(Put),
                "Refund",
                "TransferResult",
            ),
        ],
        Product::Remittance => vec![
            (
                "/v1_0/transfer",
                Transfer,
                None,
                "Transfer",
                "TransferResult",
            ),
            (
                "/v2_0/cashtransfer",
                CashTransfer,
                Some(Put),
                "CashTransfer",
                "CashTransferResult",
            ),
        ],
        Product::Mpesa | Product::CollectionWidget => Vec::new(),
    }
}

/// Where the status of a kind of payment is read: `/v1_0/{kind}/{referenceId}`, except the
/// v2-only cash transfer.
fn status_path(kind: PaymentKind) -> String {
    let version = if kind == PaymentKind::CashTransfer {
        "v2_0"
    } else {
        "v1_0"
    };
    format!("/{version}/{}/{{referenceId}}", kind.as_str())
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

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Every operation Mkoba serves for MoMo.
pub fn routes() -> Vec<Route> {
    let mut out = Vec::new();
    let mut add = |product: Option<Product>,
                   method: Method,
                   path: &str,
                   doc: Doc,
                   handler: Option<MethodRouter<MomoState>>| {
        out.push(Route {
            product,
            method,
            path: path.to_owned(),
            doc,
            handler,
        });
    };
    add(
        None,
        Method::POST,
        "/v1_0/apiuser",
        Doc {
            reference_id: true,
            body: Some("ApiUserCreate"),
            success: (201, None),
            errors: &[400, 401, 409, 500],
            ..doc("post-v1_0-apiuser", "Create a sandbox API user", Auth::None)
        },
        Some(post(provisioning::create_api_user)),
    );
    add(
        None,
        Method::GET,
        "/v1_0/apiuser/{X-Reference-Id}",
        Doc {
            success: (200, Some("ApiUserResult")),
            errors: &[400, 401, 404, 500],
            ..doc("get-v1_0-apiuser", "Read a sandbox API user", Auth::None)
        },
        Some(get(provisioning::get_api_user)),
    );
    add(
        None,
        Method::POST,
        "/v1_0/apiuser/{X-Reference-Id}/apikey",
        Doc {
            success: (201, Some("ApiKeyResult")),
            errors: &[400, 401, 404, 500],
            ..doc(
                "post-v1_0-apiuser-apikey",
                "Create an API key for a sandbox API user",
                Auth::None,
            )
        },
        Some(post(provisioning::create_api_key)),
    );
    for product in Product::APIS {
        let p = Some(product);
        let name = title(product.as_str());
        add(
            p,
            Method::POST,
            "/token/",
            Doc {
                success: (200, Some("AccessToken")),
                ..doc(
                    &format!("{name}-CreateAccessToken"),
                    "Create an access token",
                    Auth::Basic,
                )
            },
            Some(post(token::create_access_token)),
        );
        add(
            p,
            Method::GET,
            "/v1_0/account/balance",
            Doc {
                success: (200, Some("Balance")),
                ..doc(
                    &format!("{name}-GetAccountBalance"),
                    "The partner account's balance",
                    Auth::Bearer,
                )
            },
            Some(get(account::get_account_balance)),
        );
        add(
            p,
            Method::GET,
            "/v1_0/account/balance/{currency}",
            Doc {
                success: (200, Some("Balance")),
                ..doc(
                    &format!("{name}-GetAccountBalanceInSpecificCurrency"),
                    "The balance in a currency",
                    Auth::Bearer,
                )
            },
            Some(get(account::get_account_balance_in_currency)),
        );
        add(
            p,
            Method::GET,
            "/v1_0/accountholder/{accountHolderIdType}/{accountHolderId}/active",
            Doc {
                success: (200, Some("BooleanResult")),
                errors: &[400, 401, 404, 500, 503],
                ..doc(
                    &format!("{name}-ValidateAccountHolderStatus"),
                    "Is the account holder active?",
                    Auth::Bearer,
                )
            },
            Some(get(account::validate_account_holder_status)),
        );
        add(
            p,
            Method::GET,
            "/v1_0/accountholder/{accountHolderIdType}/{accountHolderId}/basicuserinfo",
            Doc {
                success: (200, Some("BasicUserInfo")),
                errors: &[400, 401, 404, 500, 503],
                ..doc(
                    &format!("{name}-GetBasicUserinfo"),
                    "Basic information on an account holder",
                    Auth::Bearer,
                )
            },
            Some(get(account::get_basic_userinfo)),
        );
        for (path, method, summary, success, body) in [
            (
                "/v1_0/bc-authorize",
                Method::POST,
                "Ask an account holder for consent (CIBA)",
                "BcAuthorizeResponse",
                Some("BcAuthorize"),
            ),
            (
                "/oauth2/token/",
                Method::POST,
                "Exchange a consent request for an OAuth2 token",
                "Oauth2TokenResponse",
                Some("Oauth2TokenRequest"),
            ),
            (
                "/oauth2/v1_0/userinfo",
                Method::GET,
                "The consenting account holder's information",
                "BasicUserInfo",
                None,
            ),
        ] {
            let id = match path {
                "/v1_0/bc-authorize" => "bc-authorize",
                "/oauth2/token/" => "CreateOauth2Token",
                _ => "GetUserInfoWithConsent",
            };
            // The OAuth2 token takes the API user's Basic credentials (as the server and the
            // SDK do); bc-authorize and userinfo a bearer (an access or consent token).
            let auth = if path == "/oauth2/token/" {
                Auth::Basic
            } else {
                Auth::Bearer
            };
            add(
                p,
                method,
                path,
                Doc {
                    body,
                    success: (200, Some(success)),
                    // All three name the API user's environment.
                    target_environment: true,
                    headers: if path == "/v1_0/bc-authorize" {
                        &[(
                            "X-Callback-Url",
                            false,
                            "Checked as a payment's is (its host must equal the API user's providerCallbackHost) and not called: poll oauth2/token/ for the consent",
                        )]
                    } else {
                        &[]
                    },
                    ..doc(&format!("{name}-{id}"), summary, auth)
                },
                None,
            );
        }
        let mut documented_status = Vec::new();
        for (path, kind, callback, request, result) in payment_operations(product) {
            let version = if path.starts_with("/v2_0") {
                "V2"
            } else {
                "V1"
            };
            let kind_name = title(kind.as_str());
            add(
                p,
                Method::POST,
                path,
                Doc {
                    reference_id: true,
                    // No method in the definitions: the platform's default (POST, or
                    // `--callback-method`).
                    callback: Some(callback.unwrap_or(CallbackMethod::Post)),
                    body: Some(request),
                    success: (202, None),
                    errors: &[400, 401, 404, 409, 500],
                    ..doc(
                        &format!("{name}-{kind_name}-{version}"),
                        &format!("Create a {}", kind.as_str()),
                        Auth::Bearer,
                    )
                },
                Some(create_route(Operation {
                    product,
                    kind,
                    callback_method: callback,
                })),
            );
            if !documented_status.contains(&kind) {
                documented_status.push(kind);
                add(
                    p,
                    Method::GET,
                    &status_path(kind),
                    Doc {
                        success: (200, Some(result)),
                        errors: &[400, 401, 404, 500],
                        ..doc(
                            &format!("{name}-Get{kind_name}Status"),
                            &format!("The status of a {}", kind.as_str()),
                            Auth::Bearer,
                        )
                    },
                    Some(status_route(product, kind)),
                );
            }
        }
        if product != Product::Collection {
            continue;
        }
        add(
            p,
            Method::POST,
            "/v1_0/requesttopay/{referenceId}/deliverynotification",
            Doc {
                body: Some("DeliveryNotification"),
                errors: &[400, 401, 404, 409, 410, 429, 500],
                headers: &[
                    (
                        "notificationMessage",
                        false,
                        "The message, at most 160 characters (or notificationMessage in the body)",
                    ),
                    ("Language", false, "The message's language (ISO 639-1)"),
                ],
                ..doc(
                    "RequesttoPayDeliveryNotification",
                    "Send the payer a delivery notification",
                    Auth::Bearer,
                )
            },
            Some(post(collection::request_to_pay_delivery_notification)),
        );
        let create = |id: &str, summary: &str, body: &'static str| Doc {
            reference_id: true,
            callback: Some(CallbackMethod::Put),
            body: Some(body),
            success: (202, None),
            errors: &[400, 401, 409, 500],
            ..doc(id, summary, Auth::Bearer)
        };
        let status = |id: &str, summary: &str, result: &'static str| Doc {
            success: (200, Some(result)),
            errors: &[400, 401, 404, 500],
            ..doc(id, summary, Auth::Bearer)
        };
        add(
            p,
            Method::POST,
            "/v2_0/invoice",
            create("CreateInvoice", "Create an invoice", "CreateInvoice"),
            Some(post(v2::create_invoice)),
        );
        add(
            p,
            Method::GET,
            "/v2_0/invoice/{referenceId}",
            status(
                "GetInvoiceStatus",
                "The status of an invoice",
                "InvoiceResult",
            ),
            Some(v2_status_route(PaymentKind::Invoice)),
        );
        add(
            p,
            Method::DELETE,
            "/v2_0/invoice/{referenceId}",
            Doc {
                reference_id: true,
                callback: Some(CallbackMethod::Put),
                body: Some("CancelInvoice"),
                success: (200, Some("CancelInvoice")),
                errors: &[400, 401, 404, 500],
                ..doc("CancelInvoice", "Cancel a pending invoice", Auth::Bearer)
            },
            Some(delete(v2::cancel_invoice)),
        );
        add(
            p,
            Method::POST,
            "/v2_0/preapproval",
            create(
                "PreApproval",
                "Ask a payer for a pre-approval",
                "PreApproval",
            ),
            Some(post(v2::create_pre_approval)),
        );
        add(
            p,
            Method::GET,
            "/v2_0/preapproval/{referenceId}",
            status(
                "GetPreApprovalStatus",
                "The status of a pre-approval",
                "PreApprovalResult",
            ),
            Some(v2_status_route(PaymentKind::PreApproval)),
        );
        add(
            p,
            Method::DELETE,
            "/v1_0/preapproval/{referenceId}",
            Doc {
                errors: &[400, 401, 404, 500],
                ..doc("CancelPreApproval", "Cancel a pre-approval", Auth::Bearer)
            },
            Some(delete(v2::cancel_pre_approval)),
        );
        add(
            p,
            Method::GET,
            "/v1_0/preapprovals/{accountHolderIdType}/{accountHolderId}",
            Doc {
                success: (200, Some("PreApprovalDetailsList")),
                errors: &[400, 401, 404, 500],
                ..doc(
                    "GetApprovedPreApprovals",
                    "A payer's approved pre-approvals",
                    Auth::Bearer,
                )
            },
            Some(get(v2::get_approved_pre_approvals)),
        );
        add(
            p,
            Method::POST,
            "/v2_0/payment",
            create("CreatePayments", "Pay a bill or airtime", "CreatePayments"),
            Some(post(v2::create_payment)),
        );
        add(
            p,
            Method::GET,
            "/v2_0/payment/{referenceId}",
            status(
                "GetPaymentStatus",
                "The status of a payment",
                "PaymentResult",
            ),
            Some(v2_status_route(PaymentKind::BillPayment)),
        );
    }
    widget_routes(&mut add);
    out
}

/// The Collection Widget's operations (served by [`crate::widget`]).
fn widget_routes(
    add: &mut impl FnMut(Option<Product>, Method, &str, Doc, Option<MethodRouter<MomoState>>),
) {
    let public = |id: &str, summary: &str| Doc {
        target_environment: false,
        errors: &[400, 403, 404, 429, 500],
        ..doc(id, summary, Auth::Public)
    };
    add(
        None,
        Method::POST,
        "/widget/v1_0/invoice",
        Doc {
            body: Some("WidgetInvoiceCreate"),
            success: (201, Some("WidgetInvoice")),
            ..public(
                "widget-CreateInvoice",
                "Create the invoice of a widget payment (the script, from the element's attributes)",
            )
        },
        None,
    );
    add(
        None,
        Method::GET,
        "/widget/v1_0/invoice/{invoiceId}",
        Doc {
            success: (200, Some("WidgetInvoice")),
            errors: &[403, 404, 429, 500, 503],
            query: &[
                QueryParam {
                    name: "wait",
                    required: false,
                    kind: "integer",
                    description: "Seconds to wait (at most 25) for the status to change from `known`",
                },
                QueryParam {
                    name: "known",
                    required: false,
                    kind: "string",
                    description: "The status the caller has seen (PENDING): the answer waits while it is still that",
                },
            ],
            ..public(
                "widget-GetInvoice",
                "A widget invoice; with `wait` and `known`, once its status is no longer `known` (a long poll)",
            )
        },
        None,
    );
    add(
        None,
        Method::DELETE,
        "/widget/v1_0/invoice/{invoiceId}",
        Doc {
            success: (200, Some("WidgetInvoice")),
            errors: &[403, 404, 409, 429, 500],
            ..public("widget-CancelInvoice", "Cancel a pending widget invoice")
        },
        None,
    );
    add(
        None,
        Method::GET,
        "/widget/v1_0/invoice/{invoiceId}/qr.svg",
        Doc {
            success: (200, None),
            errors: &[404, 429, 500],
            query: &[QueryParam {
                name: "t",
                required: true,
                kind: "string",
                description: "The invoice's signed token, as its `qrCodeUrl` carries it",
            }],
            ..public(
                "widget-GetInvoiceQrCode",
                "The QR code (SVG) of the invoice's payer link",
            )
        },
        None,
    );
    let widget = Some(Product::CollectionWidget);
    add(
        widget,
        Method::GET,
        "/v1_0/apiuser/{apiUserId}/widget",
        Doc {
            success: (200, Some("WidgetSettings")),
            errors: &[400, 401, 404, 500],
            target_environment: false,
            ..doc(
                "widget-GetSettings",
                "The API user's allowed origins and widget callback URL",
                Auth::None,
            )
        },
        None,
    );
    add(
        widget,
        Method::PUT,
        "/v1_0/apiuser/{apiUserId}/widget",
        Doc {
            body: Some("WidgetSettings"),
            success: (200, Some("WidgetSettings")),
            errors: &[400, 401, 404, 500],
            target_environment: false,
            ..doc(
                "widget-SetSettings",
                "Set the API user's allowed origins and widget callback URL (a member left out keeps its value; null clears it)",
                Auth::None,
            )
        },
        None,
    );
}
