//! Wire types of the providers' APIs, shared by the server and the client SDK.
//!
//! Field names and order are the providers' own (serde serialises in declaration order, and
//! the order is the one observed on the real sandbox). Optional fields are omitted, never
//! sent as `null`, because that is what the real platform does.

pub mod json;
pub mod momo;
pub mod mpesa;
