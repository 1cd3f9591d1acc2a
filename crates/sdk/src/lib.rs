//! # mkoba-sdk
//!
//! A Rust client for the **MTN MoMo Open API** and the **Vodacom M-Pesa OpenAPI v2** that
//! works unchanged against the real hosts (MTN's `https://sandbox.momodeveloper.mtn.com` and
//! `https://proxy.momoapi.mtn.com`; M-Pesa's `https://openapi.m-pesa.com`) and against
//! Mkoba, the self-hosted platform that speaks both:
//! pointing at Mkoba is one base-URL change.
//!
//! * [`momo`]: a client per product ([`momo::Collection`], [`momo::Disbursement`],
//!   [`momo::Remittance`]) with a typed method for every operation, sandbox provisioning
//!   ([`momo::Provisioning`]), tokens cached and shared across tasks, generated reference
//!   ids, [`momo::wait_for_final_status`] and callback parsing ([`momo::parse_callback`]).
//! * `mpesa` (feature `mpesa`, on by default): a client per market (`mpesa::Client`) with
//!   a typed method for every operation (C2B, B2C, B2B, reversals, status and beneficiary
//!   queries, direct debits), sessions fetched once, shared and replaced before they end or
//!   after a 401, generated `input_ThirdPartyConversationID`s, amounts as integer minor
//!   units (`mpesa::Amount`), `INS-*` codes as `mpesa::InsCode`, and the asynchronous
//!   result parsed and acknowledged (`mpesa::parse_result`).
//! * Errors are typed ([`Error`], [`ApiError`], and `MpesaError` for M-Pesa) and carry the
//!   provider's code ([`ReasonCode`], `mpesa::InsCode`) and message, plus a
//!   [`hint`](Error::hint) on how to fix the usual mistakes (wrong key, wrong environment,
//!   callback host mismatch, an origin not allowed, a reused conversation id).
//! * Wire types are the shared [`types`] crate (`mkoba-api-types`), the same the server
//!   uses.
//! * HTTP is hyper 1 with a pooled client ([`Transport`]); `https://` through rustls (ring,
//!   Mozilla roots) with the default `rustls` feature. No blocking calls: every operation
//!   is `async` and needs a Tokio runtime.
//!
//! ```no_run
//! # async fn demo() -> mkoba_sdk::Result<()> {
//! use mkoba_sdk::momo::{Config, Disbursement, Poll, Provisioning};
//! use mkoba_sdk::types::momo::{Party, Transfer};
//!
//! // A sandbox API user (Mkoba here; drop base_url for MTN's sandbox).
//! let base = "http://127.0.0.1:8080";
//! let user = Provisioning::new("disbursement-key").base_url(base).provision("shop.example").await?;
//! let disbursement = Disbursement::new(
//!     Config::new("disbursement-key").base_url(base).api_user(&user.api_user, &user.api_key),
//! )?;
//! let reference = disbursement
//!     .transfer(&Transfer {
//!         amount: "250".into(),
//!         currency: "EUR".into(),
//!         external_id: Some("payout-7".into()),
//!         payee: Party::msisdn("256774290781"),
//!         payer_message: None,
//!         payee_note: None,
//!     })
//!     .await?;
//! let done = disbursement.wait_for_transfer(&reference, Poll::default()).await?;
//! println!("{} {}", reference, done.status);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
pub mod momo;
#[cfg(feature = "mpesa")]
pub mod mpesa;
mod transport;

#[cfg(feature = "mpesa")]
pub use error::MpesaError;
pub use error::{ApiError, Error, ErrorSource, ReasonCode, Result};
pub use mkoba_api_types as types;
pub use transport::{DEFAULT_TIMEOUT, MAX_ANSWER_BYTES, Transport};

/// The longest a token or a session is kept, whatever a server's answer or a configuration
/// says (a lifetime far past it overflowed the clock, and the call panicked).
pub(crate) const MAX_CACHED_LIFETIME: std::time::Duration = std::time::Duration::from_secs(86_400);

/// `at + by`, or a century on when that is past what the clock holds: a timeout or an
/// interval of any size, a caller's or a server's, is taken without a panic.
pub(crate) fn later(at: std::time::Instant, by: std::time::Duration) -> std::time::Instant {
    at.checked_add(by)
        .unwrap_or_else(|| at + std::time::Duration::from_secs(100 * 365 * 86_400))
}
