//! The mailbox (`/portal/mail`) and the messages the account journey sends.
//!
//! Every message is a row in the platform's mailbox, sent through SMTP when the server has
//! one. Who may read what here:
//!
//! * a signed-in developer (active or at the phone step) reads the messages of their own
//!   account, and nobody else's;
//! * in sandbox mode (no mail server), a browser that has just signed up, or has just given
//!   the right password of an account not yet activated, holds a signed token (a link
//!   parameter `t`, or the `mkoba_mailbox` cookie) for that account and address: it reads the
//!   activation mail sent to that address for that account (no other kind: a later password
//!   reset link is not for an old token), so the activation link can be followed on a
//!   laptop with no mail server. Nothing else opens it: no token can be had for an
//!   address without its account's password or its sign-up;
//! * with a mail server (sandbox mode off) the links that prove control of an address
//!   (activation, e-mail change, password reset) are not shown in the portal: they are in
//!   the recipient's inbox only.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mkoba_platform::accounts::{
    LINK_TTL_MS, LinkPurpose, Mail, MailChannel, MailFilter, MailKind, MailState, NewMail,
    RESET_TTL_MS,
};

use crate::html::Html;
use crate::{MaybeSession, PortalState, document, query_params, w};

/// The activation mail of a new account.
pub(crate) fn activation(
    state: &PortalState,
    developer_id: i64,
    email: &str,
    name: &str,
) -> NewMail {
    let token = state.platform.portal().link_token(
        LinkPurpose::Activate,
        developer_id,
        email,
        state.platform.now_ms() + LINK_TTL_MS,
    );
    let link = state.config.link(&format!("/portal/activate?t={token}"));
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::Activation,
        recipient: email.to_owned(),
        subject: "Activate your Mkoba developer account".to_owned(),
        body: format!(
            "Hello {name},\n\nWelcome to the Mkoba developer portal. Open this link to activate your account:\n\n{link}\n\nThe link works for {} hours. Then sign in and add your phone number to finish.\n\nIf you did not sign up, ignore this message: the account stays inactive.\n",
            LINK_TTL_MS / 3_600_000
        ),
    }
}

/// The link that confirms a new e-mail address.
pub(crate) fn email_change(
    state: &PortalState,
    developer_id: i64,
    name: &str,
    from: &str,
    to: &str,
) -> NewMail {
    let token = state.platform.portal().link_token(
        LinkPurpose::ChangeEmail,
        developer_id,
        &format!("{from}\n{to}"),
        state.platform.now_ms() + LINK_TTL_MS,
    );
    let link = state
        .config
        .link(&format!("/portal/profile/email/confirm?t={token}"));
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::EmailChange,
        recipient: to.to_owned(),
        subject: "Confirm your new e-mail address".to_owned(),
        body: format!(
            "Hello {name},\n\nYou asked to sign in to the Mkoba developer portal as {to} instead of {from}. Open this link to confirm:\n\n{link}\n\nThe link works for {} hours, once. If you did not ask for this, ignore this message: nothing changes.\n",
            LINK_TTL_MS / 3_600_000
        ),
    }
}

/// To the old address once the e-mail was changed.
pub(crate) fn email_changed(developer_id: i64, name: &str, from: &str, to: &str) -> NewMail {
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::EmailChanged,
        recipient: from.to_owned(),
        subject: "Your Mkoba e-mail address was changed".to_owned(),
        body: format!(
            "Hello {name},\n\nYour Mkoba developer account now signs in as {to}; messages go there from now on. If you did not do this, reset your password and tell the operator of this server.\n"
        ),
    }
}

/// To an account's address when someone signs up with it again (on a server whose sign-up
/// does not say that an address has an account).
pub(crate) fn signed_up_again(
    state: &PortalState,
    developer_id: i64,
    name: &str,
    email: &str,
) -> NewMail {
    let sign_in = state.config.link("/portal/signin");
    let forgot = state.config.link("/portal/forgot");
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::Notice,
        recipient: email.to_owned(),
        subject: "You already have a Mkoba account".to_owned(),
        body: format!(
            "Hello {name},\n\nSomeone (you, we hope) tried to create a Mkoba developer account with this address, which has one already. Nothing was changed. Sign in:\n\n{sign_in}\n\nor, if you forgot your password, choose a new one:\n\n{forgot}\n"
        ),
    }
}

/// The forgot-password link.
pub(crate) fn password_reset(
    state: &PortalState,
    developer_id: i64,
    name: &str,
    email: &str,
    digest: &str,
) -> NewMail {
    let token = state.platform.portal().link_token(
        LinkPurpose::ResetPassword,
        developer_id,
        digest,
        state.platform.now_ms() + RESET_TTL_MS,
    );
    let link = state.config.link(&format!("/portal/reset?t={token}"));
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::PasswordReset,
        recipient: email.to_owned(),
        subject: "Reset your Mkoba password".to_owned(),
        body: format!(
            "Hello {name},\n\nSomeone (you, we hope) asked to reset the password of your Mkoba developer account. Open this link to choose a new one:\n\n{link}\n\nThe link works for {} minutes, once. If you did not ask, ignore this message: your password stays as it is.\n",
            RESET_TTL_MS / 60_000
        ),
    }
}

/// After a password change or reset.
pub(crate) fn password_changed(developer_id: i64, name: &str, email: &str) -> NewMail {
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::PasswordChanged,
        recipient: email.to_owned(),
        subject: "Your Mkoba password was changed".to_owned(),
        body: format!(
            "Hello {name},\n\nThe password of your Mkoba developer account was changed, and every other session was signed out. If you did not do this, use \"Forgot your password?\" on the sign-in page.\n"
        ),
    }
}

/// After the account's phone number was changed.
pub(crate) fn phone_changed(developer_id: i64, name: &str, email: &str) -> NewMail {
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::Notice,
        recipient: email.to_owned(),
        subject: "Your Mkoba phone number was changed".to_owned(),
        body: format!(
            "Hello {name},\n\nThe phone number of your Mkoba developer account was changed (confirmed with a code sent to the new number). If you did not do this, change your password on My profile.\n"
        ),
    }
}

/// After an account was deleted.
pub(crate) fn account_deleted(developer_id: i64, name: &str, email: &str) -> NewMail {
    NewMail {
        developer_id,
        channel: MailChannel::Email,
        kind: MailKind::AccountDeleted,
        recipient: email.to_owned(),
        subject: "Your Mkoba developer account was deleted".to_owned(),
        body: format!(
            "Hello {name},\n\nYour Mkoba developer account was deleted: you can no longer sign in, and its API keys, subscription keys and M-Pesa API key no longer work. Its transactions stay in the ledger's history.\n"
        ),
    }
}

/// A mailbox token for the browser that proved it may read `email`'s mail of an account.
pub(crate) fn mailbox_token(state: &PortalState, developer_id: i64, email: &str) -> String {
    state.platform.portal().link_token(
        LinkPurpose::Mailbox,
        developer_id,
        email,
        state.platform.now_ms() + LINK_TTL_MS,
    )
}

/// Text as paragraphs (blank lines between them), its line breaks kept and the words that
/// are links into the portal (`own`, its public URL: the activation and reset links the
/// platform wrote) turned into links, in `code`, which wraps anywhere on a phone; any
/// other `http(s)://` word stays text (a name, a company or a comment someone typed is
/// in some mails, and a link there would be theirs, in the platform's voice); everything
/// escaped.
fn linkify(h: &mut Html, text: &str, own: &str) {
    let own = format!("{}/", own.trim_end_matches('/'));
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        h.raw("<p>");
        for (i, line) in paragraph.split('\n').enumerate() {
            if i > 0 {
                h.raw("<br>");
            }
            for (j, word) in line.split(' ').enumerate() {
                if j > 0 {
                    h.raw(" ");
                }
                if word.starts_with(&own) {
                    w!(*h, "<a href=\"" {word} "\"><code>" {word} "</code></a>");
                } else {
                    h.text(word);
                }
            }
        }
        h.raw("</p>");
    }
}

fn state_label(m: &Mail) -> &'static str {
    match (m.channel, m.state) {
        (MailChannel::Sms, _) => "delivered to the virtual phone",
        (_, MailState::Kept) => "kept here (no mail server configured)",
        (_, MailState::Queued) => "waiting for the mail server",
        (_, MailState::Sending) => "being sent",
        (_, MailState::Sent) => "sent",
        (_, MailState::Failed) => "not delivered",
    }
}

/// One message as an article; `own` is the portal's public URL, whose links are the only
/// ones made clickable.
pub(crate) fn message(h: &mut Html, m: &Mail, show_secrets: bool, own: &str) {
    let channel = match m.channel {
        MailChannel::Email => "E-mail",
        MailChannel::Sms => "SMS",
    };
    w!(*h, "<article class=\"card mail\" data-testid=\"mail-" {m.kind.as_str()} "\" aria-label=\"" {channel} ": " {m.subject} "\">"
        "<h2>" {m.subject} "</h2>"
        "<p class=\"hint\">" {channel} " to <strong>" {m.recipient} "</strong> · " {crate::when(m.created_at_ms)} " · " {state_label(m)});
    if m.state == MailState::Failed
        && let Some(e) = &m.last_error
    {
        w!(*h, " (" {e} ")");
    }
    h.raw("</p>");
    if m.kind.carries_secret() && !show_secrets {
        h.raw("<p class=\"muted\">This message carries a link for its recipient; it is in their inbox, not shown here.</p>");
    } else {
        h.raw("<div class=\"mail-body\">");
        linkify(h, &m.body, own);
        h.raw("</div>");
    }
    h.raw("</article>");
}

/// `GET /portal/mail`: a signed-in developer's own mail, or (sandbox mode) the mail a
/// token opens.
pub(crate) async fn show(
    State(state): State<PortalState>,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let sandbox = state.config.sandbox_mailbox;
    let mut h = Html::new();
    h.raw("<h1>Mailbox</h1>");
    if let Some(session) = session.as_ref().filter(|s| s.developer.is_operator()) {
        // The operator reads every account's mail (links that prove control of an address
        // only in sandbox mode, as the accounts themselves do).
        let filter = MailFilter {
            developer_id: None,
            recipient: q.get("to").map(|t| t.trim().to_lowercase()),
            channel: None,
            kind: None,
            limit: 200,
        };
        let mail = match state.platform.portal().mailbox(&filter).await {
            Ok(v) => v,
            Err(e) => return crate::failed(e),
        };
        h.raw("<p class=\"lead\">Every message the platform sent, to every account (newest first).</p>");
        w!(h, "<form method=\"get\" action=\"/portal/mail\" class=\"inline\"><label for=\"to\">To</label> <input id=\"to\" name=\"to\" value=\"" {filter.recipient.as_deref().unwrap_or("")} "\"> <button type=\"submit\">Filter</button></form>");
        list(&mut h, &mail, sandbox, &state.config.public_url);
        if mail.len() >= filter.limit as usize {
            w!(h, "<p class=\"notice\" data-testid=\"listed-newest\">The newest " {filter.limit} " messages are listed: filter by address to see an account's older ones.</p>");
        }
        return document("Mailbox", Some(session), "mail", h).into_response();
    }
    if let Some(session) = &session {
        let mut filter = MailFilter::of(session.developer.id);
        filter.recipient = q.get("to").map(|t| t.trim().to_lowercase());
        let mail = match state.platform.portal().mailbox(&filter).await {
            Ok(v) => v,
            Err(e) => return crate::failed(e),
        };
        h.raw("<p class=\"lead\">Every message sent to you: e-mail and the virtual phone's SMS. ");
        if sandbox {
            h.raw("No mail server is configured, so e-mail is kept here.</p>");
        } else {
            h.raw("E-mail also goes out through the server's mail server.</p>");
        }
        if let Some(to) = &filter.recipient {
            w!(h, "<p>To <strong>" {to} "</strong> only · <a href=\"/portal/mail\">show all</a></p>");
        }
        list(&mut h, &mail, sandbox, &state.config.public_url);
        return document("Mailbox", Some(session), "", h).into_response();
    }
    // No session: a sandbox token from the link or the cookie.
    let token = q
        .get("t")
        .cloned()
        .or_else(|| crate::mailbox_token(&headers));
    let claims = token.filter(|_| sandbox).and_then(|t| {
        state
            .platform
            .portal()
            .check_link(LinkPurpose::Mailbox, &t)
            .ok()
    });
    let Some(claims) = claims else {
        h.raw("<p class=\"lead\">Messages wait here for the account they concern.</p>");
        if sandbox {
            h.raw("<p>No mail server is configured. Sign up, or sign in to an account that is not activated yet, and this page shows the mail sent to that address (in this browser, for 24 hours). Signed in, it shows all of your account's mail.</p>");
        } else if state.config.mail_goes_out {
            h.raw("<p>Mail goes out through the server's mail server: look in your inbox. Signed in, this page lists what was sent to you.</p>");
        } else {
            h.raw("<p>This server sends no e-mail: it has no mail server configured. Signed in, this page lists what would have been sent to you.</p>");
        }
        h.raw("<p><a href=\"/portal/signin\">Sign in</a> · <a href=\"/portal/signup\">Create an account</a></p>");
        return (StatusCode::OK, document("Mailbox", None, "", h)).into_response();
    };
    // Only the activation mail: a reset link must not be readable by whoever holds an old
    // sign-up token.
    let filter = MailFilter {
        recipient: Some(claims.subject.clone()),
        channel: Some(MailChannel::Email),
        kind: Some(MailKind::Activation),
        ..MailFilter::of(claims.developer_id)
    };
    let mail = match state.platform.portal().mailbox(&filter).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    w!(h, "<p class=\"lead\">Sandbox mode: no mail server is configured, so the mail sent to <strong>" {claims.subject} "</strong> waits here.</p>");
    list(&mut h, &mail, true, &state.config.public_url);
    h.raw("<p><a href=\"/portal/signin\">Sign in</a></p>");
    document("Mailbox", None, "", h).into_response()
}

fn list(h: &mut Html, mail: &[Mail], show_secrets: bool, own: &str) {
    if mail.is_empty() {
        h.raw("<p class=\"muted\">No messages.</p>");
        return;
    }
    h.raw("<div class=\"mails\">");
    for m in mail {
        message(h, m, show_secrets, own);
    }
    h.raw("</div>");
}

/// The sandbox banner of the sign-in and sign-up pages.
pub(crate) fn banner(state: &PortalState, h: &mut Html) {
    if state.config.sandbox_mailbox {
        h.raw("<p class=\"notice\" role=\"note\">Sandbox: no mail server is configured, so the mail a new account is sent (its activation link) waits in this browser's <a href=\"/portal/mail\" data-testid=\"mailbox-link\">Mailbox</a> after signing up; once signed in, the mailbox has all your mail.</p>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_portals_own_links_become_anchors_and_the_rest_is_escaped() {
        let mut h = Html::new();
        linkify(
            &mut h,
            "Open <this>, https://evil.example/reset:\n\nhttp://127.0.0.1:8080/portal/activate?t=a.b&x=\"1\"\nbye http://127.0.0.1:8080.evil/portal/",
            "http://127.0.0.1:8080/",
        );
        let s = h.into_string();
        assert_eq!(
            s,
            "<p>Open &lt;this&gt;, https://evil.example/reset:</p><p><a href=\"http://127.0.0.1:8080/portal/activate?t=a.b&amp;x=&quot;1&quot;\"><code>http://127.0.0.1:8080/portal/activate?t=a.b&amp;x=&quot;1&quot;</code></a><br>bye http://127.0.0.1:8080.evil/portal/</p>"
        );
    }
}
