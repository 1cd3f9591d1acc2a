//! What only the Mozambique v1x gateway has (reference §11): its market, and the customer
//! name query. Its money movements, reversal and status query are the v2 operations of
//! [`crate::ops`], which read the v1x fields and answer in the v1x shape when the call came
//! through this gateway; so a v1x payment is a payment like any other, on the same ledger,
//! queryable and reversible through either gateway.

use axum::http::StatusCode;
use axum::response::Response;
use mkoba_platform::mpesa::reference_id;

use crate::Call;
use crate::input;
use crate::ops::{customer_name as registered_name, queued, refuse};
use crate::wire::{self, Body, Code, Market};

/// The only market of the v1x gateway: Mozambique, meticais.
pub(crate) const MARKET: Market = Market::VodacomMoz;

/// The live v1x gateway's host names (the sandbox is `api.sandbox.vm.co.mz`; PaymentsDS
/// uses `api.mpesa.vm.co.mz` for live).
pub(crate) const LIVE_HOSTS: [&str; 2] = ["api.vm.co.mz", "api.mpesa.vm.co.mz"];

/// Whether a request was addressed to the live gateway (its `Host`, port aside): then
/// it is production, as `openapi` is on v2.
pub(crate) fn is_live_host(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
        // `api.vm.co.mz.` (fully qualified) is the same host.
        .map(|h| h.strip_suffix('.').unwrap_or(h))
        .is_some_and(|h| LIVE_HOSTS.iter().any(|l| h.eq_ignore_ascii_case(l)))
}

/// A name as the v1x gateway shows it: the first and last letters, the rest hidden
/// (`Amani` → `A***i`; one or two letters keep only the first).
pub(crate) fn obfuscate(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [first] | [first, _] => format!("{first}*"),
        [first, middle @ .., last] => {
            let mut out = String::with_capacity(name.len());
            out.push(*first);
            out.extend(std::iter::repeat_n('*', middle.len()));
            out.push(*last);
            out
        }
    }
}

/// A customer-name query.
struct NameQuery {
    msisdn: String,
    tpr: String,
}

impl NameQuery {
    fn read(call: &Call) -> Result<NameQuery, Code> {
        let f = &call.fields;
        let msisdn = f.check("input_CustomerMSISDN", input::msisdn_mz, wire::INS_2051)?;
        let tpr = f.check(
            "input_ThirdPartyReference",
            input::conversation_id,
            wire::INS_28,
        )?;
        f.check("input_ServiceProviderCode", input::short_code, wire::INS_13)?;
        Ok(NameQuery { msisdn, tpr })
    }
}

/// `GET /ipg/v1x/queryCustomerName/`: the customer's name, partly hidden.
pub(crate) async fn customer_name(call: Call) -> Response {
    let NameQuery { msisdn, tpr } = match NameQuery::read(&call) {
        Ok(q) => q,
        Err(c) => return refuse(&call, c),
    };
    let (first, second) = registered_name(&msisdn);
    let (first, second) = (obfuscate(first), obfuscate(second));
    if call.app.result_url.is_some() {
        return queued(
            &call,
            reference_id(&call.app.api_user, "kyc", &tpr),
            &tpr,
            vec![
                ("input_ThirdPartyReference", tpr.clone()),
                ("input_CustomerMSISDN", msisdn),
                ("input_FirstName", first),
                ("input_SecondName", second),
                ("input_ResultCode", "0".to_owned()),
                ("input_ResultDesc", wire::INS_0.desc.to_owned()),
            ],
        )
        .await;
    }
    Body::of(wire::INS_0)
        .field("output_CustomerMSISDN", msisdn)
        .field("output_FirstName", first)
        .field("output_SecondName", second)
        .field(
            "output_ConversationID",
            uuid::Uuid::new_v4().simple().to_string(),
        )
        .field("output_ThirdPartyReference", tpr)
        .respond(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_first_and_last_letters() {
        assert_eq!(obfuscate("Amani"), "A***i");
        assert_eq!(obfuscate("Ama"), "A*a");
        assert_eq!(obfuscate("Al"), "A*");
        assert_eq!(obfuscate(""), "");
    }
}
