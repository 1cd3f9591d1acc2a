//! Keys and tokens, the boring way: random, hashed at rest, compared in constant time.
//!
//! Access tokens look like the real platform's: a JWT with header `{"typ":"JWT","alg":"R256"}`,
//! payload `{"clientId","expires","sessionId"}` and a 256-byte signature. The signature is
//! eight chained HMAC-SHA256 blocks under a key derived per product from a secret kept in the
//! database, so any node sharing that database can verify a token without a lookup, and a
//! token of one product is refused by another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::Product;

type HmacSha256 = Hmac<Sha256>;

/// 32 lower-case hex characters from 16 random bytes: the shape of MoMo keys.
pub fn random_hex_key() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex(&b)
}

/// How many of an API key's last characters are kept in the clear beside its hash: its
/// owner tells their keys apart by them (as payment dashboards show a card's last four);
/// 16 bits of a 128-bit key.
pub const KEY_ENDING: usize = 4;

/// The last [`KEY_ENDING`] characters of `key`.
pub fn key_ending(key: &str) -> String {
    let start = key.len().saturating_sub(KEY_ENDING);
    key.get(start..).unwrap_or_default().to_owned()
}

/// Fresh random bytes for a signing secret.
pub fn random_secret() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b
}

/// SHA-256 of a key, the only form in which API keys are stored.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where this installation's transaction ids start (`financialTransactionId`, M-Pesa's
/// `TransactionID`): a number below 2³² drawn from the database's secret, added to each
/// ledger transfer's id before it is shaped into one. Two installations, or two test runs,
/// then do not hand out the same ids, while every node sharing a database draws the same.
/// Ids given before the offset existed came from smaller numbers (transfer ids only grow),
/// so none is given again.
pub fn transaction_id_offset(secret: &[u8]) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"mkoba transaction id offset v1:")
        .chain_update(secret)
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 32
}

/// Signs and verifies access tokens.
pub struct TokenSigner {
    secret: Vec<u8>,
    /// Tokens whose signature has been checked, with what they carry: checking one costs
    /// 48 SHA-256 blocks, and a client sends the same token with every request for an
    /// hour. At most [`VERIFIED_TOKENS`] entries; the expiry is still checked on every use.
    verified: std::sync::Mutex<foldhash::HashMap<Box<str>, Verified>>,
}

/// A checked token's product, API user and expiry (Unix milliseconds).
type Verified = (Product, Uuid, i64);

/// How many checked tokens [`TokenSigner`] remembers (each about 600 bytes); when full, it
/// forgets them all and starts again.
const VERIFIED_TOKENS: usize = 4096;

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<redacted>)")
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours, or of another product.
    Invalid,
    /// Ours, but past its expiry.
    Expired,
}

const HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0"; // {"typ":"JWT","alg":"R256"}

impl TokenSigner {
    /// A signer over the platform's secret.
    pub fn new(secret: Vec<u8>) -> TokenSigner {
        TokenSigner {
            secret,
            verified: Default::default(),
        }
    }

    fn product_key(&self, product: Product) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"mkoba access token v1:");
        mac.update(product.as_str().as_bytes());
        let key = mac.finalize().into_bytes();
        HmacSha256::new_from_slice(&key).expect("any key length")
    }

    fn signature(&self, product: Product, signing_input: &str) -> Vec<u8> {
        let base = self.product_key(product);
        let mut out = Vec::with_capacity(256);
        for i in 0u8..8 {
            let mut mac = base.clone();
            mac.update(&[i]);
            mac.update(signing_input.as_bytes());
            out.extend_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// A token for `api_user` on `product`, valid until `expires_ms` (Unix milliseconds).
    pub fn issue(&self, api_user: Uuid, product: Product, expires_ms: i64) -> String {
        let payload = format!(
            r#"{{"clientId":"{api_user}","expires":"{}","sessionId":"{}"}}"#,
            format_expires(expires_ms),
            Uuid::new_v4()
        );
        let signing_input = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(payload));
        let sig = URL_SAFE_NO_PAD.encode(self.signature(product, &signing_input));
        format!("{signing_input}.{sig}")
    }

    /// A compact signed token carrying `claims` for one `purpose` (an OAuth2 consent
    /// request, a consent token): `base64url(claims).base64url(hmac)`. The expiry is the
    /// caller's business (put it in the claims).
    pub fn sign_claims(&self, purpose: &str, claims: &serde_json::Value) -> String {
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig = URL_SAFE_NO_PAD.encode(self.claims_mac(purpose, &body).finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// [`TokenSigner::sign_claims`] in a JWT's shape, as MTN's OAuth2 tokens come: the
    /// access tokens' header (`{"typ":"JWT","alg":"R256"}`), the claims, the signature over
    /// both. A client that decodes a token to read its `exp` finds one.
    pub fn sign_jwt(&self, purpose: &str, claims: &serde_json::Value) -> String {
        let signed = format!(
            "{HEADER_B64}.{}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = URL_SAFE_NO_PAD.encode(self.claims_mac(purpose, &signed).finalize().into_bytes());
        format!("{signed}.{sig}")
    }

    /// The MAC of a claims token's signed part, for one purpose.
    fn claims_mac(&self, purpose: &str, signed: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"mkoba claims v1:");
        mac.update(purpose.as_bytes());
        mac.update(b".");
        mac.update(signed.as_bytes());
        mac
    }

    /// The claims of a token made by [`TokenSigner::sign_claims`] or
    /// [`TokenSigner::sign_jwt`] for the same purpose.
    pub fn verify_claims(
        &self,
        purpose: &str,
        token: &str,
    ) -> Result<serde_json::Value, TokenError> {
        let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let body = match signed.split_once('.') {
            Some((HEADER_B64, body)) => body,
            Some(_) => return Err(TokenError::Invalid),
            None => signed,
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Invalid)?;
        self.claims_mac(purpose, signed)
            .verify_slice(&sig)
            .map_err(|_| TokenError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Invalid)?;
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)
    }

    /// `plain` encrypted for one `purpose`, as `base64url(nonce).base64url(ciphertext)`: XOR
    /// with a keystream of HMAC-SHA256 blocks over a random nonce and the block's index (a
    /// PRF in counter mode). It hides, it does not authenticate: put it in signed claims.
    pub fn seal(&self, purpose: &str, plain: &str) -> String {
        let nonce: [u8; 16] = rand::random();
        let sealed = self.keystream(purpose, &nonce, plain.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The text [`TokenSigner::seal`] sealed for `purpose`.
    pub fn unseal(&self, purpose: &str, sealed: &str) -> Option<String> {
        let (nonce, text) = sealed.split_once('.')?;
        let nonce = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        let text = URL_SAFE_NO_PAD.decode(text).ok()?;
        String::from_utf8(self.keystream(purpose, &nonce, &text)).ok()
    }

    fn keystream(&self, purpose: &str, nonce: &[u8], data: &[u8]) -> Vec<u8> {
        let purpose = format!("seal:{purpose}");
        let mut block_input = nonce.to_vec();
        block_input.extend_from_slice(&[0; 8]);
        let at = nonce.len();
        data.chunks(32)
            .enumerate()
            .flat_map(|(i, chunk)| {
                block_input[at..].copy_from_slice(&(i as u64).to_be_bytes());
                let block = self.mac(&purpose, &block_input);
                chunk
                    .iter()
                    .zip(block)
                    .map(|(b, k)| b ^ k)
                    .collect::<Vec<u8>>()
            })
            .collect()
    }

    /// HMAC-SHA256 of `data` under a key for one `purpose` (M-Pesa session ids).
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"mkoba mac v1:");
        mac.update(purpose.as_bytes());
        mac.update(b".");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The API user a token was issued to, if it is ours, for `product`, and not expired.
    pub fn verify(
        &self,
        token: &str,
        product: Product,
        now_ms: impl FnOnce(&Uuid) -> i64,
    ) -> Result<Uuid, TokenError> {
        self.verify_with(token, product, |client, expires| now_ms(client) >= expires)
    }

    /// [`TokenSigner::verify`] with the expiry judged by `expired(client, expires_ms)`.
    pub fn verify_with(
        &self,
        token: &str,
        product: Product,
        expired: impl FnOnce(&Uuid, i64) -> bool,
    ) -> Result<Uuid, TokenError> {
        let known = self.lock_verified().get(token).copied();
        let (for_product, client, expires) = match known {
            Some(v) => v,
            None => {
                let (client, expires) = self.check(token, product)?;
                let mut verified = self.lock_verified();
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
                verified.insert(token.into(), (product, client, expires));
                (product, client, expires)
            }
        };
        if for_product != product {
            return Err(TokenError::Invalid);
        }
        if expired(&client, expires) {
            return Err(TokenError::Expired);
        }
        Ok(client)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, foldhash::HashMap<Box<str>, Verified>> {
        // A panic while holding it cannot leave the map half-written in a way that matters.
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The signature check and the claims of a token: its API user and expiry.
    fn check(&self, token: &str, product: Product) -> Result<(Uuid, i64), TokenError> {
        let (signing_input, sig) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Invalid)?;
        if sig.len() != 256 {
            return Err(TokenError::Invalid);
        }
        let base = self.product_key(product);
        for (i, chunk) in sig.chunks(32).enumerate() {
            let mut mac = base.clone();
            mac.update(&[i as u8]);
            mac.update(signing_input.as_bytes());
            mac.verify_slice(chunk).map_err(|_| TokenError::Invalid)?;
        }
        let (_, payload) = signing_input.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        let claims: serde_json::Value =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        let client = claims["clientId"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(TokenError::Invalid)?;
        let expires = claims["expires"]
            .as_str()
            .and_then(parse_expires)
            .ok_or(TokenError::Invalid)?;
        Ok((client, expires))
    }
}

const EXPIRES_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
);

fn format_expires(ms: i64) -> String {
    let t = crate::clock::utc(ms).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(EXPIRES_FORMAT).unwrap_or_default()
}

fn parse_expires(s: &str) -> Option<i64> {
    let t = time::PrimitiveDateTime::parse(s, EXPIRES_FORMAT).ok()?;
    Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_for_its_purpose_only() {
        let s = TokenSigner::new([7u8; 32].to_vec());
        let key = "0123456789abcdef0123456789abcdef0123";
        let (a, b) = (s.seal("flash", key), s.seal("flash", key));
        assert_ne!(a, b, "a nonce of its own each time");
        assert!(!a.contains("0123456789abcdef"));
        assert_eq!(s.unseal("flash", &a).as_deref(), Some(key));
        assert_eq!(s.unseal("flash", &b).as_deref(), Some(key));
        assert_ne!(s.unseal("other", &a).as_deref(), Some(key));
        let other = TokenSigner::new([8u8; 32].to_vec());
        assert_ne!(other.unseal("flash", &a).as_deref(), Some(key));
        assert_eq!(s.unseal("flash", "no dot"), None);
    }

    #[test]
    fn keys_are_32_lower_case_hex_characters() {
        let k = random_hex_key();
        assert_eq!(k.len(), 32);
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(k, random_hex_key());
    }

    #[test]
    fn a_token_verifies_for_its_product_until_it_expires() {
        let s = TokenSigner::new(b"secret".to_vec());
        let user = Uuid::new_v4();
        let t = s.issue(user, Product::Collection, 10_000);
        assert_eq!(s.verify(&t, Product::Collection, |_| 9_999), Ok(user));
        assert_eq!(
            s.verify(&t, Product::Collection, |_| 10_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            s.verify(&t, Product::Disbursement, |_| 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn tokens_have_the_real_platforms_shape() {
        let s = TokenSigner::new(b"secret".to_vec());
        let t = s.issue(Uuid::nil(), Product::Collection, 1_700_000_000_123);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"typ":"JWT","alg":"R256"}"#
        );
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(
            payload.contains(r#""expires":"2023-11-14T22:13:20.123""#),
            "{payload}"
        );
        assert_eq!(parts[2].len(), 342);
    }

    #[test]
    fn signed_claims_verify_only_for_their_purpose() {
        let s = TokenSigner::new(b"secret".to_vec());
        let claims = serde_json::json!({"sub": "x", "exp": 5});
        let t = s.sign_claims("consent", &claims);
        assert_eq!(s.verify_claims("consent", &t), Ok(claims));
        assert_eq!(s.verify_claims("other", &t), Err(TokenError::Invalid));
        let mut bad = t.clone();
        bad.insert(2, 'A');
        assert_eq!(s.verify_claims("consent", &bad), Err(TokenError::Invalid));
    }

    #[test]
    fn claims_in_a_jwts_shape_verify_and_cannot_be_cut_down() {
        let s = TokenSigner::new(b"secret".to_vec());
        let claims = serde_json::json!({"sub": "x", "exp": 5});
        let t = s.sign_jwt("consent", &claims);
        let parts: Vec<_> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], HEADER_B64);
        assert_eq!(s.verify_claims("consent", &t), Ok(claims));
        assert_eq!(s.verify_claims("other", &t), Err(TokenError::Invalid));
        // Without its header, or under another, it is not the token that was signed.
        let cut = format!("{}.{}", parts[1], parts[2]);
        assert_eq!(s.verify_claims("consent", &cut), Err(TokenError::Invalid));
        let other = format!("eyJhbGciOiJub25lIn0.{}.{}", parts[1], parts[2]);
        assert_eq!(s.verify_claims("consent", &other), Err(TokenError::Invalid));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let s = TokenSigner::new(b"secret".to_vec());
        let other = TokenSigner::new(b"other".to_vec());
        let t = s.issue(Uuid::new_v4(), Product::Collection, 10_000);
        assert_eq!(
            other.verify(&t, Product::Collection, |_| 0),
            Err(TokenError::Invalid)
        );
        let mut bad = t.clone();
        bad.replace_range(40..41, if &t[40..41] == "A" { "B" } else { "A" });
        assert_eq!(
            s.verify(&bad, Product::Collection, |_| 0),
            Err(TokenError::Invalid)
        );
        for junk in ["", "a.b", "a.b.c", "...."] {
            assert_eq!(
                s.verify(junk, Product::Collection, |_| 0),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn a_remembered_token_vouches_only_for_itself() {
        let s = TokenSigner::new(b"secret".to_vec());
        let user = Uuid::new_v4();
        let t = s.issue(user, Product::Collection, 10_000);
        assert_eq!(s.verify(&t, Product::Collection, |_| 0), Ok(user));
        // Every byte of a remembered token counts: a changed payload or signature is
        // checked afresh, and refused.
        for at in [40, t.len() - 1] {
            let mut bad = t.clone();
            bad.replace_range(at..at + 1, if &t[at..at + 1] == "A" { "B" } else { "A" });
            assert_eq!(
                s.verify(&bad, Product::Collection, |_| 0),
                Err(TokenError::Invalid)
            );
        }
        assert_eq!(
            s.verify(&format!("{t} "), Product::Collection, |_| 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            s.verify(&t, Product::Remittance, |_| 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            s.verify(&t, Product::Collection, |_| 10_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn remembered_tokens_are_bounded() {
        let s = TokenSigner::new(b"secret".to_vec());
        let user = Uuid::new_v4();
        for _ in 0..VERIFIED_TOKENS + 10 {
            let t = s.issue(user, Product::Collection, 10_000);
            assert_eq!(s.verify(&t, Product::Collection, |_| 0), Ok(user));
            assert!(s.lock_verified().len() <= VERIFIED_TOKENS);
        }
        assert_eq!(s.lock_verified().len(), 10);
    }
}
