//! What the tests of the store, the server and the SDK share, written once:
//! - [`pg`]: a throwaway PostgreSQL server, one per test binary, a database per test;
//! - [`MPESA_TEST_KEY`]: the M-Pesa platform key every test server uses;
//! - [`server`] (feature `server`): a real server on `127.0.0.1:0` in a data directory of
//!   its own;
//! - [`sink`] (feature `server`): a callback receiver, plain or https, and the test CA that
//!   signs its certificate.
//!
//! The store's tests use it without the `server` feature, so the server never has to be
//! built for them.

pub mod pg;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod sink;

/// The M-Pesa platform private key the test servers use (made for the tests with
/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096`; it protects nothing). A
/// fixed key: generating a 4096-bit key per test would cost seconds each.
pub const MPESA_TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mpesa-test-key.pem");
