//! M-Pesa applications, and payments by transaction id (SQLite's `mpesa.rs`).

use mkoba_platform::model::Payment;
use mkoba_platform::mpesa::MpesaApp;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::conn::{Conn, Op, Result, op};
use mkoba_platform::rows::{self, MPESA_APP_COLUMNS, PAYMENT_COLUMNS};

use crate::{Pg, col, payment_row};

fn app_row(row: &Row) -> Result<MpesaApp> {
    Ok(rows::mpesa_app(&Pg(row))?)
}

pub(crate) fn app(c: &mut Conn, developer_id: i64) -> Result<Option<MpesaApp>> {
    c.query_opt(
        &format!("SELECT {MPESA_APP_COLUMNS} FROM mpesa_apps WHERE developer_id = $1"),
        &[&developer_id],
    )?
    .as_ref()
    .map(app_row)
    .transpose()
}

pub(crate) fn app_by_key_hash(c: &mut Conn, hash: &[u8; 32]) -> Result<Option<MpesaApp>> {
    c.query_opt(
        &format!("SELECT {MPESA_APP_COLUMNS} FROM mpesa_apps WHERE api_key_hash = $1"),
        &[&&hash[..]],
    )?
    .as_ref()
    .map(app_row)
    .transpose()
}

pub(crate) fn payment_by_transaction_id(
    c: &mut Conn,
    transaction_id: &str,
) -> Result<Option<Payment>> {
    c.query_opt(
        &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE mpesa_transaction_id = $1"),
        &[&transaction_id],
    )?
    .as_ref()
    .map(payment_row)
    .transpose()
}

pub(crate) fn refunded_total(c: &mut Conn, original: &Uuid) -> Result<i64> {
    col(
        &c.query_one(
            "SELECT COALESCE(SUM(amount_minor), 0)::BIGINT FROM payments
             WHERE refund_of = $1 AND status != 'FAILED' AND reason IS NULL",
            &[&original.to_string()],
        )?,
        0,
    )
}

pub(crate) fn ops(apps: &[MpesaApp], ops: &mut Vec<Op>) {
    for a in apps {
        ops.push(op!(
            "INSERT INTO mpesa_apps (developer_id, api_user, api_key_hash, api_key_created_at_ms,
                 sandbox_api_key, allowed_origins, session_lifetime_secs, result_url, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (developer_id) DO UPDATE SET api_key_hash = excluded.api_key_hash,
                 api_key_created_at_ms = excluded.api_key_created_at_ms,
                 sandbox_api_key = excluded.sandbox_api_key,
                 allowed_origins = excluded.allowed_origins,
                 session_lifetime_secs = excluded.session_lifetime_secs,
                 result_url = excluded.result_url",
            a.developer_id,
            a.api_user.to_string(),
            a.api_key_hash.to_vec(),
            a.api_key_created_at_ms,
            a.api_key.clone(),
            a.allowed_origins.join("\n"),
            a.session_lifetime_secs as i64,
            a.result_url.clone(),
            a.created_at_ms
        ));
    }
}
