//! The developer portal's tables: accounts, sessions and the virtual phone setting, plus
//! the per-developer listings and aggregates its pages read; the API users' Collection
//! Widget settings; the account journey's status, phone codes and the mailbox (SQLite's
//! `portal.rs`).

use mkoba_platform::accounts::{AccountRecord, Mail, MailFilter, PhoneCode};
use mkoba_platform::golive::{GoLiveFilter, GoLiveRequest};
use mkoba_platform::model::{ApiUser, Payment, Product, WidgetSettings};
use mkoba_platform::portal::{
    AccountFilter, ApiKeyInfo, DeveloperAccount, KindCount, LATENCY_SAMPLES, Latencies,
    OutboxRecord, PageKey, PaymentFilter, PaymentPage, PortalJournal, PortalReader, PortalWrite,
    ReportScope, SandboxLogin, SessionRecord, StatsRow,
};
use mkoba_platform::store::StoreError;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::conn::{Conn, Op, Param, Result, op, refs};
use crate::{Pg, PgJournal, PgReader, api_user_row, col, exists, payments};
use mkoba_platform::rows::{
    self, ACCOUNT_RECORD_COLUMNS, API_KEY_COLUMNS, API_USER_COLUMNS, DEVELOPER_COLUMNS,
    GOLIVE_COLUMNS, MAIL_COLUMNS, OUTBOX_RECORD_COLUMNS, PAYMENT_COLUMNS, PHONE_CODE_COLUMNS,
    WIDGET_SETTINGS_COLUMNS,
};

const SANDBOX_PASSWORD: &str = "sandbox_portal_password";
const OPERATOR_PASSWORD: &str = "operator_portal_password";

pub(crate) fn ops(writes: &[PortalWrite], ops: &mut Vec<Op>) {
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
            } => ops.push(op!(
                "INSERT INTO developer_accounts (developer_id, email, name, password_hash, created_at_ms, status, role)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                *id,
                email.clone(),
                name.clone(),
                password_hash.clone(),
                *created_at_ms,
                status.as_str(),
                role.as_str()
            )),
            PortalWrite::OperatorLogin { password } => ops.push(op!(
                "INSERT INTO settings (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                OPERATOR_PASSWORD,
                password.as_bytes().to_vec()
            )),
            PortalWrite::CreateGoLive {
                request: r,
                created_at_ms,
            } => ops.push(op!(
                "INSERT INTO golive_requests (developer_id, created_at_ms, state, company, contact,
                     website, use_case, markets, products, report)
                 VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9)",
                r.developer_id,
                *created_at_ms,
                r.company.clone(),
                r.contact.clone(),
                r.website.clone(),
                r.use_case.clone(),
                r.markets.join(" "),
                r.products.join(" "),
                r.report_json.clone()
            )),
            PortalWrite::DecideGoLive {
                id,
                state,
                decided_at_ms,
                decided_by,
                comment,
            } => ops.push(op!(
                "UPDATE golive_requests SET state = $2, decided_at_ms = $3, decided_by = $4, comment = $5
                 WHERE id = $1",
                *id,
                state.as_str(),
                *decided_at_ms,
                *decided_by,
                comment.clone()
            )),
            PortalWrite::UpdateAccount(a) => ops.extend([
                // A printed password (the banner's and `mkoba credentials`') no longer
                // signs in once its account's password changes: it goes.
                op!(
                    "DELETE FROM settings
                     WHERE name = CASE WHEN $1::BIGINT = 1 THEN 'sandbox_portal_password'
                         WHEN $1::BIGINT = (SELECT MIN(developer_id) FROM developer_accounts WHERE role = 'operator')
                         THEN 'operator_portal_password' END
                       AND EXISTS (SELECT 1 FROM developer_accounts
                                   WHERE developer_id = $1::BIGINT AND password_hash <> $2)",
                    a.developer_id,
                    a.password_hash.clone()
                ),
                op!(
                "UPDATE developer_accounts SET email = $2, name = $3, password_hash = $4, status = $5, phone = $6
                 WHERE developer_id = $1",
                a.developer_id,
                a.email.clone(),
                a.name.clone(),
                a.password_hash.clone(),
                a.status.as_str(),
                a.phone.clone()
            ),
            ]),
            PortalWrite::DeleteSessionsOf {
                developer_id,
                except,
            } => ops.push(op!(
                "DELETE FROM portal_sessions WHERE developer_id = $1 AND ($2::BYTEA IS NULL OR id_hash <> $2)",
                *developer_id,
                except.map(|h| h.to_vec())
            )),
            PortalWrite::RevokeDeveloperKeys {
                developer_id,
                at_ms,
            } => ops.push(op!(
                "UPDATE api_keys SET revoked_at_ms = $2
                 WHERE revoked_at_ms IS NULL
                   AND api_user IN (SELECT id FROM api_users WHERE developer_id = $1)",
                *developer_id,
                *at_ms
            )),
            PortalWrite::SetPhoneCode(c) => ops.push(op!(
                "INSERT INTO phone_codes (developer_id, msisdn, code_mac, sent_at_ms, expires_at_ms, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (developer_id) DO UPDATE SET msisdn = excluded.msisdn,
                     code_mac = excluded.code_mac, sent_at_ms = excluded.sent_at_ms,
                     expires_at_ms = excluded.expires_at_ms, attempts = excluded.attempts",
                c.developer_id,
                c.msisdn.clone(),
                c.code_mac.to_vec(),
                c.sent_at_ms,
                c.expires_at_ms,
                i64::from(c.attempts)
            )),
            PortalWrite::DeletePhoneCode { developer_id } => ops.push(op!(
                "DELETE FROM phone_codes WHERE developer_id = $1",
                *developer_id
            )),
            PortalWrite::QueueMail {
                mail,
                created_at_ms,
                state,
            } => ops.push(op!(
                "INSERT INTO mailbox (developer_id, channel, kind, recipient, subject, body,
                     created_at_ms, state, attempts, next_attempt_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $7)",
                mail.developer_id,
                mail.channel.as_str(),
                mail.kind.as_str(),
                mail.recipient.clone(),
                mail.subject.clone(),
                mail.body.clone(),
                *created_at_ms,
                state.as_str()
            )),
            PortalWrite::UpdateMail {
                id,
                state,
                attempts,
                next_attempt_at_ms,
                last_error,
                sent_at_ms,
            } => ops.push(op!(
                "UPDATE mailbox SET state = $2, attempts = $3, next_attempt_at_ms = $4,
                     last_error = $5, sent_at_ms = $6
                 WHERE id = $1",
                *id,
                state.as_str(),
                i64::from(*attempts),
                *next_attempt_at_ms,
                last_error.clone(),
                *sent_at_ms
            )),
            PortalWrite::SandboxLogin {
                login,
                password_hash,
            } => {
                ops.push(op!(
                    "INSERT INTO developer_accounts (developer_id, email, name, password_hash, created_at_ms)
                     VALUES ($1, $2, 'Sandbox developer', $3, $4)",
                    mkoba_platform::SANDBOX_DEVELOPER,
                    login.email.clone(),
                    password_hash.clone(),
                    mkoba_platform::clock::system_now_ms()
                ));
                ops.push(op!(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    SANDBOX_PASSWORD,
                    login.password.as_bytes().to_vec()
                ));
            }
            PortalWrite::CreateSession {
                id_hash,
                developer_id,
                csrf_token,
                created_at_ms,
                expires_at_ms,
            } => {
                ops.push(op!(
                    "DELETE FROM portal_sessions WHERE expires_at_ms < $1",
                    *created_at_ms
                ));
                ops.push(op!(
                    "INSERT INTO portal_sessions (id_hash, developer_id, csrf_token, created_at_ms, expires_at_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                    id_hash.to_vec(),
                    *developer_id,
                    csrf_token.clone(),
                    *created_at_ms,
                    *expires_at_ms
                ));
            }
            PortalWrite::DeleteSession { id_hash } => ops.push(op!(
                "DELETE FROM portal_sessions WHERE id_hash = $1",
                id_hash.to_vec()
            )),
            PortalWrite::RevokeApiKey {
                key_id,
                api_user,
                at_ms,
            } => ops.push(op!(
                "UPDATE api_keys SET revoked_at_ms = $3
                 WHERE id = $1 AND api_user = $2 AND revoked_at_ms IS NULL",
                *key_id,
                api_user.to_string(),
                *at_ms
            )),
            PortalWrite::SetApprovalMode { developer_id, on } => ops.push(op!(
                "UPDATE developer_accounts SET approval_mode = $2 WHERE developer_id = $1",
                *developer_id,
                *on
            )),
            PortalWrite::SetWidgetSettings { api_user, settings } => ops.push(op!(
                "INSERT INTO widget_settings (api_user, allowed_origins, callback_url, updated_at_ms)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (api_user) DO UPDATE SET allowed_origins = excluded.allowed_origins,
                     callback_url = excluded.callback_url, updated_at_ms = excluded.updated_at_ms",
                api_user.to_string(),
                rows::origins_json(settings.allowed_origins.as_deref()),
                settings.callback_url.clone(),
                settings.updated_at_ms
            )),
            PortalWrite::UseAuthRequest {
                jti,
                api_user,
                used_at_ms,
                keep_until_ms,
            } => {
                ops.push(op!(
                    "DELETE FROM used_auth_requests WHERE keep_until_ms < $1",
                    *used_at_ms
                ));
                ops.push(op!(
                    "INSERT INTO used_auth_requests (jti, api_user, used_at_ms, keep_until_ms)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
                    jti.clone(),
                    api_user.to_string(),
                    *used_at_ms,
                    *keep_until_ms
                ));
            }
        }
    }
}

fn widget_settings_row(r: &Row) -> Result<WidgetSettings> {
    Ok(rows::widget_settings(&Pg(r))?)
}

// The sandbox login's query names developer 1.
const _: () = assert!(mkoba_platform::SANDBOX_DEVELOPER == 1);

/// A sign-in the banner prints: the e-mail `email_sql` finds and the password kept in
/// the `setting` row.
fn printed_login(c: &mut Conn, setting: &str, email_sql: &str) -> Result<Option<SandboxLogin>> {
    let password: Option<Vec<u8>> = c
        .query_opt("SELECT value FROM settings WHERE name = $1", &[&setting])?
        .map(|r| col(&r, 0))
        .transpose()?;
    let email: Option<String> = c
        .query_opt(email_sql, &[])?
        .map(|r| col(&r, 0))
        .transpose()?;
    Ok(match (email, password) {
        (Some(email), Some(p)) => Some(SandboxLogin {
            email,
            password: String::from_utf8_lossy(&p).into_owned(),
        }),
        _ => None,
    })
}

fn read_operators(c: &mut Conn) -> Result<Vec<(i64, String)>> {
    c.query(
        "SELECT developer_id, email FROM developer_accounts
         WHERE role = 'operator' AND status = 'active' ORDER BY developer_id",
        &[],
    )?
    .iter()
    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
    .collect()
}

fn golive_row(r: &Row) -> Result<GoLiveRequest> {
    Ok(rows::golive_request(&Pg(r))?)
}

fn read_golive_requests(c: &mut Conn, f: &GoLiveFilter) -> Result<Vec<GoLiveRequest>> {
    let state = f.state.map(|s| s.as_str());
    c.query(
        &format!(
            "SELECT {GOLIVE_COLUMNS} FROM golive_requests
             WHERE ($1::BIGINT IS NULL OR developer_id = $1) AND ($2::TEXT IS NULL OR state = $2)
             ORDER BY id DESC LIMIT $3"
        ),
        &[&f.developer_id, &state, &i64::from(f.limit)],
    )?
    .iter()
    .map(golive_row)
    .collect()
}

fn read_golive_request(c: &mut Conn, id: i64) -> Result<Option<GoLiveRequest>> {
    c.query_opt(
        &format!("SELECT {GOLIVE_COLUMNS} FROM golive_requests WHERE id = $1"),
        &[&id],
    )?
    .as_ref()
    .map(golive_row)
    .transpose()
}

impl PortalJournal for PgJournal {
    fn operators(&mut self) -> std::result::Result<Vec<(i64, String)>, StoreError> {
        self.worker.run_again_if_closed(read_operators)
    }

    fn golive_requests(
        &mut self,
        filter: &GoLiveFilter,
    ) -> std::result::Result<Vec<GoLiveRequest>, StoreError> {
        let filter = filter.clone();
        self.worker
            .run_again_if_closed(move |c| read_golive_requests(c, &filter))
    }

    fn golive_request(
        &mut self,
        id: i64,
    ) -> std::result::Result<Option<GoLiveRequest>, StoreError> {
        self.worker
            .run_again_if_closed(move |c| read_golive_request(c, id))
    }

    fn auth_request_used(&mut self, jti: &str) -> std::result::Result<bool, StoreError> {
        let jti = jti.to_owned();
        self.worker.run_again_if_closed(move |c| {
            exists(c, "SELECT 1 FROM used_auth_requests WHERE jti = $1", &jti)
        })
    }

    fn developer_email_taken(&mut self, email: &str) -> std::result::Result<bool, StoreError> {
        let email = email.to_owned();
        self.worker.run_again_if_closed(move |c| {
            exists(
                c,
                "SELECT 1 FROM developer_accounts WHERE email = $1",
                &email,
            )
        })
    }

    fn max_developer_id(&mut self) -> std::result::Result<i64, StoreError> {
        self.worker.run_again_if_closed(|c| {
            col(
                &c.query_one("SELECT COALESCE(MAX(id), 0) FROM developers", &[])?,
                0,
            )
        })
    }

    fn api_user_developer(&mut self, id: &Uuid) -> std::result::Result<Option<i64>, StoreError> {
        let id = id.to_string();
        self.worker.run_again_if_closed(move |c| {
            c.query_opt("SELECT developer_id FROM api_users WHERE id = $1", &[&id])?
                .map(|r| col(&r, 0))
                .transpose()
        })
    }

    fn approval_developers(&mut self) -> std::result::Result<Vec<i64>, StoreError> {
        self.worker.run_again_if_closed(|c| {
            c.query(
                "SELECT developer_id FROM developer_accounts WHERE approval_mode",
                &[],
            )?
            .iter()
            .map(|r| col(r, 0))
            .collect()
        })
    }

    fn sandbox_login_exists(&mut self) -> std::result::Result<bool, StoreError> {
        self.worker.run_again_if_closed(|c| {
            exists(
                c,
                "SELECT 1 FROM developer_accounts WHERE developer_id = $1",
                &mkoba_platform::SANDBOX_DEVELOPER,
            )
        })
    }

    fn account(
        &mut self,
        developer_id: i64,
    ) -> std::result::Result<Option<AccountRecord>, StoreError> {
        self.worker.run_again_if_closed(move |c| {
            c.query_opt(
                &format!(
                    "SELECT {ACCOUNT_RECORD_COLUMNS} FROM developer_accounts WHERE developer_id = $1"
                ),
                &[&developer_id],
            )?
            .as_ref()
            .map(account_row)
            .transpose()
        })
    }

    fn phone_code(
        &mut self,
        developer_id: i64,
    ) -> std::result::Result<Option<PhoneCode>, StoreError> {
        self.worker
            .run_again_if_closed(move |c| read_phone_code(c, developer_id))
    }

    fn due_mail(&mut self, now_ms: i64, limit: u32) -> std::result::Result<Vec<Mail>, StoreError> {
        let limit = i64::from(limit);
        self.worker.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT {MAIL_COLUMNS} FROM mailbox
                     WHERE state IN ('queued', 'sending') AND next_attempt_at_ms <= $1
                     ORDER BY next_attempt_at_ms, id LIMIT $2"
                ),
                &[&now_ms, &limit],
            )?
            .iter()
            .map(mail_row)
            .collect()
        })
    }
}

fn account_row(r: &Row) -> Result<AccountRecord> {
    Ok(rows::account_record(&Pg(r))?)
}

fn read_phone_code(c: &mut crate::conn::Conn, developer_id: i64) -> Result<Option<PhoneCode>> {
    c.query_opt(
        &format!("SELECT {PHONE_CODE_COLUMNS} FROM phone_codes WHERE developer_id = $1"),
        &[&developer_id],
    )?
    .map(|r| Ok(rows::phone_code(&Pg(&r))?))
    .transpose()
}

fn mail_row(r: &Row) -> Result<Mail> {
    Ok(rows::mail(&Pg(r))?)
}

fn developer_row(r: &Row) -> Result<DeveloperAccount> {
    Ok(rows::developer(&Pg(r))?)
}

/// A report's payments, from [`Scope`] (`$1` to `$6`): the developer's, created since
/// `$2` (and since `$6` when given), of one API user (`$3`), API (`$4`) and operation (`$5`)
/// when given (the Collection Widget's API: the widget's invoices).
const IN_SCOPE: &str = concat!(
    "u.developer_id = $1 AND p.created_at_ms >= $2
     AND ($3::TEXT IS NULL OR u.id = $3) AND ($4::TEXT IS NULL OR p.product = $4
       OR ($4 = 'collection_widget' AND ",
    mkoba_platform::widget_payments_sql!(),
    ")) AND ($5::TEXT IS NULL OR p.kind = $5) AND ($6::BIGINT IS NULL OR p.created_at_ms >= $6)
     AND ($7::BIGINT IS NULL OR p.created_at_ms < $7)
     AND ($8::TEXT IS NULL OR ($8 = 'sandbox') = (p.environment = 'sandbox'))"
);
/// [`IN_SCOPE`] without the period's start (the callbacks' report takes their attempts').
const OF_SCOPE: &str = concat!(
    "u.developer_id = $1 AND ($3::TEXT IS NULL OR u.id = $3)
     AND ($4::TEXT IS NULL OR p.product = $4 OR ($4 = 'collection_widget' AND ",
    mkoba_platform::widget_payments_sql!(),
    ")) AND ($5::TEXT IS NULL OR p.kind = $5) AND ($6::BIGINT IS NULL OR p.created_at_ms >= $6)
     AND ($7::BIGINT IS NULL OR p.created_at_ms < $7)
     AND ($8::TEXT IS NULL OR ($8 = 'sandbox') = (p.environment = 'sandbox'))"
);

/// A report's payments `p` with their API users `u` (for [`IN_SCOPE`]): each API user's
/// payments since the period's start (`$2`, and `$6` when given), read as a range of the
/// index of payments by API user and time. `OFFSET 0` keeps PostgreSQL from folding the
/// subquery into a join, which it planned as a scan of every payment: at a million payments
/// the counts per slot took 175–422 ms that way, 61–118 ms this way (in `psql`).
const SCOPE_PAYMENTS: &str = "api_users u CROSS JOIN LATERAL (
         SELECT * FROM payments p WHERE p.api_user = u.id COLLATE \"default\"
           AND p.created_at_ms >= $2 AND ($6::BIGINT IS NULL OR p.created_at_ms >= $6)
         OFFSET 0
     ) p";

/// A [`ReportScope`] as the statements' parameters.
struct Scope {
    developer_id: i64,
    from_ms: i64,
    api_user: Option<String>,
    product: Option<String>,
    kind: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    environment: Option<String>,
}

impl Scope {
    fn of(s: &ReportScope) -> Scope {
        Scope {
            developer_id: s.developer_id,
            from_ms: s.from_ms,
            api_user: s.api_user.map(|u| u.to_string()),
            product: s.product.map(|p| p.as_str().to_owned()),
            kind: s.kind.map(|k| k.as_str().to_owned()),
            since_ms: s.since_ms,
            until_ms: s.until_ms,
            environment: s.environment.map(|e| e.as_str().to_owned()),
        }
    }

    /// The parameters `$1` to `$8` of [`IN_SCOPE`] and [`OF_SCOPE`].
    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 8] {
        [
            &self.developer_id,
            &self.from_ms,
            &self.api_user,
            &self.product,
            &self.kind,
            &self.since_ms,
            &self.until_ms,
            &self.environment,
        ]
    }
}

/// The order of the payments' pages: newest first, and among payments of the same
/// millisecond by reference id.
const PAGE_ORDER: &str = "p.created_at_ms DESC, p.reference_id";
/// [`PAGE_ORDER`] the other way.
const PAGE_ORDER_BACKWARDS: &str = "p.created_at_ms ASC, p.reference_id DESC";

/// The join of payments `p` to their API users `u`. The API users' ids are `COLLATE "C"`,
/// the payments' `api_user` is in the database's default collation: compared as they are,
/// the two keep PostgreSQL from the index of payments by API user and time (it read every
/// payment instead: 0.75 s for a page of a million in `psql`); with the index's collation
/// named, the index serves.
const USER_OF_PAYMENT: &str = "api_users u ON p.api_user = u.id COLLATE \"default\"";

/// The newest `$limit` payments that `clause` (of [`filter_clause`]) matches, in page order,
/// having read at most `$each` of each of the developer's API users. Each API user's are
/// read newest first in the index of payments by API user and time, only as far as needed,
/// and only those are sorted: in one query over all of them, PostgreSQL cannot merge the
/// API users' index orders and sorts every match (0.5 s for a page of a million payments;
/// 41 s for an export of 100,000 read in runs, each sorting everything older).
///
/// `order` is [`PAGE_ORDER`], or [`PAGE_ORDER_BACKWARDS`] for the oldest first (a page read
/// backwards from where the next one starts).
fn newest_of_each_user(clause: &str, each: usize, limit: usize, order: &str) -> String {
    format!(
        "SELECT {} FROM api_users u CROSS JOIN LATERAL (
             SELECT * FROM payments p
             WHERE p.api_user = u.id COLLATE \"default\" AND {clause}
             ORDER BY {order} LIMIT ${each}
         ) p
         WHERE u.developer_id = $1 ORDER BY {order} LIMIT ${limit}",
        rows::prefixed(PAYMENT_COLUMNS, "p")
    )
}

/// The query of at most `filter.limit` payments in page order (its parameters, and the
/// limit): after `filter.after`, or the nearest up to `filter.before` (oldest first: the
/// caller turns them round), or from `offset` (at the newest when none is given).
/// After a key in page order (older), with `$t` its time and `$r` its reference id: the
/// first term is the index's range, the second breaks ties as the order does.
const AFTER_KEY: &str =
    " AND p.created_at_ms <= $t AND (p.created_at_ms < $t OR p.reference_id > $r)";
/// Before a key in page order (newer), as [`AFTER_KEY`].
const BEFORE_KEY: &str =
    " AND p.created_at_ms >= $t AND (p.created_at_ms > $t OR p.reference_id < $r)";

/// `range` ([`AFTER_KEY`] or [`BEFORE_KEY`]) of `key`, added to a clause and its values.
fn key_range(clause: &mut String, values: &mut Vec<Param>, range: &str, key: &PageKey) {
    let n = values.len();
    clause.push_str(
        &range
            .replace("$t", &format!("${}", n + 1))
            .replace("$r", &format!("${}", n + 2)),
    );
    values.push(Box::new(key.created_at_ms));
    values.push(Box::new(key.tie.clone()));
}

fn page_query(filter: &PaymentFilter, offset: Option<u32>) -> (String, Vec<Param>, u32) {
    let (mut clause, mut values) = filter_clause(filter);
    for (key, range) in [(&filter.after, AFTER_KEY), (&filter.before, BEFORE_KEY)] {
        if let Some(key) = key {
            key_range(&mut clause, &mut values, range, key);
        }
    }
    let order = if filter.before.is_some() {
        PAGE_ORDER_BACKWARDS
    } else {
        PAGE_ORDER
    };
    let limit = filter.limit.clamp(1, mkoba_platform::portal::PAGE_MAX);
    let n = values.len();
    let sql = match offset {
        // Each API user's newest `offset + limit`, then the page among them.
        Some(offset) => {
            values.extend::<[Param; 3]>([
                Box::new(i64::from(offset) + i64::from(limit)),
                Box::new(i64::from(limit)),
                Box::new(i64::from(offset)),
            ]);
            format!(
                "{} OFFSET ${}",
                newest_of_each_user(&clause, n + 1, n + 2, order),
                n + 3
            )
        }
        None => {
            values.push(Box::new(i64::from(limit)));
            newest_of_each_user(&clause, n + 1, n + 1, order)
        }
    };
    (sql, values, limit)
}

/// The key of a payment, for a page that starts or ends with it.
fn key_of(p: &Payment) -> PageKey {
    PageKey {
        created_at_ms: p.created_at_ms,
        tie: p.reference_id.to_string(),
    }
}

/// The key to go on from after `payments`, when they fill `limit` (there may be more).
fn next_key(payments: &[Payment], limit: u32) -> Option<PageKey> {
    payments
        .last()
        .filter(|_| payments.len() == limit as usize)
        .map(key_of)
}

/// The WHERE clause and parameters of a payment filter (payments `p` joined to their API
/// user `u`), with placeholders `$1…`.
fn filter_clause(f: &PaymentFilter) -> (String, Vec<Param>) {
    let mut sql = String::from("u.developer_id = $1");
    let mut values: Vec<Param> = vec![Box::new(f.developer_id)];
    let mut add = |clause: &str, v: Param| {
        values.push(v);
        sql.push_str(" AND ");
        // Each clause takes one parameter, named `$` in it (a reference filter names it
        // three times).
        sql.push_str(&clause.replace('$', &format!("${}", values.len())));
    };
    match f.product {
        Some(Product::CollectionWidget) => {} // below: it takes no parameter
        Some(p) => add("p.product = $", Box::new(p.as_str())),
        None => {}
    }
    if let Some(k) = f.kind {
        add("p.kind = $", Box::new(k.as_str()));
    }
    if let Some(s) = f.status {
        add("p.status = $", Box::new(s.as_str()));
    }
    if let Some(party) = &f.party {
        add("strpos(p.party_id, $) > 0", Box::new(party.clone()));
    }
    if let Some(r) = &f.reference {
        add(
            "(p.reference_id = $ OR p.external_id = $ OR p.financial_transaction_id = $)",
            Box::new(r.clone()),
        );
    }
    if let Some(u) = f.api_user {
        add("p.api_user = $", Box::new(u.to_string()));
    }
    if let Some(from) = f.from_ms {
        add("p.created_at_ms >= $", Box::new(from));
    }
    if let Some(to) = f.to_ms {
        add("p.created_at_ms < $", Box::new(to));
    }
    if let Some(e) = f.environment {
        sql.push_str(" AND ");
        sql.push_str(e.sql());
    }
    if f.product == Some(Product::CollectionWidget) {
        sql.push_str(" AND ");
        sql.push_str(mkoba_platform::widget::WIDGET_PAYMENTS_SQL);
    }
    if let Some(key) = &f.older_than {
        key_range(&mut sql, &mut values, AFTER_KEY, key);
    }
    if let Some(key) = &f.until {
        // Not older than the key in page order.
        let n = values.len();
        sql.push_str(&format!(
            " AND p.created_at_ms >= ${0} AND (p.created_at_ms > ${0} OR p.reference_id <= ${1})",
            n + 1,
            n + 2
        ));
        values.push(Box::new(key.created_at_ms));
        values.push(Box::new(key.tie.clone()));
    }
    (sql, values)
}

impl PortalReader for PgReader {
    fn accounts(
        &self,
        f: &AccountFilter,
    ) -> std::result::Result<(Vec<DeveloperAccount>, u64), StoreError> {
        let pattern = f.email.as_ref().map(|e| {
            let escaped = e
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let (limit, offset) = (i64::from(f.limit), i64::from(f.offset));
        self.pool.run_again_if_closed(move |c| {
            let total: i64 = col(
                &c.query_one(
                    "SELECT COUNT(*) FROM developer_accounts WHERE ($1::TEXT IS NULL OR email LIKE $1)",
                    &[&pattern],
                )?,
                0,
            )?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {DEVELOPER_COLUMNS} FROM developer_accounts
                         WHERE ($1::TEXT IS NULL OR email LIKE $1)
                         ORDER BY developer_id DESC LIMIT $2 OFFSET $3"
                    ),
                    &[&pattern, &limit, &offset],
                )?
                .iter()
                .map(developer_row)
                .collect::<Result<Vec<_>>>()?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn operator_login(&self) -> std::result::Result<Option<SandboxLogin>, StoreError> {
        self.pool.run_again_if_closed(|c| {
            printed_login(
                c,
                OPERATOR_PASSWORD,
                "SELECT email FROM developer_accounts WHERE role = 'operator' ORDER BY developer_id LIMIT 1",
            )
        })
    }

    fn golive_requests(
        &self,
        filter: &GoLiveFilter,
    ) -> std::result::Result<Vec<GoLiveRequest>, StoreError> {
        let filter = filter.clone();
        self.pool
            .run_again_if_closed(move |c| read_golive_requests(c, &filter))
    }

    fn golive_request(&self, id: i64) -> std::result::Result<Option<GoLiveRequest>, StoreError> {
        self.pool
            .run_again_if_closed(move |c| read_golive_request(c, id))
    }

    fn developer_by_email(
        &self,
        email: &str,
    ) -> std::result::Result<Option<(DeveloperAccount, String)>, StoreError> {
        let email = email.to_owned();
        self.pool.run_again_if_closed(move |c| {
            c.query_opt(
                &format!(
                    "SELECT {DEVELOPER_COLUMNS}, password_hash FROM developer_accounts WHERE email = $1"
                ),
                &[&email],
            )?
            .map(|r| Ok((developer_row(&r)?, col(&r, 8)?)))
            .transpose()
        })
    }

    fn developer(&self, id: i64) -> std::result::Result<Option<DeveloperAccount>, StoreError> {
        self.pool.run_again_if_closed(move |c| {
            c.query_opt(
                &format!(
                    "SELECT {DEVELOPER_COLUMNS} FROM developer_accounts WHERE developer_id = $1"
                ),
                &[&id],
            )?
            .as_ref()
            .map(developer_row)
            .transpose()
        })
    }

    fn developer_password_hash(&self, id: i64) -> std::result::Result<Option<String>, StoreError> {
        self.pool.run_again_if_closed(move |c| {
            c.query_opt(
                "SELECT password_hash FROM developer_accounts WHERE developer_id = $1",
                &[&id],
            )?
            .map(|r| col(&r, 0))
            .transpose()
        })
    }

    fn mail(&self, f: &MailFilter) -> std::result::Result<Vec<Mail>, StoreError> {
        let (developer_id, recipient, limit) =
            (f.developer_id, f.recipient.clone(), i64::from(f.limit));
        let channel = f.channel.map(|c| c.as_str());
        let kind = f.kind.map(|k| k.as_str());
        // One developer's mail goes through its index; only the operator's view of every
        // account (no developer) reads the table in id order.
        let account = if developer_id.is_some() {
            "developer_id = $1"
        } else {
            "$1::BIGINT IS NULL"
        };
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT {MAIL_COLUMNS} FROM mailbox
                     WHERE {account} AND ($2::TEXT IS NULL OR recipient = $2)
                       AND ($3::TEXT IS NULL OR channel = $3) AND ($4::TEXT IS NULL OR kind = $4)
                     ORDER BY id DESC LIMIT $5"
                ),
                &[&developer_id, &recipient, &channel, &kind, &limit],
            )?
            .iter()
            .map(mail_row)
            .collect()
        })
    }

    fn phone_code(&self, developer_id: i64) -> std::result::Result<Option<PhoneCode>, StoreError> {
        self.pool
            .run_again_if_closed(move |c| read_phone_code(c, developer_id))
    }

    fn session(
        &self,
        id_hash: &[u8; 32],
    ) -> std::result::Result<Option<SessionRecord>, StoreError> {
        let id_hash = id_hash.to_vec();
        self.pool.run_again_if_closed(move |c| {
            c.query_opt(
                "SELECT developer_id, csrf_token, expires_at_ms FROM portal_sessions WHERE id_hash = $1",
                &[&id_hash],
            )?
            .map(|r| {
                Ok(SessionRecord {
                    developer_id: col(&r, 0)?,
                    csrf_token: col(&r, 1)?,
                    expires_at_ms: col(&r, 2)?,
                })
            })
            .transpose()
        })
    }

    fn sandbox_login(&self) -> std::result::Result<Option<SandboxLogin>, StoreError> {
        self.pool.run_again_if_closed(|c| {
            printed_login(
                c,
                SANDBOX_PASSWORD,
                "SELECT email FROM developer_accounts WHERE developer_id = 1",
            )
        })
    }

    fn api_users_of(
        &self,
        developer_id: i64,
        limit: u32,
    ) -> std::result::Result<Vec<ApiUser>, StoreError> {
        let limit = i64::from(limit);
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT {API_USER_COLUMNS} FROM api_users WHERE developer_id = $1
                     ORDER BY created_at_ms DESC, id LIMIT $2"
                ),
                &[&developer_id, &limit],
            )?
            .iter()
            .map(api_user_row)
            .collect()
        })
    }

    fn api_keys_of(&self, api_user: &Uuid) -> std::result::Result<Vec<ApiKeyInfo>, StoreError> {
        let api_user = api_user.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE api_user = $1 ORDER BY id"),
                &[&api_user],
            )?
            .iter()
            .map(|r| Ok(rows::api_key_info(&Pg(r))?))
            .collect()
        })
    }

    fn payments_page(
        &self,
        filter: &PaymentFilter,
    ) -> std::result::Result<PaymentPage, StoreError> {
        let (clause, count_values) = filter_clause(filter);
        let offset = (filter.after.is_none() && filter.before.is_none()).then_some(filter.offset);
        let backwards = filter.before.is_some();
        let (page, page_values, limit) = page_query(filter, offset);
        self.pool.run_again_if_closed(move |c| {
            let total: i64 = col(
                &c.query_one(
                    &format!(
                        "SELECT COUNT(*) FROM payments p JOIN {USER_OF_PAYMENT} WHERE {clause}"
                    ),
                    &refs(&count_values),
                )?,
                0,
            )?;
            let mut payments = payments(&c.query(&page, &refs(&page_values))?)?;
            if backwards {
                payments.reverse();
            }
            Ok(PaymentPage {
                next: next_key(&payments, limit),
                first: payments.first().map(key_of),
                payments,
                total: total.max(0) as u64,
            })
        })
    }

    fn window_end(
        &self,
        filter: &PaymentFilter,
        n: u32,
    ) -> std::result::Result<Option<PageKey>, StoreError> {
        let (clause, mut values) = filter_clause(&filter.range());
        let k = values.len();
        values.push(Box::new(i64::from(n.max(1))));
        values.push(Box::new(i64::from(n.max(1)) - 1));
        // Each API user's newest `n` times in the index by API user and time (read from the
        // index alone: the reference ids would each be a fetch of the row, 0.1 s at 100,000),
        // then the n-th of them all. The window takes every payment of that millisecond
        // (the key's tie is the greatest reference id), a few more than `n` at most.
        let sql = format!(
            "SELECT p.created_at_ms FROM api_users u CROSS JOIN LATERAL (
                 SELECT p.created_at_ms FROM payments p
                 WHERE p.api_user = u.id COLLATE \"default\" AND {clause}
                 ORDER BY p.created_at_ms DESC LIMIT ${}
             ) p
             WHERE u.developer_id = $1 ORDER BY p.created_at_ms DESC LIMIT 1 OFFSET ${}",
            k + 1,
            k + 2
        );
        self.pool.run_again_if_closed(move |c| {
            c.query(&sql, &refs(&values))?
                .first()
                .map(|r| -> Result<PageKey> {
                    Ok(PageKey {
                        created_at_ms: col(r, 0)?,
                        tie: "ffffffff-ffff-ffff-ffff-ffffffffffff".to_owned(),
                    })
                })
                .transpose()
        })
    }

    fn payments_after(
        &self,
        filter: &PaymentFilter,
    ) -> std::result::Result<(Vec<Payment>, Option<PageKey>), StoreError> {
        let (sql, values, limit) = page_query(filter, None);
        let backwards = filter.before.is_some();
        self.pool.run_again_if_closed(move |c| {
            let mut payments = payments(&c.query(&sql, &refs(&values))?)?;
            if backwards {
                payments.reverse();
            }
            let next = next_key(&payments, limit);
            Ok((payments, next))
        })
    }

    fn payment_counts(
        &self,
        developer_id: i64,
        since_ms: Option<i64>,
    ) -> std::result::Result<Vec<KindCount>, StoreError> {
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT p.kind, p.status, COUNT(*),
                            CASE WHEN {} THEN 'collection_widget' ELSE p.product END AS of_product
                     FROM payments p JOIN {USER_OF_PAYMENT}
                     WHERE u.developer_id = $1 AND ($2::BIGINT IS NULL OR p.created_at_ms >= $2)
                       AND p.environment = 'sandbox'
                     GROUP BY of_product, p.kind, p.status",
                    mkoba_platform::widget::WIDGET_PAYMENTS_SQL
                ),
                &[&developer_id, &since_ms],
            )?
            .iter()
            .map(|r| Ok(rows::kind_count(&Pg(r))?))
            .collect()
        })
    }

    fn payment_stats(
        &self,
        scope: &ReportScope,
        bucket_ms: i64,
    ) -> std::result::Result<Vec<StatsRow>, StoreError> {
        let scope = Scope::of(scope);
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT (p.created_at_ms - $2) / $9 AS bucket, p.product, p.status, p.currency,
                            COUNT(*), SUM(p.amount_minor)::BIGINT, p.kind
                     FROM {SCOPE_PAYMENTS}
                     WHERE {IN_SCOPE}
                     GROUP BY bucket, p.product, p.status, p.currency, p.kind
                     ORDER BY bucket"
                ),
                &[&scope.params()[..], &[&bucket_ms]].concat(),
            )?
            .iter()
            .map(|r| Ok(rows::stats_row(&Pg(r))?))
            .collect()
        })
    }

    fn report_start(
        &self,
        scope: &ReportScope,
        most: u64,
    ) -> std::result::Result<Option<i64>, StoreError> {
        let scope = Scope::of(scope);
        let newest = i64::try_from(most.max(1) - 1).unwrap_or(i64::MAX);
        self.pool.run_again_if_closed(move |c| {
            // The most-th newest and the one after it, if there is one: of each API user's
            // newest that many and one, read in the index by API user and time (as a join,
            // every payment of the period was read: 136–140 against 42–45 ms at a million).
            let times = c
                .query(
                    "SELECT p.created_at_ms FROM api_users u CROSS JOIN LATERAL (
                         SELECT p.created_at_ms FROM payments p
                         WHERE p.api_user = u.id COLLATE \"default\" AND p.created_at_ms >= $2
                           AND ($5::BIGINT IS NULL OR p.created_at_ms < $5)
                         ORDER BY p.created_at_ms DESC LIMIT $4::BIGINT + 2
                     ) p
                     WHERE u.developer_id = $1 AND ($3::TEXT IS NULL OR u.id = $3)
                     ORDER BY p.created_at_ms DESC LIMIT 2 OFFSET $4::BIGINT",
                    &[
                        &scope.developer_id,
                        &scope.from_ms,
                        &scope.api_user,
                        &newest,
                        &scope.until_ms,
                    ],
                )?
                .iter()
                .map(|r| col(r, 0))
                .collect::<Result<Vec<i64>>>()?;
            Ok((times.len() == 2).then(|| times[0]))
        })
    }

    fn latencies(&self, scope: &ReportScope) -> std::result::Result<Latencies, StoreError> {
        let scope = Scope::of(scope);
        self.pool.run_again_if_closed(move |c| {
            let params = scope.params();
            let settlement_ms = c
                .query(
                    &format!(
                        "SELECT p.settled_at_ms - p.created_at_ms AS l
                         FROM {SCOPE_PAYMENTS}
                         WHERE {IN_SCOPE} AND p.settled_at_ms IS NOT NULL
                         ORDER BY l LIMIT {LATENCY_SAMPLES}"
                    ),
                    &params,
                )?
                .iter()
                .map(|r| col(r, 0))
                .collect::<Result<Vec<i64>>>()?;
            let callback_ms = c
                .query(
                    // First attempts are on their outbox rows, the others in `callback_attempts`:
                    // each arm joined on its own, as in the SQLite store (where the view
                    // `callback_log` joined to the payments is read whole). The payments'
                    // reference ids are `COLLATE "C"`, the other tables' in the default
                    // collation, whose indexes a join serves only when it names it (as
                    // `USER_OF_PAYMENT`): without it every outbox row was read, whatever
                    // the scope (a million of them, 0.43 s of one query's 1.05 in `psql`).
                    &format!(
                        "SELECT l FROM (SELECT l FROM (
                             SELECT o.first_latency_ms AS l, o.first_at_ms AS at FROM outbox o
                             JOIN payments p ON o.reference_id = p.reference_id COLLATE \"default\"
                             JOIN {USER_OF_PAYMENT}
                             WHERE {OF_SCOPE} AND o.first_at_ms >= $2 AND o.first_status_code IS NOT NULL
                             UNION ALL
                             SELECT a.latency_ms, a.at_ms FROM callback_attempts a
                             JOIN payments p ON a.reference_id = p.reference_id COLLATE \"default\"
                             JOIN {USER_OF_PAYMENT}
                             WHERE {OF_SCOPE} AND a.at_ms >= $2 AND a.status_code IS NOT NULL
                         ) c ORDER BY at DESC LIMIT {LATENCY_SAMPLES}) n ORDER BY l"
                    ),
                    &params,
                )?
                .iter()
                .map(|r| col(r, 0))
                .collect::<Result<Vec<i64>>>()?;
            Ok(Latencies {
                settlement_ms,
                callback_ms,
            })
        })
    }

    fn outbox_of(&self, reference_id: &Uuid) -> std::result::Result<Vec<OutboxRecord>, StoreError> {
        let reference_id = reference_id.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT {OUTBOX_RECORD_COLUMNS} FROM outbox WHERE reference_id = $1 ORDER BY id"
                ),
                &[&reference_id],
            )?
            .iter()
            .map(|r| Ok(rows::outbox_record(&Pg(r))?))
            .collect()
        })
    }

    fn waiting_payments(
        &self,
        developer_id: i64,
        msisdn: Option<&str>,
    ) -> std::result::Result<Vec<Payment>, StoreError> {
        let msisdn = msisdn.map(str::to_owned);
        self.pool.run_again_if_closed(move |c| {
            payments(&c.query(
                &format!(
                    "SELECT {} FROM pending_payments q
                     JOIN payments p ON p.reference_id = q.reference_id
                     JOIN {USER_OF_PAYMENT}
                     WHERE u.developer_id = $1 AND p.status = 'PENDING' AND p.party_type = 'MSISDN'
                       AND p.kind IN ('requesttopay', 'requesttowithdraw', 'invoice', 'preapproval', 'c2b', 'mandate')
                       AND ($2::TEXT IS NULL OR p.party_id = $2)
                     ORDER BY p.created_at_ms, p.reference_id LIMIT 1000",
                    rows::prefixed(PAYMENT_COLUMNS, "p")
                ),
                &[&developer_id, &msisdn],
            )?)
        })
    }

    fn transfer_times(
        &self,
        reference_id: &Uuid,
    ) -> std::result::Result<Vec<(u64, i64, i64)>, StoreError> {
        let reference_id = reference_id.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query(
                "SELECT id, created_at_ms, updated_at_ms FROM transfers WHERE reference_id = $1 ORDER BY id",
                &[&reference_id],
            )?
            .iter()
            .map(|r| Ok((col::<i64>(r, 0)? as u64, col(r, 1)?, col(r, 2)?)))
            .collect()
        })
    }

    fn widget_settings(
        &self,
        api_user: &Uuid,
    ) -> std::result::Result<Option<WidgetSettings>, StoreError> {
        let api_user = api_user.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query_opt(
                &format!(
                    "SELECT {WIDGET_SETTINGS_COLUMNS} FROM widget_settings WHERE api_user = $1"
                ),
                &[&api_user],
            )?
            .as_ref()
            .map(widget_settings_row)
            .transpose()
        })
    }
}
