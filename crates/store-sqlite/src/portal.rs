//! The developer portal's tables (migration 0003): accounts, sessions and the virtual phone
//! setting, plus the per-developer listings and aggregates its pages read; the API users'
//! Collection Widget settings (migration 0005); the account journey's status, phone codes
//! and the mailbox (migration 0006); operators and go-live requests (migration 0007).

use mkoba_platform::accounts::{AccountRecord, Mail, MailFilter, PhoneCode};
use mkoba_platform::golive::{GoLiveFilter, GoLiveRequest};
use mkoba_platform::model::{ApiUser, Payment, Product, WidgetSettings};
use mkoba_platform::portal::{
    AccountFilter, ApiKeyInfo, DeveloperAccount, KindCount, LATENCY_SAMPLES, Latencies,
    OutboxRecord, PageKey, PaymentFilter, PaymentPage, PortalJournal, PortalReader, PortalWrite,
    ReportScope, SandboxLogin, SessionRecord, StatsRow,
};
use mkoba_platform::store::StoreError;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use uuid::Uuid;

use mkoba_platform::rows::{
    self, ACCOUNT_RECORD_COLUMNS, API_KEY_COLUMNS, API_USER_COLUMNS, DEVELOPER_COLUMNS,
    GOLIVE_COLUMNS, MAIL_COLUMNS, OUTBOX_RECORD_COLUMNS, PAYMENT_COLUMNS, PHONE_CODE_COLUMNS,
    WIDGET_SETTINGS_COLUMNS,
};

use crate::{Lite, SqliteJournal, SqliteReader, err, lite, payment_row};

const SANDBOX_PASSWORD: &str = "sandbox_portal_password";
const OPERATOR_PASSWORD: &str = "operator_portal_password";

/// Deletes the printed password of account `?1` (the sandbox developer's, or the first
/// operator's) when its password hash is about to become `?2`, another one.
const FORGET_PRINTED_PASSWORD: &str = "DELETE FROM settings
     WHERE name = CASE WHEN ?1 = 1 THEN 'sandbox_portal_password'
         WHEN ?1 = (SELECT MIN(developer_id) FROM developer_accounts WHERE role = 'operator')
         THEN 'operator_portal_password' END
       AND EXISTS (SELECT 1 FROM developer_accounts WHERE developer_id = ?1 AND password_hash <> ?2)";

pub(crate) fn write(
    tx: &rusqlite::Transaction<'_>,
    writes: &[PortalWrite],
) -> rusqlite::Result<()> {
    for w in writes {
        match w {
            PortalWrite::CreateDeveloper {
                id,
                email,
                name,
                password_hash,
                created_at_ms,
                status,
                role,
            } => {
                tx.prepare_cached(
                    "INSERT INTO developer_accounts (developer_id, email, name, password_hash, created_at_ms, status, role)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    id,
                    email,
                    name,
                    password_hash,
                    created_at_ms,
                    status.as_str(),
                    role.as_str()
                ])?;
            }
            PortalWrite::OperatorLogin { password } => {
                tx.prepare_cached(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![OPERATOR_PASSWORD, password.as_bytes()])?;
            }
            PortalWrite::CreateGoLive {
                request: r,
                created_at_ms,
            } => {
                tx.prepare_cached(
                    "INSERT INTO golive_requests (developer_id, created_at_ms, state, company, contact,
                         website, use_case, markets, products, report)
                     VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    r.developer_id,
                    created_at_ms,
                    r.company,
                    r.contact,
                    r.website,
                    r.use_case,
                    r.markets.join(" "),
                    r.products.join(" "),
                    r.report_json
                ])?;
            }
            PortalWrite::DecideGoLive {
                id,
                state,
                decided_at_ms,
                decided_by,
                comment,
            } => {
                tx.prepare_cached(
                    "UPDATE golive_requests SET state = ?2, decided_at_ms = ?3, decided_by = ?4, comment = ?5
                     WHERE id = ?1",
                )?
                .execute(params![id, state.as_str(), decided_at_ms, decided_by, comment])?;
            }
            PortalWrite::UpdateAccount(a) => {
                // A printed password (the banner's and `mkoba credentials`') no longer
                // signs in once its account's password changes: it goes.
                tx.prepare_cached(FORGET_PRINTED_PASSWORD)?
                    .execute(params![a.developer_id, a.password_hash])?;
                tx.prepare_cached(
                    "UPDATE developer_accounts SET email = ?2, name = ?3, password_hash = ?4, status = ?5, phone = ?6
                     WHERE developer_id = ?1",
                )?
                .execute(params![
                    a.developer_id,
                    a.email,
                    a.name,
                    a.password_hash,
                    a.status.as_str(),
                    a.phone
                ])?;
            }
            PortalWrite::DeleteSessionsOf {
                developer_id,
                except,
            } => {
                tx.prepare_cached(
                    "DELETE FROM portal_sessions WHERE developer_id = ?1 AND (?2 IS NULL OR id_hash != ?2)",
                )?
                .execute(params![developer_id, except.as_ref().map(|h| &h[..])])?;
            }
            PortalWrite::RevokeDeveloperKeys {
                developer_id,
                at_ms,
            } => {
                tx.prepare_cached(
                    "UPDATE api_keys SET revoked_at_ms = ?2
                     WHERE revoked_at_ms IS NULL
                       AND api_user IN (SELECT id FROM api_users WHERE developer_id = ?1)",
                )?
                .execute(params![developer_id, at_ms])?;
            }
            PortalWrite::SetPhoneCode(c) => {
                tx.prepare_cached(
                    "INSERT INTO phone_codes (developer_id, msisdn, code_mac, sent_at_ms, expires_at_ms, attempts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (developer_id) DO UPDATE SET msisdn = excluded.msisdn,
                         code_mac = excluded.code_mac, sent_at_ms = excluded.sent_at_ms,
                         expires_at_ms = excluded.expires_at_ms, attempts = excluded.attempts",
                )?
                .execute(params![
                    c.developer_id,
                    c.msisdn,
                    &c.code_mac[..],
                    c.sent_at_ms,
                    c.expires_at_ms,
                    c.attempts
                ])?;
            }
            PortalWrite::DeletePhoneCode { developer_id } => {
                tx.prepare_cached("DELETE FROM phone_codes WHERE developer_id = ?1")?
                    .execute([developer_id])?;
            }
            PortalWrite::QueueMail {
                mail,
                created_at_ms,
                state,
            } => {
                tx.prepare_cached(
                    "INSERT INTO mailbox (developer_id, channel, kind, recipient, subject, body,
                         created_at_ms, state, attempts, next_attempt_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?7)",
                )?
                .execute(params![
                    mail.developer_id,
                    mail.channel.as_str(),
                    mail.kind.as_str(),
                    mail.recipient,
                    mail.subject,
                    mail.body,
                    created_at_ms,
                    state.as_str()
                ])?;
            }
            PortalWrite::UpdateMail {
                id,
                state,
                attempts,
                next_attempt_at_ms,
                last_error,
                sent_at_ms,
            } => {
                tx.prepare_cached(
                    "UPDATE mailbox SET state = ?2, attempts = ?3, next_attempt_at_ms = ?4,
                         last_error = ?5, sent_at_ms = ?6
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    state.as_str(),
                    attempts,
                    next_attempt_at_ms,
                    last_error,
                    sent_at_ms
                ])?;
            }
            PortalWrite::SandboxLogin {
                login,
                password_hash,
            } => {
                tx.prepare_cached(
                    "INSERT INTO developer_accounts (developer_id, email, name, password_hash, created_at_ms)
                     VALUES (?1, ?2, 'Sandbox developer', ?3, ?4)",
                )?
                .execute(params![
                    mkoba_platform::SANDBOX_DEVELOPER,
                    login.email,
                    password_hash,
                    mkoba_platform::clock::system_now_ms()
                ])?;
                tx.prepare_cached(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![SANDBOX_PASSWORD, login.password.as_bytes()])?;
            }
            PortalWrite::CreateSession {
                id_hash,
                developer_id,
                csrf_token,
                created_at_ms,
                expires_at_ms,
            } => {
                tx.prepare_cached("DELETE FROM portal_sessions WHERE expires_at_ms < ?1")?
                    .execute([created_at_ms])?;
                tx.prepare_cached(
                    "INSERT INTO portal_sessions (id_hash, developer_id, csrf_token, created_at_ms, expires_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    &id_hash[..],
                    developer_id,
                    csrf_token,
                    created_at_ms,
                    expires_at_ms
                ])?;
            }
            PortalWrite::DeleteSession { id_hash } => {
                tx.prepare_cached("DELETE FROM portal_sessions WHERE id_hash = ?1")?
                    .execute([&id_hash[..]])?;
            }
            PortalWrite::RevokeApiKey {
                key_id,
                api_user,
                at_ms,
            } => {
                tx.prepare_cached(
                    "UPDATE api_keys SET revoked_at_ms = ?3
                     WHERE id = ?1 AND api_user = ?2 AND revoked_at_ms IS NULL",
                )?
                .execute(params![key_id, api_user.to_string(), at_ms])?;
            }
            PortalWrite::SetApprovalMode { developer_id, on } => {
                tx.prepare_cached(
                    "UPDATE developer_accounts SET approval_mode = ?2 WHERE developer_id = ?1",
                )?
                .execute(params![developer_id, on])?;
            }
            PortalWrite::SetWidgetSettings { api_user, settings } => {
                tx.prepare_cached(
                    "INSERT INTO widget_settings (api_user, allowed_origins, callback_url, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (api_user) DO UPDATE SET allowed_origins = excluded.allowed_origins,
                         callback_url = excluded.callback_url, updated_at_ms = excluded.updated_at_ms",
                )?
                .execute(params![
                    api_user.to_string(),
                    rows::origins_json(settings.allowed_origins.as_deref()),
                    settings.callback_url,
                    settings.updated_at_ms
                ])?;
            }
            PortalWrite::UseAuthRequest {
                jti,
                api_user,
                used_at_ms,
                keep_until_ms,
            } => {
                tx.prepare_cached("DELETE FROM used_auth_requests WHERE keep_until_ms < ?1")?
                    .execute([used_at_ms])?;
                tx.prepare_cached(
                    "INSERT INTO used_auth_requests (jti, api_user, used_at_ms, keep_until_ms)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (jti) DO NOTHING",
                )?
                .execute(params![
                    jti,
                    api_user.to_string(),
                    used_at_ms,
                    keep_until_ms
                ])?;
            }
        }
    }
    Ok(())
}

impl PortalJournal for SqliteJournal {
    fn operators(&mut self) -> Result<Vec<(i64, String)>, StoreError> {
        read_operators(&self.conn).map_err(err)
    }

    fn golive_requests(&mut self, filter: &GoLiveFilter) -> Result<Vec<GoLiveRequest>, StoreError> {
        read_golive_requests(&self.conn, filter).map_err(err)
    }

    fn golive_request(&mut self, id: i64) -> Result<Option<GoLiveRequest>, StoreError> {
        read_golive_request(&self.conn, id).map_err(err)
    }

    fn auth_request_used(&mut self, jti: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM used_auth_requests WHERE jti = ?1")
            .and_then(|mut s| s.exists([jti]))
            .map_err(err)
    }

    fn developer_email_taken(&mut self, email: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM developer_accounts WHERE email = ?1")
            .and_then(|mut s| s.exists([email]))
            .map_err(err)
    }

    fn max_developer_id(&mut self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM developers", [], |r| {
                r.get(0)
            })
            .map_err(err)
    }

    fn api_user_developer(&mut self, id: &Uuid) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT developer_id FROM api_users WHERE id = ?1")
            .and_then(|mut s| s.query_row([id.to_string()], |r| r.get(0)).optional())
            .map_err(err)
    }

    fn approval_developers(&mut self) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT developer_id FROM developer_accounts WHERE approval_mode != 0")
            .map_err(err)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)
    }

    fn sandbox_login_exists(&mut self) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM developer_accounts WHERE developer_id = ?1")
            .and_then(|mut s| s.exists([mkoba_platform::SANDBOX_DEVELOPER]))
            .map_err(err)
    }

    fn account(&mut self, developer_id: i64) -> Result<Option<AccountRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_RECORD_COLUMNS} FROM developer_accounts WHERE developer_id = ?1"
            ))
            .and_then(|mut s| s.query_row([developer_id], account_row).optional())
            .map_err(err)
    }

    fn phone_code(&mut self, developer_id: i64) -> Result<Option<PhoneCode>, StoreError> {
        read_phone_code(&self.conn, developer_id).map_err(err)
    }

    fn due_mail(&mut self, now_ms: i64, limit: u32) -> Result<Vec<Mail>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {MAIL_COLUMNS} FROM mailbox
                 WHERE state IN ('queued', 'sending') AND next_attempt_at_ms <= ?1
                 ORDER BY next_attempt_at_ms, id LIMIT ?2"
            ))
            .map_err(err)?;
        stmt.query_map(params![now_ms, limit], mail_row)
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)
    }
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    lite(rows::account_record(&Lite(r)))
}

fn read_phone_code(
    c: &rusqlite::Connection,
    developer_id: i64,
) -> rusqlite::Result<Option<PhoneCode>> {
    c.prepare_cached(&format!(
        "SELECT {PHONE_CODE_COLUMNS} FROM phone_codes WHERE developer_id = ?1"
    ))?
    .query_row([developer_id], |r| lite(rows::phone_code(&Lite(r))))
    .optional()
}

fn mail_row(r: &Row<'_>) -> rusqlite::Result<Mail> {
    lite(rows::mail(&Lite(r)))
}

fn widget_settings_row(r: &Row<'_>) -> rusqlite::Result<WidgetSettings> {
    lite(rows::widget_settings(&Lite(r)))
}

fn developer_row(r: &Row<'_>) -> rusqlite::Result<DeveloperAccount> {
    lite(rows::developer(&Lite(r)))
}

/// A report's payments, from [`scope_params`] (`?1` to `?8`): the developer's, created
/// since `?2` (and since `?6` when given, before `?7` when given), of one API user (`?3`),
/// API (`?4`), operation (`?5`) and side (`?8`, sandbox or production) when given (the
/// Collection Widget's API: the widget's invoices). The API user narrows the developer's
/// API users before their payments are read.
const IN_SCOPE: &str = concat!(
    "u.developer_id = ?1 AND p.created_at_ms >= ?2 AND (?3 IS NULL OR u.id = ?3)
     AND (?4 IS NULL OR p.product = ?4 OR (?4 = 'collection_widget' AND ",
    mkoba_platform::widget_payments_sql!(),
    ")) AND (?5 IS NULL OR p.kind = ?5) AND (?6 IS NULL OR p.created_at_ms >= ?6)
     AND (?7 IS NULL OR p.created_at_ms < ?7)
     AND (?8 IS NULL OR (?8 = 'sandbox') = (p.environment = 'sandbox'))"
);
/// [`IN_SCOPE`] without the period's start (the callbacks' report takes their attempts').
const OF_SCOPE: &str = concat!(
    "u.developer_id = ?1 AND (?3 IS NULL OR u.id = ?3)
     AND (?4 IS NULL OR p.product = ?4 OR (?4 = 'collection_widget' AND ",
    mkoba_platform::widget_payments_sql!(),
    ")) AND (?5 IS NULL OR p.kind = ?5) AND (?6 IS NULL OR p.created_at_ms >= ?6)
     AND (?7 IS NULL OR p.created_at_ms < ?7)
     AND (?8 IS NULL OR (?8 = 'sandbox') = (p.environment = 'sandbox'))"
);

/// A report's scope as the parameters `?1` to `?8` of [`IN_SCOPE`] and [`OF_SCOPE`] (`?8`:
/// `sandbox` or `production`, the environments kept to).
fn scope_params(s: &ReportScope) -> Vec<Value> {
    let text = |t: Option<String>| t.map_or(Value::Null, Value::Text);
    vec![
        Value::Integer(s.developer_id),
        Value::Integer(s.from_ms),
        text(s.api_user.map(|u| u.to_string())),
        text(s.product.map(|p| p.as_str().to_owned())),
        text(s.kind.map(|k| k.as_str().to_owned())),
        s.since_ms.map_or(Value::Null, Value::Integer),
        s.until_ms.map_or(Value::Null, Value::Integer),
        text(s.environment.map(|e| e.as_str().to_owned())),
    ]
}

/// The order of the payments' pages: newest first, and among payments of the same
/// millisecond the last written first. Both terms are in the index of payments by API user
/// and time (whose entries end with the row's number), so over a developer's API users
/// SQLite reads each one's newest entries only until the page is full instead of sorting
/// every match: a million payments' first page in under a millisecond, not 0.7 s (a tie
/// broken by the reference id, which that index does not hold, sorted them all).
const PAGE_ORDER: &str = "p.created_at_ms DESC, p.id DESC";
/// [`PAGE_ORDER`] the other way (a page read backwards from where the next one starts).
const PAGE_ORDER_BACKWARDS: &str = "p.created_at_ms ASC, p.id ASC";

/// The WHERE clause and parameters of a payment filter (payments `p` joined to their API
/// user `u`).
fn filter_clause(f: &PaymentFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("u.developer_id = ?");
    let mut values = vec![Value::Integer(f.developer_id)];
    let mut add = |clause: &str, v: Vec<Value>| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        values.extend(v);
    };
    match f.product {
        Some(Product::CollectionWidget) => add(mkoba_platform::widget::WIDGET_PAYMENTS_SQL, vec![]),
        Some(p) => add("p.product = ?", vec![Value::Text(p.as_str().to_owned())]),
        None => {}
    }
    if let Some(k) = f.kind {
        add("p.kind = ?", vec![Value::Text(k.as_str().to_owned())]);
    }
    if let Some(s) = f.status {
        add("p.status = ?", vec![Value::Text(s.as_str().to_owned())]);
    }
    if let Some(party) = &f.party {
        add("instr(p.party_id, ?) > 0", vec![Value::Text(party.clone())]);
    }
    if let Some(r) = &f.reference {
        let v = Value::Text(r.clone());
        add(
            "(p.reference_id = ? OR p.external_id = ? OR p.financial_transaction_id = ?)",
            vec![v.clone(), v.clone(), v],
        );
    }
    if let Some(u) = f.api_user {
        add("p.api_user = ?", vec![Value::Text(u.to_string())]);
    }
    if let Some(from) = f.from_ms {
        add("p.created_at_ms >= ?", vec![Value::Integer(from)]);
    }
    if let Some(to) = f.to_ms {
        add("p.created_at_ms < ?", vec![Value::Integer(to)]);
    }
    if let Some(e) = f.environment {
        add(e.sql(), vec![]);
    }
    if let Some(key) = &f.older_than {
        match key.tie.parse::<i64>() {
            Ok(row) => add(
                AFTER_KEY.trim_start_matches(" AND "),
                vec![
                    Value::Integer(key.created_at_ms),
                    Value::Integer(key.created_at_ms),
                    Value::Integer(row),
                ],
            ),
            Err(_) => add("0", vec![]),
        }
    }
    if let Some(key) = &f.until {
        // Not older than the key in page order (a key of another store matches nothing).
        match key.tie.parse::<i64>() {
            Ok(row) => add(
                "(p.created_at_ms > ? OR (p.created_at_ms = ? AND p.id >= ?))",
                vec![
                    Value::Integer(key.created_at_ms),
                    Value::Integer(key.created_at_ms),
                    Value::Integer(row),
                ],
            ),
            Err(_) => add("0", vec![]),
        }
    }
    (sql, values)
}

/// A page or run of payments in page order ([`page_rows`]), and the keys of its ends: the
/// last one's when the limit was reached, the first one's when there is one.
type Rows = (Vec<Payment>, Option<PageKey>, Option<PageKey>);

/// At most `filter.limit` payments matching `clause` in page order: after `filter.after`,
/// or the nearest up to `filter.before` (read backwards, listed newest first all the same),
/// or from `offset` (at the newest when none is given). A key whose tie is not a row number
/// (another store's) matches nothing.
/// After a key in page order (older), as a clause on `p` with the key's time twice and its
/// row: the first term is the index's range (seek, no scan), the second breaks ties.
const AFTER_KEY: &str = " AND p.created_at_ms <= ? AND (p.created_at_ms < ? OR p.id < ?)";
/// Before a key in page order (newer), as [`AFTER_KEY`].
const BEFORE_KEY: &str = " AND p.created_at_ms >= ? AND (p.created_at_ms > ? OR p.id > ?)";

fn page_rows(
    c: &rusqlite::Connection,
    filter: &PaymentFilter,
    mut clause: String,
    mut values: Vec<Value>,
    offset: Option<u32>,
) -> rusqlite::Result<Rows> {
    for (key, range) in [(&filter.after, AFTER_KEY), (&filter.before, BEFORE_KEY)] {
        let Some(key) = key else { continue };
        let Ok(row) = key.tie.parse::<i64>() else {
            return Ok((Vec::new(), None, None));
        };
        clause.push_str(range);
        values.extend([
            Value::Integer(key.created_at_ms),
            Value::Integer(key.created_at_ms),
            Value::Integer(row),
        ]);
    }
    let limit = filter.limit.clamp(1, mkoba_platform::portal::PAGE_MAX);
    values.push(Value::Integer(i64::from(limit)));
    let skip = match offset {
        Some(n) => {
            values.push(Value::Integer(i64::from(n)));
            " OFFSET ?"
        }
        None => "",
    };
    let backwards = filter.before.is_some();
    let order = if backwards {
        PAGE_ORDER_BACKWARDS
    } else {
        PAGE_ORDER
    };
    let at = PAYMENT_COLUMNS.split(',').count();
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {}, p.id FROM payments p JOIN api_users u ON u.id = p.api_user
         WHERE {clause} ORDER BY {order} LIMIT ?{skip}",
        prefixed_payment_columns()
    ))?;
    let mut rows: Vec<(Payment, i64)> = stmt
        .query_map(params_from_iter(values.iter()), |r| {
            Ok((payment_row(r)?, r.get::<_, i64>(at)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if backwards {
        rows.reverse();
    }
    let key = |(p, row): &(Payment, i64)| PageKey {
        created_at_ms: p.created_at_ms,
        tie: row.to_string(),
    };
    let next = rows
        .last()
        .filter(|_| rows.len() == limit as usize)
        .map(key);
    let first = rows.first().map(key);
    Ok((rows.into_iter().map(|(p, _)| p).collect(), next, first))
}

fn prefixed_payment_columns() -> String {
    PAYMENT_COLUMNS
        .split(',')
        .map(|c| format!("p.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

// The sandbox login's query names developer 1.
const _: () = assert!(mkoba_platform::SANDBOX_DEVELOPER == 1);

/// A sign-in the banner prints: the e-mail `email_sql` finds and the password kept in
/// the `setting` row.
fn printed_login(
    c: &rusqlite::Connection,
    setting: &str,
    email_sql: &str,
) -> rusqlite::Result<Option<SandboxLogin>> {
    let password: Option<Vec<u8>> = c
        .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
        .query_row([setting], |r| r.get(0))
        .optional()?;
    let email: Option<String> = c
        .prepare_cached(email_sql)?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(match (email, password) {
        (Some(email), Some(p)) => Some(SandboxLogin {
            email,
            password: String::from_utf8_lossy(&p).into_owned(),
        }),
        _ => None,
    })
}

fn read_operators(c: &rusqlite::Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT developer_id, email FROM developer_accounts
         WHERE role = 'operator' AND status = 'active' ORDER BY developer_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn golive_row(r: &Row<'_>) -> rusqlite::Result<GoLiveRequest> {
    lite(rows::golive_request(&Lite(r)))
}

fn read_golive_requests(
    c: &rusqlite::Connection,
    f: &GoLiveFilter,
) -> rusqlite::Result<Vec<GoLiveRequest>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {GOLIVE_COLUMNS} FROM golive_requests
         WHERE (?1 IS NULL OR developer_id = ?1) AND (?2 IS NULL OR state = ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![f.developer_id, f.state.map(|s| s.as_str()), f.limit],
        golive_row,
    )?;
    rows.collect()
}

fn read_golive_request(
    c: &rusqlite::Connection,
    id: i64,
) -> rusqlite::Result<Option<GoLiveRequest>> {
    c.prepare_cached(&format!(
        "SELECT {GOLIVE_COLUMNS} FROM golive_requests WHERE id = ?1"
    ))?
    .query_row([id], golive_row)
    .optional()
}

impl PortalReader for SqliteReader {
    fn accounts(&self, f: &AccountFilter) -> Result<(Vec<DeveloperAccount>, u64), StoreError> {
        self.with(|c| {
            let pattern = f.email.as_ref().map(|e| {
                let escaped = e.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                format!("%{escaped}%")
            });
            let total: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM developer_accounts WHERE (?1 IS NULL OR email LIKE ?1 ESCAPE '\\')",
                )?
                .query_row([&pattern], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {DEVELOPER_COLUMNS} FROM developer_accounts
                 WHERE (?1 IS NULL OR email LIKE ?1 ESCAPE '\\')
                 ORDER BY developer_id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = stmt
                .query_map(params![pattern, f.limit, f.offset], developer_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn operator_login(&self) -> Result<Option<SandboxLogin>, StoreError> {
        self.with(|c| {
            printed_login(
                c,
                OPERATOR_PASSWORD,
                "SELECT email FROM developer_accounts WHERE role = 'operator' ORDER BY developer_id LIMIT 1",
            )
        })
    }

    fn golive_requests(&self, filter: &GoLiveFilter) -> Result<Vec<GoLiveRequest>, StoreError> {
        self.with(|c| read_golive_requests(c, filter))
    }

    fn golive_request(&self, id: i64) -> Result<Option<GoLiveRequest>, StoreError> {
        self.with(|c| read_golive_request(c, id))
    }

    fn developer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(DeveloperAccount, String)>, StoreError> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {DEVELOPER_COLUMNS}, password_hash FROM developer_accounts WHERE email = ?1"
            ))?
            .query_row([email], |r| Ok((developer_row(r)?, r.get(8)?)))
            .optional()
        })
    }

    fn developer(&self, id: i64) -> Result<Option<DeveloperAccount>, StoreError> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {DEVELOPER_COLUMNS} FROM developer_accounts WHERE developer_id = ?1"
            ))?
            .query_row([id], developer_row)
            .optional()
        })
    }

    fn developer_password_hash(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT password_hash FROM developer_accounts WHERE developer_id = ?1",
            )?
            .query_row([id], |r| r.get(0))
            .optional()
        })
    }

    fn mail(&self, f: &MailFilter) -> Result<Vec<Mail>, StoreError> {
        // One developer's mail goes through its index; only the operator's view of every
        // account (no developer) reads the table in id order.
        let account = if f.developer_id.is_some() {
            "developer_id = ?1"
        } else {
            "?1 IS NULL"
        };
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {MAIL_COLUMNS} FROM mailbox
                 WHERE {account} AND (?2 IS NULL OR recipient = ?2)
                   AND (?3 IS NULL OR channel = ?3) AND (?4 IS NULL OR kind = ?4)
                 ORDER BY id DESC LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    f.developer_id,
                    f.recipient,
                    f.channel.map(|c| c.as_str()),
                    f.kind.map(|k| k.as_str()),
                    f.limit
                ],
                mail_row,
            )?;
            rows.collect()
        })
    }

    fn phone_code(&self, developer_id: i64) -> Result<Option<PhoneCode>, StoreError> {
        self.with(|c| read_phone_code(c, developer_id))
    }

    fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT developer_id, csrf_token, expires_at_ms FROM portal_sessions WHERE id_hash = ?1",
            )?
            .query_row([&id_hash[..]], |r| {
                Ok(SessionRecord {
                    developer_id: r.get(0)?,
                    csrf_token: r.get(1)?,
                    expires_at_ms: r.get(2)?,
                })
            })
            .optional()
        })
    }

    fn sandbox_login(&self) -> Result<Option<SandboxLogin>, StoreError> {
        self.with(|c| {
            printed_login(
                c,
                SANDBOX_PASSWORD,
                "SELECT email FROM developer_accounts WHERE developer_id = 1",
            )
        })
    }

    fn api_users_of(&self, developer_id: i64, limit: u32) -> Result<Vec<ApiUser>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {API_USER_COLUMNS}
                 FROM api_users WHERE developer_id = ?1 ORDER BY created_at_ms DESC, id
                 LIMIT ?2"
            ))?;
            let found = stmt.query_map(params![developer_id, limit], |r| {
                lite(rows::api_user(&Lite(r)))
            })?;
            found.collect()
        })
    }

    fn api_keys_of(&self, api_user: &Uuid) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE api_user = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([api_user.to_string()], |r| {
                lite(rows::api_key_info(&Lite(r)))
            })?;
            rows.collect()
        })
    }

    fn payments_page(&self, filter: &PaymentFilter) -> Result<PaymentPage, StoreError> {
        let (clause, values) = filter_clause(filter);
        self.with(|c| {
            let total: i64 = c
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM payments p JOIN api_users u ON u.id = p.api_user WHERE {clause}"
                ))?
                .query_row(params_from_iter(values.iter()), |r| r.get(0))?;
            let offset =
                (filter.after.is_none() && filter.before.is_none()).then_some(filter.offset);
            let (payments, next, first) = page_rows(c, filter, clause, values, offset)?;
            Ok(PaymentPage {
                payments,
                total: total.max(0) as u64,
                next,
                first,
            })
        })
    }

    fn window_end(&self, filter: &PaymentFilter, n: u32) -> Result<Option<PageKey>, StoreError> {
        let (clause, mut values) = filter_clause(&filter.range());
        values.push(Value::Integer(i64::from(n.max(1)) - 1));
        self.with(|c| {
            // Read in the index of payments by API user and time alone.
            c.prepare_cached(&format!(
                "SELECT p.created_at_ms, p.id FROM payments p JOIN api_users u ON u.id = p.api_user
                 WHERE {clause} ORDER BY {PAGE_ORDER} LIMIT 1 OFFSET ?"
            ))?
            .query_row(params_from_iter(values.iter()), |r| {
                Ok(PageKey {
                    created_at_ms: r.get(0)?,
                    tie: r.get::<_, i64>(1)?.to_string(),
                })
            })
            .optional()
        })
    }

    fn payments_after(
        &self,
        filter: &PaymentFilter,
    ) -> Result<(Vec<Payment>, Option<PageKey>), StoreError> {
        let (clause, values) = filter_clause(filter);
        self.with(|c| {
            let (payments, next, _) = page_rows(c, filter, clause, values, None)?;
            Ok((payments, next))
        })
    }

    fn payment_counts(
        &self,
        developer_id: i64,
        since_ms: Option<i64>,
    ) -> Result<Vec<KindCount>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT p.kind, p.status, COUNT(*),
                        CASE WHEN ",
                mkoba_platform::widget_payments_sql!(),
                " THEN 'collection_widget' ELSE p.product END AS of_product
                 FROM payments p JOIN api_users u ON u.id = p.api_user
                 WHERE u.developer_id = ?1 AND (?2 IS NULL OR p.created_at_ms >= ?2)
                   AND p.environment = 'sandbox'
                 GROUP BY of_product, p.kind, p.status"
            ))?;
            let rows = stmt.query_map(params![developer_id, since_ms], |r| {
                lite(rows::kind_count(&Lite(r)))
            })?;
            rows.collect()
        })
    }

    fn payment_stats(
        &self,
        scope: &ReportScope,
        bucket_ms: i64,
    ) -> Result<Vec<StatsRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT (p.created_at_ms - ?2) / ?9 AS bucket, p.product, p.status, p.currency,
                        COUNT(*), SUM(p.amount_minor), p.kind
                 FROM payments p JOIN api_users u ON u.id = p.api_user
                 WHERE {IN_SCOPE}
                 GROUP BY bucket, p.product, p.status, p.currency, p.kind
                 ORDER BY bucket"
            ))?;
            let mut values = scope_params(scope);
            values.push(Value::Integer(bucket_ms));
            let rows = stmt.query_map(params_from_iter(values.iter()), |r| {
                lite(rows::stats_row(&Lite(r)))
            })?;
            rows.collect()
        })
    }

    fn report_start(&self, scope: &ReportScope, most: u64) -> Result<Option<i64>, StoreError> {
        let newest = i64::try_from(most.max(1) - 1).unwrap_or(i64::MAX);
        self.with(|c| {
            // The most-th newest and the one after it, if there is one: read in the index
            // of payments by API user and time alone.
            let times = c
                .prepare_cached(
                    "SELECT p.created_at_ms FROM payments p JOIN api_users u ON u.id = p.api_user
                     WHERE u.developer_id = ?1 AND p.created_at_ms >= ?2
                       AND (?3 IS NULL OR u.id = ?3) AND (?5 IS NULL OR p.created_at_ms < ?5)
                     ORDER BY p.created_at_ms DESC LIMIT 2 OFFSET ?4",
                )?
                .query_map(
                    params![
                        scope.developer_id,
                        scope.from_ms,
                        scope.api_user.map(|u| u.to_string()),
                        newest,
                        scope.until_ms
                    ],
                    |r| r.get::<_, i64>(0),
                )?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok((times.len() == 2).then(|| times[0]))
        })
    }

    fn latencies(&self, scope: &ReportScope) -> Result<Latencies, StoreError> {
        let scoped = scope_params(scope);
        self.with(|c| {
            let mut settle = c.prepare_cached(&format!(
                "SELECT p.settled_at_ms - p.created_at_ms AS l
                 FROM payments p JOIN api_users u ON u.id = p.api_user
                 WHERE {IN_SCOPE} AND p.settled_at_ms IS NOT NULL
                 ORDER BY l LIMIT {LATENCY_SAMPLES}"
            ))?;
            let settlement_ms = settle
                .query_map(params_from_iter(scoped.iter()), |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            // Round trips: attempts that got an answer (one refused before any, a bad host
            // name or a refused connection, took no round trip and counted as 0 ms).
            // First attempts are on their outbox rows, the others in `callback_attempts`.
            // Each arm joins on its own: the view `callback_log` joined to the payments is
            // read whole (SQLite's plan scans both tables), this by index.
            // Past the bound, the newest attempts (the fastest were kept, and the
            // percentiles came out low).
            let mut callbacks = c.prepare_cached(&format!(
                "SELECT l FROM (SELECT l FROM (
                     SELECT o.first_latency_ms AS l, o.first_at_ms AS at FROM outbox o
                     JOIN payments p ON p.id = o.payment
                     JOIN api_users u ON u.id = p.api_user
                     WHERE {OF_SCOPE} AND o.first_at_ms >= ?2 AND o.first_status_code IS NOT NULL
                     UNION ALL
                     SELECT a.latency_ms, a.at_ms FROM callback_attempts a
                     JOIN outbox o ON o.id = a.outbox_id
                     JOIN payments p ON p.id = o.payment
                     JOIN api_users u ON u.id = p.api_user
                     WHERE {OF_SCOPE} AND a.at_ms >= ?2 AND a.status_code IS NOT NULL
                 ) ORDER BY at DESC LIMIT {LATENCY_SAMPLES}) ORDER BY l"
            ))?;
            let callback_ms = callbacks
                .query_map(params_from_iter(scoped.iter()), |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(Latencies {
                settlement_ms,
                callback_ms,
            })
        })
    }

    fn outbox_of(&self, reference_id: &Uuid) -> Result<Vec<OutboxRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OUTBOX_RECORD_COLUMNS} FROM outbox WHERE payment = {} ORDER BY id",
                crate::refs::KEY_OF
            ))?;
            let rows = stmt.query_map(self.recent.key_params(reference_id), |r| {
                lite(rows::outbox_record(&Lite(r)))
            })?;
            rows.collect()
        })
    }

    fn waiting_payments(
        &self,
        developer_id: i64,
        msisdn: Option<&str>,
    ) -> Result<Vec<mkoba_platform::model::Payment>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM payments p JOIN api_users u ON u.id = p.api_user
                 WHERE u.developer_id = ?1 AND p.status = 'PENDING' AND p.party_type = 'MSISDN'
                   AND p.kind IN ('requesttopay', 'requesttowithdraw', 'invoice', 'preapproval', 'c2b', 'mandate')
                   AND (?2 IS NULL OR p.party_id = ?2)
                 ORDER BY p.created_at_ms, p.reference_id LIMIT 1000",
                prefixed_payment_columns()
            ))?;
            let rows = stmt.query_map(params![developer_id, msisdn], payment_row)?;
            rows.collect()
        })
    }

    fn transfer_times(&self, reference_id: &Uuid) -> Result<Vec<(u64, i64, i64)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, created_at_ms, updated_at_ms FROM transfers WHERE payment = {} ORDER BY id",
                crate::refs::KEY_OF
            ))?;
            let rows = stmt.query_map(self.recent.key_params(reference_id), |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })?;
            rows.collect()
        })
    }

    fn widget_settings(&self, api_user: &Uuid) -> Result<Option<WidgetSettings>, StoreError> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {WIDGET_SETTINGS_COLUMNS} FROM widget_settings WHERE api_user = ?1"
            ))?
            .query_row([api_user.to_string()], widget_settings_row)
            .optional()
        })
    }
}
