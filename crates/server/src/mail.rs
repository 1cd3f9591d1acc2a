//! The portal's outgoing mail over SMTP (`--smtp-url`), through `lettre`.
//!
//! The platform keeps every message in its mailbox table and, when SMTP is configured,
//! queues the e-mails there. This sender claims due rows through the platform's writer
//! ([`Portal::claim_mail`]: at most [`CONCURRENCY`] at a time, leased for
//! [`LEASE_MS`], so a sender that stops — or a node that dies — leaves them due again),
//! sends them concurrently with a timeout each, and records the outcome: sent, retried
//! after the next delay of [`RETRY_DELAYS_SECS`] on a transient failure, or failed on a
//! permanent one (or once the retries are spent). It wakes when mail is queued and looks
//! every [`POLL`] otherwise (retries, other nodes' mail).
//!
//! Never logged: the SMTP URL's password, a message's body (its links sign in), its
//! recipient. A log line names the mailbox row's id and kind.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mkoba_platform::Platform;
use mkoba_platform::accounts::{Mail, MailOutcome};

use crate::config::{SmtpSettings, SmtpUrl};

/// E-mails sent at once.
pub const CONCURRENCY: u32 = 4;
/// How long a claimed e-mail is the claimer's.
pub const LEASE_MS: i64 = 120_000;
/// Waits between attempts after a transient failure; then the e-mail has failed.
pub const RETRY_DELAYS_SECS: [i64; 4] = [30, 300, 1800, 7200];
/// Longest wait between looks at the queue.
pub const POLL: Duration = Duration::from_secs(2);
/// Time allowed for one SMTP conversation.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Checks the settings as the sender will use them (at start-up, so a bad URL or sender
/// is an error then).
pub fn check_settings(url: &SmtpUrl, from: &str) -> anyhow::Result<()> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&transport_url(url)?)
        .with_context(|| format!("smtp_url {url} is not a valid SMTP URL"))?;
    from.parse::<Mailbox>()
        .with_context(|| format!("mail_from {from:?} is not a valid sender"))?;
    Ok(())
}

/// The URL the mail library is given. An `smtp://` URL without `tls=` is plain SMTP, which
/// is right for a relay on this machine (`smtp://127.0.0.1:25`) but sent a user name and
/// password given in the URL in clear text, although the server offered STARTTLS (the
/// operations audit of 2026-12-07). So such a URL is refused unless it says how: `tls=
/// required` (STARTTLS), `smtps://` (TLS from the start), or `tls=none`, Mkoba's word for
/// "in clear, on purpose", which is taken out here (the library knows no such value).
pub(crate) fn transport_url(url: &SmtpUrl) -> anyhow::Result<String> {
    let raw = url.0.as_str();
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    let params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    let tls = params.iter().find_map(|p| p.strip_prefix("tls="));
    let authority = base
        .strip_prefix("smtp://")
        .map(|rest| rest.split('/').next().unwrap_or(rest));
    if authority.is_some_and(|a| a.contains('@')) && tls.is_none() {
        anyhow::bail!(
            "smtp_url {url} would send its user name and password unencrypted: add ?tls=required (STARTTLS, usually port 587), use smtps:// (TLS, port 465), or add ?tls=none to send them in clear on purpose"
        );
    }
    if tls != Some("none") {
        return Ok(raw.to_owned());
    }
    let rest: Vec<&str> = params.into_iter().filter(|p| *p != "tls=none").collect();
    Ok(if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    })
}

/// Starts the sender.
pub fn spawn(
    platform: Platform,
    smtp: &SmtpSettings,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&transport_url(&smtp.url)?)
        .with_context(|| format!("smtp_url {} is not a valid SMTP URL", smtp.url))?
        .timeout(Some(TIMEOUT))
        .build();
    let from: Mailbox = smtp
        .from
        .parse()
        .with_context(|| format!("mail_from {:?} is not a valid sender", smtp.from))?;
    tracing::info!(smtp = %smtp.url, "sending the portal's mail through SMTP");
    Ok(tokio::spawn(run(platform, transport, from)))
}

async fn run(platform: Platform, transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox) {
    loop {
        let claimed = platform.portal().claim_mail(CONCURRENCY, LEASE_MS).await;
        if claimed.is_empty() {
            platform.portal().mail_queued(POLL).await;
            continue;
        }
        let mut sending = tokio::task::JoinSet::new();
        for mail in claimed {
            let (transport, from, platform) = (transport.clone(), from.clone(), platform.clone());
            sending.spawn(async move {
                let outcome = send(&transport, from, &mail, &platform).await;
                (mail, outcome)
            });
        }
        while let Some(done) = sending.join_next().await {
            let Ok((mail, outcome)) = done else {
                tracing::error!("a mail sending task failed");
                continue;
            };
            match &outcome {
                MailOutcome::Sent => {
                    tracing::info!(
                        mail.id = mail.id,
                        mail.kind = mail.kind.as_str(),
                        "mail sent"
                    )
                }
                MailOutcome::Retry { error, .. } => tracing::warn!(
                    mail.id = mail.id,
                    mail.kind = mail.kind.as_str(),
                    %error,
                    "sending mail failed; it will be tried again"
                ),
                MailOutcome::Failed { error } => tracing::warn!(
                    mail.id = mail.id,
                    mail.kind = mail.kind.as_str(),
                    %error,
                    "sending mail failed for good"
                ),
            }
            if platform.portal().record_mail(&mail, outcome).await.is_err() {
                tracing::error!(mail.id = mail.id, "recording a mail's outcome failed");
            }
        }
    }
}

/// One attempt.
async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    mail: &Mail,
    platform: &Platform,
) -> MailOutcome {
    let failed = |error: String| MailOutcome::Failed { error };
    let Ok(to) = mail.recipient.parse::<Mailbox>() else {
        return failed("the recipient is not an address SMTP can take".to_owned());
    };
    let message = match Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
    {
        Ok(m) => m,
        Err(e) => return failed(format!("building the message failed: {e}")),
    };
    match transport.send(message).await {
        Ok(_) => MailOutcome::Sent,
        Err(e) if e.is_permanent() => failed(format!("the mail server refused it: {e}")),
        Err(e) => {
            let spent = mail.attempts as usize;
            match RETRY_DELAYS_SECS.get(spent) {
                Some(delay) => MailOutcome::Retry {
                    at_ms: platform.now_ms() + delay * 1000,
                    error: e.to_string(),
                },
                None => failed(format!("given up after {} attempts: {e}", spent + 1)),
            }
        }
    }
}
