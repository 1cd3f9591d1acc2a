//! A customer pays a business (M-Pesa C2B single stage), then the status is read back.
//!
//! Against a local Mkoba (`mkoba serve`; `mkoba mpesa credentials` prints the key pair):
//!
//! ```sh
//! export MPESA_BASE_URL=http://127.0.0.1:8080
//! eval "$(mkoba mpesa credentials --export)"      # MPESA_API_KEY and MPESA_PUBLIC_KEY
//! cargo run -p mkoba-sdk --example mpesa_c2b -- 10.50 000000000001
//! ```
//!
//! `000000000008` is the sandbox's number with insufficient funds (`INS-2006`). Without
//! `MPESA_BASE_URL` it talks to the real gateway's sandbox (`https://openapi.m-pesa.com`)
//! with your application's API key and the sandbox public key from the portal.
//! `MPESA_MARKET` picks the market (`vodacomTZN` by default).

use mkoba_sdk::mpesa::{Amount, C2bPayment, Client, Config, Market, TransactionStatusQuery};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api_key = std::env::var("MPESA_API_KEY")
        .map_err(|_| "set MPESA_API_KEY to your application's API key")?;
    let public_key = std::env::var("MPESA_PUBLIC_KEY")
        .map_err(|_| "set MPESA_PUBLIC_KEY to the platform public key (base64)")?;
    let market: Market = std::env::var("MPESA_MARKET")
        .unwrap_or_else(|_| "vodacomTZN".to_owned())
        .parse()?;
    let mut args = std::env::args().skip(1);
    let amount = Amount::parse(&args.next().unwrap_or_else(|| "10".to_owned()))?;
    let msisdn = args.next().unwrap_or_else(|| "000000000001".to_owned());

    let mut config = Config::new(market, api_key, public_key);
    if let Ok(url) = std::env::var("MPESA_BASE_URL") {
        config = config.base_url(url);
    }
    let client = Client::new(config)?;
    println!("{}", client.describe());

    let request = client.c2b(&C2bPayment {
        amount,
        customer_msisdn: msisdn.clone(),
        service_provider_code: "000000".into(),
        transaction_reference: "T1234C".into(),
        purchased_items_desc: "Shoes".into(),
    });
    let id = request.id().to_owned();
    println!(
        "C2B {amount} {} from {msisdn} (ThirdPartyConversationID {id})",
        market.currency()
    );
    match request.await {
        Ok(paid) => {
            println!(
                "{} {}: transaction {}, conversation {}",
                paid.response_code,
                paid.response_desc,
                paid.transaction_id.as_deref().unwrap_or("(asynchronous)"),
                paid.conversation_id
            );
        }
        Err(e) => {
            eprintln!("refused: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("  how to fix: {hint}");
            }
        }
    }

    // The status by our own id works whether the payment went through or not.
    let status = client
        .query_transaction_status(&TransactionStatusQuery {
            query_reference: id,
            service_provider_code: "000000".into(),
        })
        .await?;
    println!(
        "status: {}",
        status
            .transaction_status
            .as_deref()
            .unwrap_or("sent to the result URL")
    );
    Ok(())
}
