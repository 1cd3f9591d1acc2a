//! The bearer encryption every M-Pesa call needs.
//!
//! M-Pesa authenticates with `Authorization: Bearer base64(RSA-PKCS#1-v1.5(secret))`: the
//! secret is the API key on `getSession` and the session id afterwards, encrypted with the
//! platform's public key as the portal publishes it (base64 of an X.509
//! SubjectPublicKeyInfo DER structure, `MIICIjANBgkq…`, 4096 bits). The padding is random,
//! so the same secret gives a different bearer on every call.
//!
//! Encryption uses the `rsa` crate. Its known weakness (RUSTSEC-2023-0071, timing of
//! *decryption* with a private key) does not concern a client, which only encrypts with a
//! public key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

use crate::error::{Error, Result};

/// An M-Pesa platform public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(RsaPublicKey);

impl PublicKey {
    /// Reads the key as the portal publishes it: base64 of the SPKI DER. PEM armour
    /// (`-----BEGIN PUBLIC KEY-----`) and line breaks or spaces, which some copies carry, are
    /// ignored.
    pub fn from_base64(text: &str) -> Result<PublicKey> {
        let body: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("-----"))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD.decode(body.as_bytes()).map_err(|e| {
            Error::Config(format!(
                "the M-Pesa public key is not base64 ({e}); paste the key exactly as the portal shows it"
            ))
        })?;
        PublicKey::from_der(&der)
    }

    /// Reads an X.509 SubjectPublicKeyInfo DER structure.
    pub fn from_der(der: &[u8]) -> Result<PublicKey> {
        RsaPublicKey::from_public_key_der(der)
            .map(PublicKey)
            .map_err(|e| {
                Error::Config(format!(
                    "the M-Pesa public key is not an RSA SubjectPublicKeyInfo ({e}); use the platform public key of the targeted environment"
                ))
            })
    }

    /// The modulus size in bits (4096 for the platform keys).
    pub fn bits(&self) -> usize {
        self.0.size() * 8
    }

    /// `base64(RSA-PKCS#1-v1.5(secret))`: what follows `Bearer ` in the `Authorization`
    /// header, for an API key or a session id.
    pub fn bearer(&self, secret: &str) -> Result<String> {
        let mut rng = rsa::rand_core::OsRng;
        let ciphertext = self
            .0
            .encrypt(&mut rng, Pkcs1v15Encrypt, secret.as_bytes())
            .map_err(|e| Error::Config(format!("cannot encrypt the bearer: {e}")))?;
        Ok(STANDARD.encode(ciphertext))
    }
}

/// [`PublicKey::bearer`] of a key in its published form.
pub fn bearer(public_key_base64: &str, secret: &str) -> Result<String> {
    PublicKey::from_base64(public_key_base64)?.bearer(secret)
}
