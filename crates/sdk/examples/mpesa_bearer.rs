//! Prints an M-Pesa `Authorization` header for a secret (API key or session id), encrypted
//! with a platform public key as the portal publishes it (base64 SPKI DER).
//!
//! ```sh
//! cargo run -p mkoba-sdk --example mpesa_bearer -- "$(cat public-key.b64)" "$API_KEY"
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(key), Some(secret)) = (args.next(), args.next()) else {
        return Err("usage: mpesa_bearer <base64 SPKI public key> <API key or session id>".into());
    };
    let key = mkoba_sdk::mpesa::PublicKey::from_base64(&key)?;
    eprintln!("{}-bit key", key.bits());
    println!("Authorization: Bearer {}", key.bearer(&secret)?);
    Ok(())
}
