//! The M-Pesa bearer: encrypted with a 4096-bit test key published the portal's way (base64
//! SPKI DER), decrypted with its private half. The key pair in `tests/data` was made for
//! these tests with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096`; it
//! protects nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mkoba_sdk::mpesa::{PublicKey, bearer};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};

const PUBLIC: &str = include_str!("data/test-rsa-4096.spki.b64");
const PRIVATE: &[u8] = include_bytes!("data/test-rsa-4096.pkcs8.der");
const API_KEY: &str = "6bc4157dbee34d409118e0978dc6dd17";

fn decrypt(bearer: &str) -> String {
    let key = RsaPrivateKey::from_pkcs8_der(PRIVATE).expect("test private key");
    let ciphertext = STANDARD.decode(bearer).expect("base64");
    String::from_utf8(key.decrypt(Pkcs1v15Encrypt, &ciphertext).expect("decrypts")).unwrap()
}

#[test]
fn the_bearer_is_the_api_key_encrypted_with_the_published_key() {
    let key = PublicKey::from_base64(PUBLIC).unwrap();
    assert_eq!(key.bits(), 4096);
    let b = key.bearer(API_KEY).unwrap();
    assert_eq!(b.len(), 684, "512 bytes of ciphertext in base64");
    assert_eq!(decrypt(&b), API_KEY);
}

#[test]
fn each_bearer_is_different_because_the_padding_is_random() {
    let a = bearer(PUBLIC, API_KEY).unwrap();
    let b = bearer(PUBLIC, API_KEY).unwrap();
    assert_ne!(a, b);
    assert_eq!(decrypt(&a), decrypt(&b));
}

#[test]
fn pem_armour_and_line_breaks_are_accepted() {
    let wrapped: Vec<&str> = PUBLIC
        .trim()
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        wrapped.join("\n")
    );
    let b = PublicKey::from_base64(&pem)
        .unwrap()
        .bearer("session-id")
        .unwrap();
    assert_eq!(decrypt(&b), "session-id");
}

#[test]
fn a_malformed_key_is_a_configuration_error_that_says_so() {
    let e = PublicKey::from_base64("not base64!").unwrap_err();
    assert!(e.to_string().contains("not base64"), "{e}");
    let e = PublicKey::from_base64(&STANDARD.encode(b"not a key")).unwrap_err();
    assert!(e.to_string().contains("SubjectPublicKeyInfo"), "{e}");
}
