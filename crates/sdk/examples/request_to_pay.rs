//! Provision a sandbox API user, ask a payer to pay, and wait for the outcome.
//!
//! Against a local Mkoba (`mkoba serve`, then `mkoba credentials` for the key):
//!
//! ```sh
//! MOMO_URL=http://127.0.0.1:8080 MOMO_COLLECTION_KEY=<collection primary key> \
//!     cargo run -p mkoba-sdk --example request_to_pay -- 46733123450
//! ```
//!
//! Without `MOMO_URL` it talks to MTN's sandbox (`https://sandbox.momodeveloper.mtn.com`)
//! with your collection subscription key from the developer portal.

use mkoba_sdk::momo::{Collection, Config, Poll, Provisioning, Transaction as _};
use mkoba_sdk::types::momo::{Party, RequestToPay};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("MOMO_COLLECTION_KEY")
        .map_err(|_| "set MOMO_COLLECTION_KEY to your collection subscription key")?;
    let payer = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "256774290781".to_owned());
    let mut provisioning = Provisioning::new(&key);
    let mut config = Config::new(&key);
    if let Ok(url) = std::env::var("MOMO_URL") {
        provisioning = provisioning.base_url(&url);
        config = config.base_url(&url);
    }

    let user = provisioning.provision("localhost").await?;
    println!("API user {}", user.api_user);
    let collection = Collection::new(config.api_user(&user.api_user, &user.api_key))?;

    let reference = collection
        .request_to_pay(&RequestToPay {
            amount: "100".into(),
            currency: "EUR".into(),
            external_id: Some("order-1".into()),
            payer: Party::msisdn(payer),
            payer_message: Some("Order 1".into()),
            payee_note: Some("Order 1".into()),
        })
        .await?;
    println!("request-to-pay {reference} accepted");

    let result = collection
        .wait_for_request_to_pay(&reference, Poll::default())
        .await?;
    match result.reason() {
        Some(reason) => println!("{}: {reason}", result.status),
        None => println!(
            "{} (financialTransactionId {})",
            result.status,
            result.financial_transaction_id.as_deref().unwrap_or("-")
        ),
    }
    let balance = collection.get_account_balance().await?;
    println!("balance {} {}", balance.available_balance, balance.currency);
    Ok(())
}
