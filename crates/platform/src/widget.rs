//! The Collection Widget's rules that more than one crate needs: who pays a widget invoice,
//! its payment reference and payer link, and which origins and callback URLs an API user
//! may set (the MoMo dialect's widget endpoints and the portal both apply them).

use uuid::Uuid;

use crate::model::{Party, PartyIdType};

/// An invoice's payment reference: nine digits derived from its id, what a payer keys in
/// (the USSD code of a Collection Widget invoice carries it).
pub fn payment_reference(id: &Uuid) -> String {
    let n = u128::from_be_bytes(*id.as_bytes()) % 900_000_000 + 100_000_000;
    n.to_string()
}

/// What the platform-signed token of a widget invoice's payer link (its QR code) is for.
pub const WIDGET_LINK_PURPOSE: &str = "collection widget payer link";

/// The party-code prefix of a Collection Widget payer (see [`widget_payer`]).
const WIDGET_PAYER: &str = "WIDGET";

/// The payer of a Collection Widget invoice: whoever scans the QR code or dials the USSD
/// code, unknown when the invoice is made. Each invoice gets a payer of its own (a party
/// code derived from its id), so widget payments never drain one shared sandbox wallet.
pub fn widget_payer(invoice: &Uuid) -> Party {
    Party {
        id_type: PartyIdType::PartyCode,
        id: format!("{WIDGET_PAYER}{}", &invoice.simple().to_string()[..20]),
    }
}

/// The condition on payments `p` that picks the Collection Widget's: collection invoices
/// to a widget payer. Both stores filter `product=collection_widget` by it, in pages and
/// reports (widget payments are stored as the Collection product's invoices, which its API
/// serves). A macro so that the stores can `concat!` it into their statements.
#[macro_export]
macro_rules! widget_payments_sql {
    () => {
        "(p.product = 'collection' AND p.kind = 'invoice' AND p.party_type = 'PARTY_CODE' \
         AND substr(p.party_id, 1, 6) = 'WIDGET')"
    };
}

/// [`widget_payments_sql!`] as a constant.
pub const WIDGET_PAYMENTS_SQL: &str = widget_payments_sql!();

/// Whether a party is a Collection Widget payer.
pub fn is_widget_payer(party: &Party) -> bool {
    party.id_type == PartyIdType::PartyCode && party.id.starts_with(WIDGET_PAYER)
}

/// The host part of a URL or of a bare host (`clinic.com`, `https://x.io/cb`, `h:8080`).
pub fn host_of(text: &str) -> Option<String> {
    let text = text.trim();
    let rest = match text.split_once("://") {
        Some((scheme, rest)) => {
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return None;
            }
            rest
        }
        None => text,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else if authority.bytes().filter(|b| *b == b':').count() > 1
        && authority.parse::<std::net::Ipv6Addr>().is_ok()
    {
        // A bare IPv6 address (`::1`), as a providerCallbackHost is written (only such
        // text is parsed as one: two parses of every callback URL's host were a tenth of a
        // request-to-pay's own validation).
        authority
    } else {
        authority.split(':').next()?
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    // One spelling per IPv6 address (`0:0:0:0:0:0:0:1` is `::1`).
    if host.contains(':')
        && let Ok(v6) = host.parse::<std::net::Ipv6Addr>()
    {
        return Some(v6.to_string());
    }
    Some(host.to_ascii_lowercase())
}

/// The currency of a MoMo target environment (reference §13): EUR in the sandbox.
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

/// Marks a request that came over TLS (the listener puts it in the request's extensions):
/// links back to this server are then `https://`.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// `http://host` (`https://` for a request over TLS) for links back to this server, from a
/// request's `Host` header (anything that is not a plain host and port is ignored: the link
/// must not carry what a caller put there).
pub fn base_url(host: Option<&str>, tls: bool) -> String {
    let host = host
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("127.0.0.1");
    format!("{}://{host}", if tls { "https" } else { "http" })
}

/// The most allowed origins a list holds (a widget API user's, an M-Pesa application's):
/// each request's `Origin` is looked up in it.
pub const MAX_ORIGINS: usize = 20;

/// Checks a list of allowed origins: `scheme://host[:port]` (http or https), without a
/// path, at most [`MAX_ORIGINS`], duplicates dropped; `*` allows any page. A host and a
/// port are checked as [`check_origin`] does, and the scheme's default port is left out
/// (`https://shop.example:443` is `https://shop.example`), as a browser's `Origin` header
/// leaves it out: kept, it would never match a page. Blank entries are skipped (the
/// portal's form has one origin a line).
pub fn check_origins(origins: &[String]) -> Result<Vec<String>, String> {
    if origins.len() > MAX_ORIGINS {
        return Err(format!("at most {MAX_ORIGINS} allowed origins"));
    }
    let mut out: Vec<String> = Vec::new();
    for o in origins {
        let o = o.trim().trim_end_matches('/');
        if o.is_empty() {
            continue;
        }
        let with_scheme = o.starts_with("https://") || o.starts_with("http://");
        let ok = o == "*" || (with_scheme && o.len() <= 200 && check_origin(o).is_ok());
        if !ok {
            return Err(format!(
                "{o:?} is not an origin: give scheme://host[:port] (http or https, a host name or address, a port from 1 to 65535, no path), or * for any page"
            ));
        }
        let o = o
            .strip_suffix(":443")
            .filter(|_| o.starts_with("https://"))
            .or_else(|| o.strip_suffix(":80").filter(|_| o.starts_with("http://")))
            .unwrap_or(o);
        if !out.iter().any(|x| x.eq_ignore_ascii_case(o)) {
            out.push(o.to_owned());
        }
    }
    Ok(out)
}

/// Checks one allowed origin: `*`, `scheme://host[:port]`, or a bare `host[:port]` (the
/// portal's own samples send `Origin: 127.0.0.1`), without a path. A host is a name or an
/// IPv4 address (ASCII letters, digits, `-` and `.`, as browsers send even international
/// names) or an IPv6 address in brackets; a port is 1 to 65535.
pub fn check_origin(origin: &str) -> Result<(), &'static str> {
    const RULE: &str = "An origin is an optional scheme, a host and an optional port, without a path (or * for any).";
    if origin == "*" {
        return Ok(());
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or(origin);
    let (host_ok, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(RULE)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(RULE)?),
            };
            let ok = !host.is_empty()
                && host.contains(':')
                && host
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
            (ok, port)
        }
        None => {
            let (host, port) = match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let ok = !host.is_empty()
                && !host.starts_with(['-', '.'])
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(RULE)
    }
}

/// A widget callback URL: absolute http(s), on the API user's callback host (the rule of
/// `X-Callback-Url`).
pub fn check_callback_url(url: &str, provider_callback_host: &str) -> Result<String, String> {
    let url = url.trim();
    let host = url
        .split_once("://")
        .filter(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        .and_then(|_| host_of(url))
        .ok_or_else(|| format!("the callback URL must be an absolute http(s) URL, got {url:?}"))?;
    match host_of(provider_callback_host) {
        Some(allowed) if allowed == host => Ok(url.to_owned()),
        _ => Err(format!(
            "the callback URL's host must be the API user's callback host {provider_callback_host}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widget_payments_condition_names_what_the_widget_stores() {
        use crate::model::{PaymentKind, Product};
        let payer = widget_payer(&Uuid::new_v4());
        for literal in [
            format!("p.product = '{}'", Product::Collection.as_str()),
            format!("p.kind = '{}'", PaymentKind::Invoice.as_str()),
            format!("p.party_type = '{}'", payer.id_type.as_str()),
            format!(
                "substr(p.party_id, 1, {}) = '{WIDGET_PAYER}'",
                WIDGET_PAYER.len()
            ),
        ] {
            assert!(WIDGET_PAYMENTS_SQL.contains(&literal), "{literal}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let ok = check_origins(&[
            "https://shop.example/".into(),
            "http://127.0.0.1:8080".into(),
        ])
        .unwrap();
        assert_eq!(ok, ["https://shop.example", "http://127.0.0.1:8080"]);
        // A browser leaves the scheme's default port out of `Origin`.
        let ok = check_origins(&[
            "https://shop.example:443".into(),
            "http://shop.example:80".into(),
            "http://shop.example:443".into(),
            "https://shop.example".into(),
        ])
        .unwrap();
        assert_eq!(
            ok,
            [
                "https://shop.example",
                "http://shop.example",
                "http://shop.example:443"
            ]
        );
        for bad in [
            "shop.example",
            "https://shop.example/pay",
            "ftp://x",
            "javascript:alert(1)",
            "https://:",
            "https://[",
            "https://a.example:",
            "https://a.example:0",
            "https://a.example:99999",
            "https://a:b:c",
            "https://.",
            "https://-",
        ] {
            assert!(check_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn callback_urls_stay_on_the_callback_host() {
        assert!(check_callback_url("http://clinic.com:9000/cb", "clinic.com").is_ok());
        assert!(check_callback_url("http://evil.com/cb", "clinic.com").is_err());
        assert!(check_callback_url("clinic.com/cb", "clinic.com").is_err());
    }

    #[test]
    fn each_invoice_has_a_payer_of_its_own() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_ne!(widget_payer(&a), widget_payer(&b));
        assert!(is_widget_payer(&widget_payer(&a)));
        assert_eq!(payment_reference(&a).len(), 9);
    }
}
