//! M-Pesa applications in SQLite, and payments by transaction id.

use mkoba_platform::model::Payment;
use mkoba_platform::mpesa::MpesaApp;
use mkoba_platform::store::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use mkoba_platform::rows::{self, MPESA_APP_COLUMNS, PAYMENT_COLUMNS};

use crate::{Lite, lite, payment_row};

fn app_row(row: &Row<'_>) -> rusqlite::Result<MpesaApp> {
    lite(rows::mpesa_app(&Lite(row)))
}

pub(crate) fn app(c: &Connection, developer_id: i64) -> rusqlite::Result<Option<MpesaApp>> {
    c.prepare_cached(&format!(
        "SELECT {MPESA_APP_COLUMNS} FROM mpesa_apps WHERE developer_id = ?1"
    ))?
    .query_row([developer_id], app_row)
    .optional()
}

pub(crate) fn app_by_key_hash(
    c: &Connection,
    hash: &[u8; 32],
) -> rusqlite::Result<Option<MpesaApp>> {
    c.prepare_cached(&format!(
        "SELECT {MPESA_APP_COLUMNS} FROM mpesa_apps WHERE api_key_hash = ?1"
    ))?
    .query_row([&hash[..]], app_row)
    .optional()
}

pub(crate) fn payment_by_transaction_id(
    c: &Connection,
    transaction_id: &str,
) -> rusqlite::Result<Option<Payment>> {
    c.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE financial_transaction_id = ?1 AND product = 'mpesa'"
    ))?
    .query_row([transaction_id], payment_row)
    .optional()
}

pub(crate) fn refunded_total(c: &Connection, original: &Uuid) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "SELECT COALESCE(SUM(amount_minor), 0) FROM payments WHERE refund_of = ?1 AND status != 'FAILED' AND reason IS NULL",
    )?
    .query_row([original.to_string()], |r| r.get(0))
}

pub(crate) fn write(tx: &rusqlite::Transaction<'_>, apps: &[MpesaApp]) -> rusqlite::Result<()> {
    for a in apps {
        tx.prepare_cached(&format!(
            "INSERT INTO mpesa_apps ({MPESA_APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (developer_id) DO UPDATE SET api_key_hash = excluded.api_key_hash,
                 api_key_created_at_ms = excluded.api_key_created_at_ms,
                 sandbox_api_key = excluded.sandbox_api_key,
                 allowed_origins = excluded.allowed_origins,
                 session_lifetime_secs = excluded.session_lifetime_secs,
                 result_url = excluded.result_url"
        ))?
        .execute(params![
            a.developer_id,
            a.api_user.to_string(),
            &a.api_key_hash[..],
            a.api_key_created_at_ms,
            a.api_key,
            a.allowed_origins.join("\n"),
            a.session_lifetime_secs as i64,
            a.result_url,
            a.created_at_ms
        ])?;
    }
    Ok(())
}

/// Reads through a fresh statement; errors become [`StoreError`]s.
pub(crate) fn store<T>(r: rusqlite::Result<T>) -> Result<T, StoreError> {
    r.map_err(crate::err)
}
