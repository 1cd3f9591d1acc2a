//! The v2 operations, one function each, and what they share with the v1x ones
//! ([`crate::v1x`]): fields checked in the order of the portal's tables (the mandatory ones
//! were checked from the catalogue before), then mapped onto platform payments (or read
//! from them, for the queries). Answers echo the client's reference under the gateway's
//! name and carry the gateway's codes.

use axum::http::StatusCode;
use axum::response::Response;
use mkoba_ledger::{Currency, Money};
use mkoba_platform::model::{
    CallbackMethod, MandateTerms, NewPayment, Party, PartyIdType, Payment, PaymentKind,
    PaymentStatus, Product,
};
use mkoba_platform::mpesa::{mandate_id, msisdn_token, reference_id, reference_id_in};
use mkoba_platform::reason::FailureReason;
use mkoba_platform::{CancelError, CreateError, refusal};
use serde_json::json;
use uuid::Uuid;

use crate::Call;
use crate::callback;
use crate::input::{self, Fields};
use crate::wire::{self, Body, Code, Gateway, MpesaError};
use mkoba_platform::schedule;

const TPCID: &str = "input_ThirdPartyConversationID";

/// The client reference scope of money movements (duplicates across C2B, B2C, B2B, direct
/// debits and reversals of one application answer `INS-10`) and of mandates.
const SCOPE_TX: &str = "tx";
const SCOPE_MANDATE: &str = "mandate";

/// How long past a payment's no-answer deadline (the synchronous timeout: the writer's
/// `mpesa_answer`) a synchronous call waits for it to be failed (the writer settles it in
/// its next pass, milliseconds later when not loaded).
const SETTLE_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a payment is of this call's environment and market: the sandbox and production
/// are two systems, and each market its own, so a payment of another is not found, reversed
/// or paid under from here, and its client reference does not make a duplicate here.
fn own(call: &Call, p: &Payment) -> bool {
    p.api_user == call.app.api_user
        && p.kind.is_mpesa()
        && p.environment == call.environment
        && p.currency().as_str() == call.market.currency()
}

/// The ids a client reference may have here, in the order they are taken: the
/// application's ([`reference_id`]), then, when that one is held by a payment of another
/// environment or market, this place's own ([`reference_id_in`]), derived only when asked
/// for (almost never: a payment's first id is nearly always free or its own).
fn reference_ids<'a>(
    call: &'a Call,
    scope: &'a str,
    reference: &'a str,
) -> impl Iterator<Item = Uuid> + 'a {
    let api_user = &call.app.api_user;
    std::iter::once(reference_id(api_user, scope, reference)).chain(std::iter::once_with(
        move || {
            reference_id_in(
                api_user,
                scope,
                reference,
                &format!("{}/{}", call.environment, call.market.path()),
            )
        },
    ))
}

/// The payment of this environment and market a client reference names.
async fn by_reference(call: &Call, scope: &str, reference: &str) -> Result<Option<Payment>, Code> {
    for id in reference_ids(call, scope, reference) {
        match call.state.platform.payments().get(&id).await {
            Ok(Some(p)) if own(call, &p) => return Ok(Some(p)),
            // The first id is another place's: this place's is the second.
            Ok(Some(_)) => {}
            // The second id is taken only when the first was another's.
            Ok(None) => return Ok(None),
            Err(e) => return Err(wire::failed(e)),
        }
    }
    Ok(None)
}

/// An error answer, echoing the client's reference when it gave one.
pub(crate) fn refuse(call: &Call, code: Code) -> Response {
    MpesaError::Ins(code).respond(call.gateway, Some(&call.fields))
}

use crate::wire::{INTERNAL, MANDATE_MISMATCH_ON_QUERY, MANDATE_MISSING};

pub(crate) fn internal(call: &Call) -> Response {
    refuse(call, INTERNAL)
}

/// Nothing was stored (the platform's store is failing): the overload answer, `INS-16`
/// with `Retry-After`, so the client tries again.
pub(crate) fn unavailable(call: &Call) -> Response {
    let mut r = refuse(call, wire::OVERLOADED);
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    r
}

/// The code a final payment answers with on `gateway`: `INS-0` when it succeeded. The one
/// place the platform's failure reasons become M-Pesa codes (with [`status_text`]).
pub(crate) fn result_code(gateway: Gateway, p: &Payment) -> Code {
    match p.status {
        PaymentStatus::Successful => gateway.code(wire::INS_0),
        PaymentStatus::Pending => gateway.code(wire::INS_9),
        PaymentStatus::Failed => failure_code(gateway, p.reason),
    }
}

/// A failed payment's code: the platform's table ([`FailureReason::mpesa_code`], which the
/// portal shows too) as `gateway` answers it.
fn failure_code(gateway: Gateway, reason: Option<FailureReason>) -> Code {
    match reason.map(|r| r.mpesa_code(gateway == Gateway::V1x)) {
        Some("INS-2006") => gateway.code(wire::INS_2006),
        Some("INS-9") => gateway.code(wire::INS_9),
        // Declined on the virtual phone.
        Some("INS-5") => wire::V1X_CANCELLED_BY_CUSTOMER,
        _ => gateway.code(wire::INS_6),
    }
}

/// The part of a money movement common to C2B, B2C, B2B and direct-debit payments.
pub(crate) struct Movement {
    pub kind: PaymentKind,
    pub party: Party,
    pub short_code: String,
    pub amount: Money,
    /// The client's reference (v2 `input_ThirdPartyConversationID`, v1x
    /// `input_ThirdPartyReference`): the idempotency key.
    pub tpcid: String,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub refund_of: Option<Uuid>,
    pub details: serde_json::Value,
    /// A direct debit's mandate, whose schedule the writer holds it to.
    pub mandate: Option<MandateTerms>,
}

/// How a created payment turned out for the caller.
enum Submitted {
    /// Asynchronous mode: acknowledge now, the result goes to the result URL.
    Accepted,
    /// Synchronous mode: the payment as stored once final (or when the wait ran out).
    Final(Box<Payment>),
    /// Synchronous mode: stored, but its state could not be read after the wait (the
    /// store failing): answered as a wait that ran out, `408 INS-9` with its conversation
    /// id, for the client to query later, not the overload answer that says nothing was
    /// done.
    Unread,
}

/// Creates the payment (`new(id)`) durably under the first of `ids` ([`reference_ids`]) that
/// is free or not another place's, then waits for it in synchronous mode; `Ok` has the id it
/// took. `Err` is the answer to send: `duplicate(id)` for a client reference used here
/// before, a refusal, or an internal error.
async fn create_and_wait(
    call: &Call,
    new: impl Fn(Uuid) -> NewPayment,
    ids: impl Iterator<Item = Uuid>,
    duplicate: impl Fn(&Uuid) -> Body,
) -> Result<(Uuid, Submitted), Response> {
    let platform = &call.state.platform;
    let mut taken = None;
    for (n, id) in ids.enumerate() {
        // Synchronous mode waits for the outcome: with too many requests waiting already,
        // the overload answer comes at once, before anything is stored.
        let watch = match call.app.result_url {
            Some(_) => None,
            None => match platform.payments().watch(id, call.app.developer_id) {
                Some(w) => Some(w),
                None => return Err(unavailable(call)),
            },
        };
        match platform.payments().create(new(id)).await {
            Ok(()) => {
                taken = Some((id, watch));
                break;
            }
            Err(CreateError::Duplicate) => {
                if n == 0 {
                    match platform.payments().get(&id).await {
                        Ok(Some(p)) if !own(call, &p) => continue,
                        Ok(_) => {}
                        Err(e) => return Err(refuse(call, wire::failed(e))),
                    }
                }
                return Err(duplicate(&id).respond(wire::INS_10.status));
            }
            Err(CreateError::Refused(reason)) => {
                let code = match reason {
                    refusal::NOT_YOURS => wire::INS_35,
                    refusal::AMOUNT_EXCEEDS => wire::INS_15,
                    refusal::TEXT_WITH_NUL => wire::INS_21,
                    refusal::OFF_SCHEDULE => wire::INS_6,
                    refusal::MANDATE_INACTIVE => wire::INS_58,
                    _ => wire::INS_18,
                };
                return Err(refuse(call, code));
            }
            Err(CreateError::Unavailable) => return Err(unavailable(call)),
            Err(CreateError::NotFound | CreateError::Internal) => return Err(internal(call)),
        }
    }
    // Both ids held by payments of other places cannot be: the second is this place's.
    let Some((id, watch)) = taken else {
        return Err(internal(call));
    };
    let Some(watch) = watch else {
        return Ok((id, Submitted::Accepted));
    };
    match platform
        .payments()
        // A little past the payment's deadline, so that one the customer never answered
        // is answered as what it became (failed, INS-9) rather than as unread.
        .wait_final(&id, watch, call.state.config.sync_timeout + SETTLE_MARGIN)
        .await
    {
        Ok(Some(p)) => Ok((id, Submitted::Final(Box::new(p)))),
        Ok(None) => Err(internal(call)),
        Err(_) => Ok((id, Submitted::Unread)),
    }
}

/// The asynchronous acknowledgement: code, description and both conversation ids.
fn accepted(gateway: Gateway, conversation: String, tpcid: String) -> Response {
    Body::of(wire::INS_0)
        .field("output_ConversationID", conversation)
        .field(gateway.echo(), tpcid)
        .respond(StatusCode::CREATED)
}

/// Creates the payment and answers: at once in asynchronous mode (no transaction id; the
/// result goes to the result URL), otherwise once it is final.
pub(crate) async fn submit(
    call: &Call,
    m: Movement,
    extra: fn(&Payment, Body) -> Body,
) -> Response {
    let ids = reference_ids(call, SCOPE_TX, &m.tpcid);
    let mut details = m.details;
    details["market"] = json!(call.market.path());
    if call.gateway == Gateway::V1x {
        details["gateway"] = json!("v1x");
    }
    // Each attempt's id is set by `new` below.
    let new = NewPayment {
        reference_id: Uuid::nil(),
        kind: m.kind,
        product: Product::Mpesa,
        api_user: call.app.api_user,
        environment: call.environment.to_owned(),
        amount: m.amount,
        external_id: Some(m.tpcid.clone()),
        party: m.party,
        payer_message: m.description,
        payee_note: m.reference,
        callback_url: call.app.result_url.clone(),
        callback_method: Some(CallbackMethod::Post),
        refund_of: m.refund_of,
        details: Some(details.to_string()),
        // The writer gives one waiting for its customer the no-answer deadline.
        expires_at_ms: None,
        short_code: Some(m.short_code),
        mandate: m.mandate,
    };
    let new = |id| NewPayment {
        reference_id: id,
        ..new.clone()
    };
    let duplicate = |id: &Uuid| {
        Body::of(call.gateway.code(wire::INS_10))
            .field("output_TransactionID", "N/A")
            .field("output_ConversationID", id.simple().to_string())
            .field(call.gateway.echo(), m.tpcid.clone())
    };
    let (id, submitted) = match create_and_wait(call, new, ids, duplicate).await {
        Ok(taken) => taken,
        Err(answer) => return answer,
    };
    let conversation = id.simple().to_string();
    let payment = match submitted {
        Submitted::Final(p) => *p,
        Submitted::Accepted => return accepted(call.gateway, conversation, m.tpcid),
        Submitted::Unread => {
            let code = call.gateway.code(wire::INS_9);
            return Body::of(code)
                .field("output_ConversationID", conversation)
                .field(call.gateway.echo(), m.tpcid)
                .respond(code.status);
        }
    };
    let code = result_code(call.gateway, &payment);
    let success = payment.status == PaymentStatus::Successful;
    let mut body = Body::of(code);
    if success {
        body = body.maybe(
            "output_TransactionID",
            payment.financial_transaction_id.clone(),
        );
        // Right after the transaction id, as the documentation lists a direct debit's
        // `output_MsisdnToken`.
        body = extra(&payment, body);
    }
    body.field("output_ConversationID", conversation)
        .field(call.gateway.echo(), m.tpcid)
        .respond(code.status)
}

/// The rest of a C2B, B2C or B2B after its parties: reference, the client's reference,
/// then on v2 the description, market and currency (v1x has none of them: Mozambique's
/// meticais), and the amount, checked in that order.
fn movement(
    call: &Call,
    kind: PaymentKind,
    party: Party,
    short_code: String,
    desc_field: &str,
    desc_code: Code,
) -> Result<Movement, Code> {
    let f = &call.fields;
    let reference = f.check(
        "input_TransactionReference",
        input::transaction_reference,
        wire::INS_17,
    )?;
    let tpcid = f.check(
        call.gateway.client_reference(),
        input::conversation_id,
        wire::INS_28,
    )?;
    let (description, currency) = match call.gateway {
        Gateway::V2 => {
            let desc = f.check(desc_field, input::description, desc_code)?;
            input::country_of(f, call.market)?;
            (Some(desc), input::currency_of(f, call.market)?)
        }
        Gateway::V1x => (None, currency(call)?),
    };
    let amount = input::amount(
        f.get("input_Amount").unwrap_or_default(),
        currency,
        wire::INS_15,
    )?;
    Ok(Movement {
        kind,
        party,
        short_code,
        amount,
        tpcid,
        reference: Some(reference),
        description,
        refund_of: None,
        details: json!({}),
        mandate: None,
    })
}

pub(crate) fn no_extra(_: &Payment, body: Body) -> Body {
    body
}

pub(crate) fn msisdn_party(msisdn: &str) -> Party {
    Party {
        id_type: PartyIdType::Msisdn,
        id: msisdn.to_owned(),
    }
}

pub(crate) fn currency(call: &Call) -> Result<Currency, Code> {
    Currency::parse(call.market.currency()).map_err(|_| wire::INTERNAL)
}

/// C2B and B2C: the same fields but the description's name and code.
async fn customer_movement(
    call: Call,
    kind: PaymentKind,
    desc_field: &str,
    desc_code: Code,
) -> Response {
    let f = &call.fields;
    let checked = (|| {
        let rule = match call.gateway {
            Gateway::V2 => input::msisdn,
            Gateway::V1x => input::msisdn_mz,
        };
        let msisdn = f.check("input_CustomerMSISDN", rule, wire::INS_2051)?;
        let code = f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        movement(
            &call,
            kind,
            msisdn_party(&msisdn),
            code,
            desc_field,
            desc_code,
        )
    })();
    match checked {
        Ok(m) => submit(&call, m, no_extra).await,
        Err(code) => refuse(&call, code),
    }
}

/// `POST …/c2bPayment/singleStage/` of either gateway.
pub(crate) async fn c2b(call: Call) -> Response {
    customer_movement(
        call,
        PaymentKind::MpesaC2b,
        "input_PurchasedItemsDesc",
        wire::INS_30,
    )
    .await
}

/// `POST …/b2cPayment/` of either gateway.
pub(crate) async fn b2c(call: Call) -> Response {
    customer_movement(
        call,
        PaymentKind::MpesaB2c,
        "input_PaymentItemsDesc",
        wire::INS_31,
    )
    .await
}

/// `POST …/b2bPayment/` of either gateway.
pub(crate) async fn b2b(call: Call) -> Response {
    let f = &call.fields;
    let checked = (|| {
        let receiver = f.check("input_ReceiverPartyCode", input::short_code, wire::INS_13)?;
        // v1x clients disagree on the debited party's field (reference §11): PaymentsDS's
        // Python SDK sends `input_ServiceProviderCode`, the others `input_PrimaryPartyCode`.
        let primary_field = match call.gateway {
            Gateway::V1x if f.get("input_PrimaryPartyCode").is_none() => {
                "input_ServiceProviderCode"
            }
            _ => "input_PrimaryPartyCode",
        };
        let primary = f.check(primary_field, input::short_code, wire::INS_13)?;
        let receiver = Party {
            id_type: PartyIdType::PartyCode,
            id: receiver,
        };
        let m = movement(
            &call,
            PaymentKind::MpesaB2b,
            receiver,
            primary,
            "input_PurchasedItemsDesc",
            wire::INS_30,
        )?;
        if m.party.id == m.short_code {
            return Err(wire::INS_13);
        }
        Ok(m)
    })();
    match checked {
        Ok(m) => submit(&call, m, no_extra).await,
        Err(code) => refuse(&call, code),
    }
}

/// `PUT …/reversal/` of either gateway: all or part of a settled transaction, never more
/// than remains. v2 names the market's country; v1x names the initiator and its credential
/// instead (any well-formed values: the sandbox has no initiators to check them against).
pub(crate) async fn reversal(call: Call) -> Response {
    let r = match ReversalRequest::read(&call) {
        Ok(r) => r,
        Err(c) => return refuse(&call, c),
    };
    let original = match call
        .state
        .platform
        .payments()
        .by_transaction_id(&r.transaction)
        .await
    {
        // A payment of the other environment (sandbox or production) or of another market
        // is not found here, as a status query does not find it (another market's was
        // `INS-998`, which told that the id exists).
        Ok(Some(p))
            if p.kind.is_mpesa()
                && p.environment == call.environment
                && p.currency().as_str() == call.market.currency() =>
        {
            p
        }
        Ok(_) => return refuse(&call, wire::INS_18),
        Err(e) => return refuse(&call, wire::failed(e)),
    };
    if original.api_user != call.app.api_user
        || original.short_code.as_deref() != Some(&r.short_code)
    {
        return refuse(&call, wire::INS_35);
    }
    let m = Movement {
        kind: PaymentKind::MpesaReversal,
        party: original.party.clone(),
        short_code: r.short_code,
        amount: r.amount.unwrap_or(original.amount),
        tpcid: r.client_reference,
        reference: None,
        description: None,
        refund_of: Some(original.reference_id),
        details: json!({ "originalTransactionId": r.transaction }),
        mandate: None,
    };
    submit(&call, m, no_extra).await
}

/// A reversal request of either gateway.
struct ReversalRequest {
    transaction: String,
    short_code: String,
    client_reference: String,
    /// `None`: all of the original (refused once part of it is reversed).
    amount: Option<Money>,
}

impl ReversalRequest {
    fn read(call: &Call) -> Result<ReversalRequest, Code> {
        let f = &call.fields;
        // PaymentsDS's JS client names the v1x reversal's amount `input_Amount`.
        let amount_field = match call.gateway {
            Gateway::V1x
                if f.get("input_ReversalAmount").is_none() && f.get("input_Amount").is_some() =>
            {
                "input_Amount"
            }
            _ => "input_ReversalAmount",
        };
        // An amount given empty is no amount (`^\d*\.?\d+$`), not a request for all of it.
        if f.given(amount_field) && f.get(amount_field).is_none() {
            return Err(wire::INS_15);
        }
        let amount = f.check_optional(amount_field, |_| true, wire::INS_15)?;
        let transaction = f.check("input_TransactionID", input::transaction_id, wire::INS_18)?;
        let short_code = f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        let client_reference = f.check(
            call.gateway.client_reference(),
            input::conversation_id,
            wire::INS_28,
        )?;
        match call.gateway {
            Gateway::V2 => input::country_of(f, call.market)?,
            Gateway::V1x => {
                f.check(
                    "input_InitiatorIdentifier",
                    input::initiator,
                    wire::V1X_INVALID_INITIATOR,
                )?;
                f.check(
                    "input_SecurityCredential",
                    input::security_credential,
                    wire::V1X_INVALID_CREDENTIAL,
                )?;
            }
        }
        let currency = currency(call)?;
        let amount = amount
            .map(|a| input::amount(&a, currency, wire::INS_15))
            .transpose()?;
        Ok(ReversalRequest {
            transaction,
            short_code,
            client_reference,
            amount,
        })
    }
}

/// The payment a query reference names: a transaction id, a conversation id, or the
/// client's own conversation id.
async fn find(call: &Call, query: &str) -> Result<Option<Payment>, Code> {
    let platform = &call.state.platform;
    match platform.payments().by_transaction_id(query).await {
        Ok(Some(p)) if own(call, &p) => return Ok(Some(p)),
        Ok(_) => {}
        Err(e) => return Err(crate::wire::failed(e)),
    }
    if query.len() == 32
        && let Ok(id) = Uuid::parse_str(query)
    {
        match platform.payments().get(&id).await {
            Ok(Some(p)) if own(call, &p) => return Ok(Some(p)),
            Ok(_) => {}
            Err(e) => return Err(crate::wire::failed(e)),
        }
    }
    for scope in [SCOPE_TX, SCOPE_MANDATE] {
        if let Some(p) = by_reference(call, scope, query).await? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// `output_ResponseTransactionStatus` of a payment on `gateway`
/// ([`mkoba_platform::mpesa::status_text`], which the portal shows too).
pub(crate) fn status_text(gateway: Gateway, p: &Payment) -> &'static str {
    mkoba_platform::mpesa::status_text(p, gateway == Gateway::V1x)
}

/// The answer of an asynchronous query: the acknowledgement now, the result (`input_*`
/// fields) POSTed to the result URL; the overload answer when it cannot be queued.
pub(crate) async fn queued(
    call: &Call,
    about: Uuid,
    tpcid: &str,
    result: Vec<(&'static str, String)>,
) -> Response {
    let conversation = Uuid::new_v4().simple().to_string();
    if let Some(url) = call.result_target() {
        let mut body = Body::default().field("input_OriginalConversationID", conversation.clone());
        for (k, v) in result {
            body = body.field(k, v);
        }
        if call
            .state
            .platform
            .payments()
            .queue_callback(about, url, body.to_json())
            .await
            .is_err()
        {
            return unavailable(call);
        }
    }
    Body::of(wire::INS_0.with(200, wire::INS_0.desc))
        .field("output_ConversationID", conversation)
        .field(call.gateway.echo(), tpcid)
        .respond(StatusCode::OK)
}

/// Queues the result of a change already committed (a mandate's query or cancellation):
/// the change is answered even if its result cannot be queued (logged).
async fn queue_after_change(call: &Call, about: Uuid, body: &Body) {
    if let Some(url) = call.result_target()
        && let Err(e) = call
            .state
            .platform
            .payments()
            .queue_callback(about, url, body.to_json())
            .await
    {
        tracing::warn!(error = %e, "the result callback could not be queued");
    }
}

/// A status query of either gateway: what to look for, and the client's reference.
struct StatusQuery {
    query: String,
    client_reference: String,
}

impl StatusQuery {
    fn read(call: &Call) -> Result<StatusQuery, Code> {
        let f = &call.fields;
        let query = f.check("input_QueryReference", input::query_reference, wire::INS_21)?;
        f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        let client_reference = f.check(
            call.gateway.client_reference(),
            input::conversation_id,
            wire::INS_28,
        )?;
        if call.gateway == Gateway::V2 {
            input::country_of(f, call.market)?;
        }
        Ok(StatusQuery {
            query,
            client_reference,
        })
    }
}

/// `GET …/queryTransactionStatus/` of either gateway.
pub(crate) async fn query_status(call: Call) -> Response {
    let StatusQuery {
        query,
        client_reference: tpcid,
    } = match StatusQuery::read(&call) {
        Ok(q) => q,
        Err(c) => return refuse(&call, c),
    };
    let payment = match find(&call, &query).await {
        Ok(Some(p)) => p,
        Ok(None) => return refuse(&call, wire::INS_23),
        Err(code) => return refuse(&call, code),
    };
    let reversed = match call
        .state
        .platform
        .payments()
        .refunded_total(&payment.reference_id)
        .await
    {
        Ok(total) => {
            if total > 0 {
                "True"
            } else {
                "False"
            }
        }
        Err(e) => return refuse(&call, wire::failed(e)),
    };
    let transaction = payment
        .financial_transaction_id
        .clone()
        .unwrap_or_else(|| "N/A".to_owned());
    let status = status_text(call.gateway, &payment);
    let conversation = payment.reference_id.simple().to_string();
    if call.gateway == Gateway::V1x {
        // The v1x answer has no transaction ids and no reversal flag (reference §11).
        if call.app.result_url.is_some() {
            return queued(
                &call,
                payment.reference_id,
                &tpcid,
                vec![
                    ("input_ThirdPartyReference", tpcid.clone()),
                    ("input_TransactionID", transaction),
                    ("input_ResultCode", "0".to_owned()),
                    ("input_ResultDesc", wire::INS_0.desc.to_owned()),
                    ("input_ResponseTransactionStatus", status.to_owned()),
                ],
            )
            .await;
        }
        return Body::of(wire::INS_0)
            .field("output_ResponseTransactionStatus", status)
            .field("output_ConversationID", conversation)
            .field("output_ThirdPartyReference", tpcid)
            .respond(StatusCode::OK);
    }
    if call.app.result_url.is_some() {
        return queued(
            &call,
            payment.reference_id,
            &tpcid,
            vec![
                ("input_TransactionID", transaction.clone()),
                ("input_ResultCode", "INS-0".to_owned()),
                ("input_ResultDesc", wire::INS_0.desc.to_owned()),
                ("input_ThirdPartyConversationID", tpcid.clone()),
                ("input_ResponseTransactionStatus", status.to_owned()),
                ("input_OriginalTransactionID", transaction),
                ("input_Reversed", reversed.to_owned()),
            ],
        )
        .await;
    }
    Body::of(wire::INS_0)
        .field("output_ResponseTransactionStatus", status)
        .field("output_ConversationID", conversation)
        .field("output_ThirdPartyConversationID", tpcid)
        .field("output_OriginalTransactionID", transaction)
        .field("output_Reversed", reversed)
        .respond(StatusCode::OK)
}

/// A customer's registered name: the portal's sample for the sandbox number, otherwise
/// one of a few names chosen by the MSISDN.
pub(crate) fn customer_name(msisdn: &str) -> (&'static str, &'static str) {
    const NAMES: [(&str, &str); 8] = [
        ("Amani", "Mwakyusa"),
        ("Kwame", "Mensah"),
        ("Neema", "Kimaro"),
        ("Palesa", "Mokoena"),
        ("Esi", "Owusu"),
        ("Baraka", "Mushi"),
        ("Thabo", "Letsie"),
        ("Ama", "Boateng"),
    ];
    if msisdn == "000000000001" {
        return ("Jiazhen", "Wuu");
    }
    let n = msisdn
        .bytes()
        .fold(0usize, |acc, b| acc * 31 + usize::from(b));
    NAMES[n % NAMES.len()]
}

/// A beneficiary-name query.
struct BeneficiaryQuery {
    msisdn: String,
    tpcid: String,
}

impl BeneficiaryQuery {
    fn read(call: &Call) -> Result<BeneficiaryQuery, Code> {
        let f = &call.fields;
        let msisdn = f.check("input_CustomerMSISDN", input::msisdn, wire::INS_2051)?;
        f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        let tpcid = f.check(TPCID, input::conversation_id, wire::INS_28)?;
        f.check("input_KycQueryType", input::kyc_query_type, wire::INS_32)?;
        input::country_of(f, call.market)?;
        Ok(BeneficiaryQuery { msisdn, tpcid })
    }
}

/// `GET …/queryBeneficiaryName/` (Vodafone Ghana only, as the portal lists it).
pub(crate) async fn query_beneficiary(call: Call) -> Response {
    let BeneficiaryQuery { msisdn, tpcid } = match BeneficiaryQuery::read(&call) {
        Ok(q) => q,
        Err(c) => return refuse(&call, c),
    };
    let (first, last) = customer_name(&msisdn);
    if call.app.result_url.is_some() {
        return queued(
            &call,
            reference_id(&call.app.api_user, "kyc", &tpcid),
            &tpcid,
            vec![
                ("input_CustomerFirstName", first.to_owned()),
                ("input_CustomerLastName", last.to_owned()),
                ("input_ResultCode", "INS-0".to_owned()),
                ("input_ResultDesc", wire::INS_0.desc.to_owned()),
                ("input_ThirdPartyConversationID", tpcid.clone()),
            ],
        )
        .await;
    }
    Body::of(wire::INS_0)
        .field("output_CustomerFirstName", first)
        .field("output_CustomerLastName", last)
        .field("output_ConversationID", Uuid::new_v4().simple().to_string())
        .field("output_ThirdPartyConversationID", tpcid)
        .respond(StatusCode::OK)
}

/// Mandate fields kept in a mandate payment's details.
fn mandate_details(p: &Payment) -> serde_json::Value {
    p.details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| json!({}))
}

fn detail(details: &serde_json::Value, name: &str) -> String {
    details[name].as_str().unwrap_or_default().to_owned()
}

/// A mandate to create, its schedule checked by the portal's rules.
struct MandateRequest {
    msisdn: String,
    short_code: String,
    reference: String,
    tpcid: String,
    first: Option<String>,
    frequency: Option<String>,
    start: Option<String>,
    end: Option<String>,
    expiry: Option<String>,
}

impl MandateRequest {
    fn read(call: &Call) -> Result<MandateRequest, Code> {
        let f = &call.fields;
        let msisdn = f.check("input_CustomerMSISDN", input::msisdn, wire::INS_2051)?;
        let code = f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        let reference = f.check(
            "input_ThirdPartyReference",
            input::third_party_reference,
            wire::INS_17,
        )?;
        let tpcid = f.check(TPCID, input::conversation_id, wire::INS_28)?;
        let agreed = f.check("input_AgreedTC", input::agreed_tc, wire::INS_36)?;
        if agreed != "1" {
            return Err(wire::INS_36);
        }
        let first = f.check_optional("input_FirstPaymentDate", input::date, wire::INS_39)?;
        let frequency = f.check_optional("input_Frequency", input::frequency, wire::INS_40)?;
        let start =
            f.check_optional("input_StartRangeOfDays", input::day_of_month, wire::INS_41)?;
        let end = f.check_optional("input_EndRangeOfDays", input::day_of_month, wire::INS_42)?;
        let expiry = f.check_optional("input_ExpiryDate", input::date, wire::INS_43)?;
        input::country_of(f, call.market)?;
        // The portal's rules between the schedule fields.
        let ranged = matches!(frequency.as_deref(), Some("04" | "05" | "06" | "07"));
        match frequency.as_deref() {
            None if first.is_some() => return Err(wire::INS_39),
            None if start.is_some() => return Err(wire::INS_41),
            None if end.is_some() => return Err(wire::INS_42),
            Some(_) if !ranged && start.is_some() => return Err(wire::INS_41),
            Some(_) if !ranged && end.is_some() => return Err(wire::INS_42),
            _ => {}
        }
        if let (Some(s), Some(e)) = (&start, &end)
            && s > e
        {
            return Err(wire::INS_42);
        }
        // Today, on the API user's time (its test clock's when it has one).
        let today = schedule::date_of(call.state.platform.clocks().now_for(&call.app.api_user));
        let first = match (&frequency, first) {
            (Some(_), None) => Some(schedule::yyyymmdd(today)),
            (_, f) => f,
        };
        if let (Some(x), Some(fp)) = (&expiry, &first)
            && x < fp
        {
            return Err(wire::INS_43);
        }
        Ok(MandateRequest {
            msisdn,
            short_code: code,
            reference,
            tpcid,
            first,
            frequency,
            start,
            end,
            expiry,
        })
    }
}

/// `POST …/directDebitCreation/`: a mandate the customer confirms on the handset.
pub(crate) async fn direct_debit_create(call: Call) -> Response {
    let MandateRequest {
        msisdn,
        short_code: code,
        reference,
        tpcid,
        first,
        frequency,
        start,
        end,
        expiry,
    } = match MandateRequest::read(&call) {
        Ok(r) => r,
        Err(c) => return refuse(&call, c),
    };
    let Ok(currency) = currency(&call) else {
        return internal(&call);
    };
    let ids = reference_ids(&call, SCOPE_MANDATE, &reference);
    let token = msisdn_token(&call.app.api_user, &msisdn);
    let new = |id| NewPayment {
        reference_id: id,
        kind: PaymentKind::MpesaMandate,
        product: Product::Mpesa,
        api_user: call.app.api_user,
        environment: call.environment.to_owned(),
        amount: Money::from_minor(0, currency),
        external_id: Some(tpcid.clone()),
        party: msisdn_party(&msisdn),
        payer_message: None,
        payee_note: Some(reference.clone()),
        callback_url: call.app.result_url.clone(),
        callback_method: Some(CallbackMethod::Post),
        refund_of: None,
        details: Some(
            json!({
                "market": call.market.path(),
                "thirdPartyReference": reference,
                "msisdnToken": token,
                "mandateId": mandate_id(&id),
                "firstPaymentDate": first,
                "frequency": frequency,
                "startRangeOfDays": start,
                "endRangeOfDays": end,
                "expiryDate": expiry,
            })
            .to_string(),
        ),
        expires_at_ms: None,
        short_code: Some(code.clone()),
        mandate: None,
    };
    let duplicate = |id: &Uuid| {
        Body::of(wire::INS_10)
            .field("output_TransactionReference", reference.clone())
            .field("output_ConversationID", id.simple().to_string())
            .field("output_ThirdPartyConversationID", tpcid.clone())
    };
    let (id, submitted) = match create_and_wait(&call, new, ids, duplicate).await {
        Ok(taken) => taken,
        Err(answer) => return answer,
    };
    let conversation = id.simple().to_string();
    let payment = match submitted {
        Submitted::Final(p) => *p,
        Submitted::Accepted => return accepted(call.gateway, conversation, tpcid),
        Submitted::Unread => {
            return Body::of(wire::INS_9)
                .field("output_TransactionReference", reference)
                .field("output_ConversationID", conversation)
                .field("output_ThirdPartyConversationID", tpcid)
                .respond(wire::INS_9.status);
        }
    };
    let result = result_code(call.gateway, &payment);
    let mut body = Body::of(result).field("output_TransactionReference", reference);
    if payment.status == PaymentStatus::Successful {
        body = body.field("output_MsisdnToken", token);
    }
    body = body
        .field("output_ConversationID", conversation)
        .field("output_ThirdPartyConversationID", tpcid);
    if payment.status == PaymentStatus::Successful {
        body = body.field("output_MandateID", mandate_id(&id));
    }
    body.respond(result.status)
}

/// The mandate a direct-debit request names, checked against its MSISDN, token and
/// mandate id; `Err` is the code to answer.
async fn mandate_of(
    call: &Call,
    reference: &str,
    msisdn: Option<&str>,
    token: Option<&str>,
    mandate: Option<&str>,
    token_code: Code,
) -> Result<Payment, Code> {
    let payment = by_reference(call, SCOPE_MANDATE, reference)
        .await?
        .filter(|p| p.kind == PaymentKind::MpesaMandate)
        .ok_or(wire::INS_58)?;
    let details = mandate_details(&payment);
    // Against the token the mandate was made with (so tokens made before a change of their
    // form keep working).
    if let (Some(_), Some(t)) = (msisdn, token)
        && t != detail(&details, "msisdnToken")
    {
        return Err(wire::INS_50);
    }
    if let Some(m) = msisdn
        && m != payment.party.id
    {
        return Err(wire::INS_50);
    }
    if let Some(t) = token
        && t != detail(&details, "msisdnToken")
    {
        return Err(token_code);
    }
    if let Some(m) = mandate
        && m != detail(&details, "mandateId")
    {
        return Err(wire::INS_52);
    }
    Ok(payment)
}

/// How a direct-debit payment or cancellation names its mandate.
struct MandateRef {
    token: Option<String>,
    msisdn: Option<String>,
    code: String,
    reference: String,
    tpcid: String,
    mandate: Option<String>,
}

/// The mandate fields of a direct-debit payment or cancellation, in the portal's order;
/// a bad `input_ThirdPartyReference` answers `INS-19`, as the reference lists for both (a
/// mandate's creation answers `INS-17`, whose text is about another field's length).
fn mandate_ref(f: &Fields) -> Result<MandateRef, Code> {
    let token = f.check_optional("input_MsisdnToken", input::msisdn_token, wire::INS_21)?;
    let msisdn = f.check_optional("input_CustomerMSISDN", input::msisdn, wire::INS_2051)?;
    if token.is_none() && msisdn.is_none() {
        return Err(wire::INS_20);
    }
    Ok(MandateRef {
        token,
        msisdn,
        code: f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?,
        reference: f.check(
            "input_ThirdPartyReference",
            input::third_party_reference,
            wire::INS_19,
        )?,
        tpcid: f.check(TPCID, input::conversation_id, wire::INS_28)?,
        mandate: f.check_optional("input_MandateID", input::mandate_id, wire::INS_51)?,
    })
}

/// Whether the mandate is still active on the API user's date: `INS-58` past its expiry
/// date. Its frequency and range of days are the writer's to check (`INS-6`), against every
/// payment under it accepted before, on any node (`NewPayment::mandate`).
fn still_active(call: &Call, details: &serde_json::Value) -> Result<(), Code> {
    let now = call.state.platform.clocks().now_for(&call.app.api_user);
    if schedule::expired(details, schedule::date_of(now)) {
        return Err(wire::INS_58);
    }
    Ok(())
}

/// `POST …/directDebitPayment/`: a payment collected under an active mandate.
pub(crate) async fn direct_debit_pay(call: Call) -> Response {
    let f = &call.fields;
    let checked = async {
        let MandateRef {
            token,
            msisdn,
            code,
            reference,
            tpcid,
            mandate,
        } = mandate_ref(f)?;
        input::country_of(f, call.market)?;
        let currency = input::currency_of(f, call.market)?;
        let amount = input::amount(
            f.get("input_Amount").unwrap_or_default(),
            currency,
            wire::INS_15,
        )?;
        let m = mandate_of(
            &call,
            &reference,
            msisdn.as_deref(),
            token.as_deref(),
            mandate.as_deref(),
            wire::INS_50,
        )
        .await?;
        if m.status != PaymentStatus::Successful {
            return Err(wire::INS_58);
        }
        if m.short_code.as_deref() != Some(&code) {
            return Err(wire::INS_13);
        }
        let details = mandate_details(&m);
        still_active(&call, &details)?;
        let movement = Movement {
            kind: PaymentKind::MpesaDirectDebit,
            party: m.party.clone(),
            short_code: code,
            amount,
            tpcid,
            reference: Some(reference.clone()),
            description: None,
            refund_of: None,
            details: json!({ "msisdnToken": detail(&details, "msisdnToken") }),
            mandate: Some(MandateTerms {
                mandate: m.reference_id,
                reference,
                details,
            }),
        };
        Ok::<_, Code>(movement)
    }
    .await;
    match checked {
        Ok(m) => submit(&call, m, with_token).await,
        Err(code) => refuse(&call, code),
    }
}

fn with_token(p: &Payment, body: Body) -> Body {
    let token = detail(&mandate_details(p), "msisdnToken");
    body.field("output_MsisdnToken", token)
}

/// A mandate query: the mandate found, and the amount to check the balance against.
struct MandateQuery {
    /// The mandate (a payment of kind `MpesaMandate`).
    m: Payment,
    tpcid: String,
    reference: String,
    balance: Option<Money>,
    currency: Currency,
}

impl MandateQuery {
    async fn read(call: &Call) -> Result<MandateQuery, Code> {
        let f = &call.fields;
        let flag = f.check("input_QueryBalanceAmount", input::boolean, wire::INS_21)?;
        let wants_balance = flag.eq_ignore_ascii_case("true");
        let balance = f.get("input_BalanceAmount").map(str::to_owned);
        if wants_balance && balance.is_none() {
            return Err(wire::INS_55);
        }
        let msisdn = f.check_optional("input_CustomerMSISDN", input::msisdn, wire::INS_2051)?;
        let token = f.check_optional("input_MsisdnToken", input::msisdn_token, wire::INS_56)?;
        if msisdn.is_none() && token.is_none() {
            return Err(wire::INS_57);
        }
        let code = f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        let tpcid = f.check(TPCID, input::conversation_id, wire::INS_28)?;
        let reference = f.check(
            "input_ThirdPartyReference",
            input::third_party_reference,
            wire::INS_19,
        )?;
        let mandate = f.check_optional("input_MandateID", input::mandate_id, wire::INS_51)?;
        input::country_of(f, call.market)?;
        let currency = input::currency_of(f, call.market)?;
        // A balance amount is read when it is asked about; one given anyway must still be a
        // number (the field's pattern, `^\d*.?\d+$`: INS-54), or empty.
        let balance = match balance {
            Some(b) if wants_balance => Some(input::amount(&b, currency, wire::INS_54)?),
            Some(b) if !b.is_empty() && !input::decimal(&b) => return Err(wire::INS_54),
            _ => None,
        };
        let m = mandate_of(
            call,
            &reference,
            msisdn.as_deref(),
            token.as_deref(),
            mandate.as_deref(),
            wire::INS_56,
        )
        .await
        .map_err(|c| {
            if c == wire::INS_52 {
                MANDATE_MISMATCH_ON_QUERY
            } else {
                c
            }
        })?;
        // Another short code's mandate is not this one's to read, as it is not to pay or
        // cancel.
        if m.short_code.as_deref() != Some(&code) {
            return Err(wire::INS_13);
        }
        Ok(MandateQuery {
            m,
            tpcid,
            reference,
            balance,
            currency,
        })
    }
}

/// `GET …/queryDirectDebit/`: a mandate's state, optionally whether the customer could pay
/// an amount now.
pub(crate) async fn direct_debit_query(call: Call) -> Response {
    let MandateQuery {
        m,
        tpcid,
        reference,
        balance,
        currency,
    } = match MandateQuery::read(&call).await {
        Ok(r) => r,
        Err(c) => return refuse(&call, c),
    };
    let sufficient = match balance {
        Some(amount) => match call
            .state
            .platform
            .payments()
            .wallet_available(&m.party.wallet_key(), currency)
            .await
        {
            Ok(available) if available >= amount.minor() => "True",
            Ok(_) => "False",
            Err(e) => return refuse(&call, wire::failed(e)),
        },
        None => "N/A",
    };
    let d = mandate_details(&m);
    let today = schedule::date_of(call.state.platform.clocks().now_for(&call.app.api_user));
    let mandate_status = match (m.status, m.reason) {
        (PaymentStatus::Successful, _) if schedule::expired(&d, today) => "Expired",
        (PaymentStatus::Successful, _) => "Active",
        (PaymentStatus::Pending, _) => "Pending",
        (PaymentStatus::Failed, Some(FailureReason::TransactionCanceled)) => "Cancelled",
        (PaymentStatus::Failed, _) => "Inactive",
    };
    let fields: Vec<(&'static str, String)> = vec![
        ("TransactionReference", reference),
        ("SufficientBalance", sufficient.to_owned()),
        ("MsisdnToken", detail(&d, "msisdnToken")),
        ("MandateID", detail(&d, "mandateId")),
        ("MandateStatus", mandate_status.to_owned()),
        ("AccountStatus", "Active".to_owned()),
        ("FirstPaymentDate", detail(&d, "firstPaymentDate")),
        ("Frequency", detail(&d, "frequency")),
        ("PaymentDayFrom", detail(&d, "startRangeOfDays")),
        ("PaymentDayTo", detail(&d, "endRangeOfDays")),
        ("ExpiryDate", detail(&d, "expiryDate")),
    ];
    if call.app.result_url.is_some() {
        let conversation = Uuid::new_v4().simple().to_string();
        let mut body = Body::default()
            .field("input_ResponseCode", "INS-0")
            .field("input_ResponseDesc", wire::INS_0.desc)
            .field("input_ConversationID", conversation.clone())
            .field("input_ThirdPartyConversationID", tpcid.clone());
        for (k, v) in &fields {
            body = body.field(callback::input_name(k), v.clone());
        }
        queue_after_change(&call, m.reference_id, &body).await;
        return Body::default()
            .field("output_ThirdPartyConversationID", tpcid)
            .field("output_ConversationID", conversation)
            .field("output_ResponseCode", "INS-0")
            .field("output_ResponseDesc", wire::INS_0.desc)
            .respond(StatusCode::OK);
    }
    // In the documentation's order: the transaction reference, the two conversation ids,
    // then the mandate's fields.
    let mut fields = fields.into_iter();
    let mut body = Body::of(wire::INS_0);
    if let Some((k, v)) = fields.next() {
        body = body.field(callback::output_name(k), v);
    }
    body = body
        .field("output_ConversationID", m.reference_id.simple().to_string())
        .field("output_ThirdPartyConversationID", tpcid);
    for (k, v) in fields {
        body = body.field(callback::output_name(k), v);
    }
    body.respond(StatusCode::OK)
}

/// A mandate cancellation: the mandate found.
struct MandateCancel {
    /// The mandate (a payment of kind `MpesaMandate`).
    m: Payment,
    reference: String,
    tpcid: String,
}

impl MandateCancel {
    async fn read(call: &Call) -> Result<MandateCancel, Code> {
        let f = &call.fields;
        let MandateRef {
            token,
            msisdn,
            code,
            reference,
            tpcid,
            mandate,
        } = mandate_ref(f)?;
        input::country_of(f, call.market)?;
        let m = mandate_of(
            call,
            &reference,
            msisdn.as_deref(),
            token.as_deref(),
            mandate.as_deref(),
            wire::INS_50,
        )
        .await
        .map_err(|c| {
            if c == wire::INS_58 {
                MANDATE_MISSING
            } else {
                c
            }
        })?;
        if m.short_code.as_deref() != Some(&code) {
            return Err(wire::INS_13);
        }
        Ok(MandateCancel {
            m,
            reference,
            tpcid,
        })
    }
}

/// `PUT …/directDebitCancel/`.
pub(crate) async fn direct_debit_cancel(call: Call) -> Response {
    let MandateCancel {
        m,
        reference,
        tpcid,
    } = match MandateCancel::read(&call).await {
        Ok(r) => r,
        Err(c) => return refuse(&call, c),
    };
    let token = detail(&mandate_details(&m), "msisdnToken");
    match call
        .state
        .platform
        .payments()
        .cancel(
            m.reference_id,
            call.app.api_user,
            PaymentKind::MpesaMandate,
            None,
        )
        .await
    {
        Ok(()) => {}
        Err(CancelError::NotFound) => return refuse(&call, MANDATE_MISSING),
        // Cancelled before: a mandate no longer (the reference's one text for this code).
        Err(CancelError::NotCancellable) => return refuse(&call, MANDATE_MISSING),
        Err(CancelError::Internal) => return internal(&call),
    }
    let conversation = Uuid::new_v4().simple().to_string();
    if call.app.result_url.is_some() {
        let body = Body::default()
            .field("input_OriginalConversationID", conversation.clone())
            .field("input_TransactionReference", reference)
            .field("input_MsisdnToken", token)
            .field("input_ResultCode", "INS-0")
            .field("input_ResultDesc", wire::INS_0.desc)
            .field("input_ThirdPartyConversationID", tpcid.clone());
        queue_after_change(&call, m.reference_id, &body).await;
        return Body::of(wire::INS_0)
            .field("output_ConversationID", conversation)
            .field("output_ThirdPartyConversationID", tpcid)
            .respond(StatusCode::CREATED);
    }
    Body::of(wire::INS_0)
        .field("output_TransactionReference", reference)
        .field("output_MsisdnToken", token)
        .field("output_ConversationID", conversation)
        .field("output_ThirdPartyConversationID", tpcid)
        .respond(StatusCode::CREATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answers' codes are the platform's table (which the portal shows): every reason,
    /// on both gateways.
    #[test]
    fn a_failed_payments_code_is_the_platforms() {
        for reason in FailureReason::ALL {
            for (gateway, v1x) in [(Gateway::V2, false), (Gateway::V1x, true)] {
                let code = failure_code(gateway, Some(*reason)).code;
                assert_eq!(code, reason.mpesa_code(v1x), "{reason} on {gateway:?}");
            }
        }
    }
}
