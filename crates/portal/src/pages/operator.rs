//! The operator's pages (`/portal/operator…`): go-live requests to approve or reject with a
//! comment (the developer is told by mail), and the accounts list, where an account can be
//! deactivated and reactivated. Only an [`Operator`] session reaches them; anyone else
//! gets the portal's 404, as for a page that does not exist.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mkoba_platform::accounts::{
    AccountError, AccountOutcome, AccountStatus, MailChannel, MailKind, NewMail,
};
use mkoba_platform::golive::{GoLiveError, GoLiveFilter, GoLiveRequest, GoLiveState};
use mkoba_platform::portal::AccountFilter;

use super::confirm;
use super::golive::{report_tables, request_facts};
use crate::html::Html;
use crate::{
    Form, Operator, PortalState, csrf_field, document, form_encode, not_found, query_params,
    see_other, w, when,
};

/// Longest operator comment.
const COMMENT_MAX: usize = 2000;
/// Accounts per page.
const ACCOUNTS_PAGE: u32 = 50;

fn notice(done: Option<&String>) -> Option<&'static str> {
    Some(match done.map(String::as_str)? {
        "approved" => {
            "Approved: the developer was told by mail and can now create production API users."
        }
        "rejected" => "Rejected: the developer was told by mail, with your comment.",
        "deactivated" => {
            "The account was deactivated: it cannot sign in and its keys stopped working."
        }
        "reactivated" => {
            "The account was reactivated: it can sign in again and finds new keys in the portal."
        }
        "unchanged" => {
            "Nothing was changed: the account had not confirmed its e-mail (it cannot sign in before that), or was no longer in a state that allows it."
        }
        _ => return None,
    })
}

async fn developer_label(state: &PortalState, id: i64) -> String {
    match state.platform.portal().developer(id).await {
        Ok(Some(d)) => format!("{} <{}>", d.name, d.email),
        _ => format!("developer {id}"),
    }
}

/// `GET /portal/operator`: go-live requests, pending first (`?state=` to list others).
pub(crate) async fn requests(
    State(state): State<PortalState>,
    Operator(session): Operator,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let wanted = match q.get("state").map(String::as_str) {
        None | Some("pending") => Some(GoLiveState::Pending),
        Some("all") => None,
        Some(s) => match GoLiveState::parse(s) {
            Some(s) => Some(s),
            // Said as the developers' filters say it (a 404 read as a missing page).
            None => {
                let mut h = Html::new();
                w!(h, "<h1>Go-live requests</h1><p class=\"error\" role=\"alert\" data-testid=\"filter-error\">There is no state " {s}
                    ": the requests are listed by state pending, approved or rejected, or all.</p><p><a href=\"/portal/operator\">Pending requests</a></p>");
                let page = document("Go-live requests", Some(&session), "operator", h);
                return (StatusCode::BAD_REQUEST, page).into_response();
            }
        },
    };
    let list = match state
        .platform
        .portal()
        .go_live_requests(&GoLiveFilter {
            developer_id: None,
            state: wanted,
            limit: LISTED,
        })
        .await
    {
        Ok(list) => list,
        Err(e) => return crate::failed(e),
    };
    let mut h = Html::new();
    h.raw("<h1>Go-live requests</h1>");
    if let Some(n) = notice(q.get("done")) {
        w!(h, "<p class=\"notice\" role=\"status\">" {n} "</p>");
    }
    h.raw("<p class=\"lead\">Developers post their details and a report of their sandbox transactions here when testing is done. Verify them, then approve (the developer can create production API users for the markets asked for) or reject with a comment.</p><p>");
    for (key, label) in [
        ("pending", "Pending"),
        ("approved", "Approved"),
        ("rejected", "Rejected"),
        ("all", "All"),
    ] {
        let current = q.get("state").map_or("pending", String::as_str) == key;
        if current {
            w!(h, "<strong>" {label} "</strong> ");
        } else {
            w!(h, "<a href=\"/portal/operator?state=" {key} "\">" {label} "</a> ");
        }
    }
    h.raw("</p>");
    if list.is_empty() {
        h.raw("<p class=\"muted\" data-testid=\"no-requests\">No requests here.</p>");
    } else {
        h.raw("<div class=\"table-wrap\"><table data-testid=\"golive-requests\"><thead><tr><th scope=\"col\">Submitted</th><th scope=\"col\">Developer</th><th scope=\"col\">Company</th><th scope=\"col\">Markets</th><th scope=\"col\">State</th><th scope=\"col\" class=\"num\">Transactions</th></tr></thead><tbody>");
        // One look-up per developer, however many requests they sent.
        let mut labels = std::collections::HashMap::new();
        for r in &list {
            let report = r.report();
            if let std::collections::hash_map::Entry::Vacant(e) = labels.entry(r.developer_id) {
                e.insert(developer_label(&state, r.developer_id).await);
            }
            let label = &labels[&r.developer_id];
            w!(h, "<tr><td><a href=\"/portal/operator/golive/" {r.id} "\">" {when(r.created_at_ms)} "</a></td><td>" {label} "</td><td>" {r.company} "</td><td>" {r.markets.join(", ")} "</td><td>" {r.state.as_str()} "</td><td class=\"num\">" {report.total()} "</td></tr>");
        }
        h.raw("</tbody></table></div>");
        // Bounded, and said so (older ones were silently not there).
        if list.len() >= LISTED as usize {
            w!(h, "<p class=\"notice\" data-testid=\"listed-newest\">The newest " {LISTED} " are listed; a request older than those opens from its link in the developer's or the operator's mail (<code>/portal/operator/golive/&lt;id&gt;</code>).</p>");
        }
    }
    document("Go-live requests", Some(&session), "operator", h).into_response()
}

/// The most go-live requests the operator's list shows, newest first.
const LISTED: u32 = 200;

async fn request_page(
    state: &PortalState,
    session: &crate::Session,
    r: &GoLiveRequest,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let mut h = Html::new();
    w!(h, "<h1>Go-live request " {r.id} "</h1>");
    if let Some(e) = error {
        w!(h, "<p class=\"error\" role=\"alert\">" {e} "</p>");
    }
    let developer = state
        .platform
        .portal()
        .developer(r.developer_id)
        .await
        .ok()
        .flatten();
    h.raw("<section class=\"card\" aria-labelledby=\"dev-h\"><h2 id=\"dev-h\">Developer</h2><dl class=\"facts\">");
    match &developer {
        Some(d) => {
            w!(h, "<dt>Name</dt><dd>" {d.name} "</dd><dt>E-mail</dt><dd>" {d.email} "</dd>"
                "<dt>Phone</dt><dd>" {d.phone.as_deref().map(|p| format!("+{p}")).unwrap_or_else(|| "—".to_owned())} "</dd>"
                "<dt>Account</dt><dd>" {d.status.as_str()} " (created " {when(d.created_at_ms)} ")</dd>");
        }
        None => w!(h, "<dt>Developer</dt><dd>" {r.developer_id} "</dd>"),
    }
    h.raw("</dl></section><section class=\"card\" aria-labelledby=\"req-h\"><h2 id=\"req-h\">Request</h2>");
    request_facts(&mut h, r);
    h.raw("<h3>Transaction report</h3>");
    report_tables(&mut h, &r.report());
    h.raw("</section>");
    if r.state == GoLiveState::Pending {
        w!(h, "<section class=\"card\" aria-labelledby=\"decide-h\"><h2 id=\"decide-h\">Decide</h2>"
            "<form method=\"post\" action=\"/portal/operator/golive/" {r.id} "\" class=\"stack\" data-testid=\"decide-form\">" [csrf_field(session)]
            "<label for=\"comment\">Comment to the developer <span class=\"hint\">(required to reject)</span></label>"
            "<textarea id=\"comment\" name=\"comment\" rows=\"3\" maxlength=\"" {COMMENT_MAX} "\"></textarea>"
            "<div class=\"decide\"><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>"
            "<button type=\"submit\" name=\"decision\" value=\"reject\" class=\"danger\">Reject</button></div></form></section>");
    }
    h.raw("<p><a href=\"/portal/operator\">All pending requests</a></p>");
    (
        status,
        document(
            &format!("Go-live request {}", r.id),
            Some(session),
            "operator",
            h,
        ),
    )
        .into_response()
}

/// `GET /portal/operator/golive/{id}`.
pub(crate) async fn request(
    State(state): State<PortalState>,
    Operator(session): Operator,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found().await;
    };
    match state.platform.portal().go_live_request(id).await {
        Ok(Some(r)) => request_page(&state, &session, &r, StatusCode::OK, None).await,
        Ok(None) => not_found().await,
        Err(e) => crate::failed(e),
    }
}

/// `POST /portal/operator/golive/{id}`: `decision=approve|reject`, `comment`.
pub(crate) async fn decide(
    State(state): State<PortalState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let Ok(id) = id.parse::<i64>() else {
        return not_found().await;
    };
    let r = match state.platform.portal().go_live_request(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found().await,
        Err(e) => return crate::failed(e),
    };
    let refuse =
        async |status, msg: &str| request_page(&state, &session, &r, status, Some(msg)).await;
    let approve = match form.get("decision") {
        "approve" => true,
        "reject" => false,
        _ => return refuse(StatusCode::BAD_REQUEST, "Choose Approve or Reject.").await,
    };
    let comment = form.get("comment").replace("\r\n", "\n");
    if comment.chars().count() > COMMENT_MAX
        || comment
            .chars()
            .any(|c| mkoba_platform::portal::hides_text(c) && c != '\n' && c != '\t')
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The comment is too long or has control characters.",
        )
        .await;
    }
    if !approve && comment.trim().is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Say why in the comment: the developer reads it.",
        )
        .await;
    }
    let link = state.config.link("/portal/golive");
    let mail = Box::new(move |r: &GoLiveRequest, email: &str, name: &str| {
        let comment = r
            .comment
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| format!("\n\nThe operator's comment:\n\n{c}"))
            .unwrap_or_default();
        let (subject, text) = if r.state == GoLiveState::Approved {
            (
                "Your go-live request was approved",
                format!(
                    "Your request to go live was approved. You can now create API users for the production environments of {} in the portal.",
                    if r.markets.is_empty() {
                        "M-Pesa (openapi)".to_owned()
                    } else {
                        r.markets.join(", ")
                    }
                ),
            )
        } else {
            (
                "Your go-live request was rejected",
                "Your request to go live was rejected. Correct what the comment says, then submit a new request.".to_owned(),
            )
        };
        NewMail {
            developer_id: r.developer_id,
            channel: MailChannel::Email,
            kind: MailKind::GoLive,
            recipient: email.to_owned(),
            subject: subject.to_owned(),
            body: format!("Hello {name},\n\n{text}{comment}\n\n{link}\n"),
        }
    });
    match state
        .platform
        .portal()
        .decide_go_live(id, session.developer.id, approve, &comment, mail)
        .await
    {
        Ok(()) => {
            tracing::info!(
                golive.id = id,
                operator.id = session.developer.id,
                approve,
                "go-live request decided"
            );
            see_other(if approve {
                "/portal/operator?done=approved"
            } else {
                "/portal/operator?done=rejected"
            })
        }
        Err(GoLiveError::AlreadyDecided) => {
            let r = state
                .platform
                .portal()
                .go_live_request(id)
                .await
                .ok()
                .flatten()
                .unwrap_or(r);
            request_page(
                &state,
                &session,
                &r,
                StatusCode::CONFLICT,
                Some("This request was decided already."),
            )
            .await
        }
        Err(GoLiveError::NotFound) => not_found().await,
        Err(GoLiveError::NotActive) => {
            request_page(
                &state,
                &session,
                &r,
                StatusCode::CONFLICT,
                Some("The developer deleted this account: it cannot be given production access. Reject the request to close it."),
            )
            .await
        }
        Err(e) => crate::failed(e),
    }
}

/// `GET /portal/operator/accounts?email=…&page=…`.
pub(crate) async fn accounts(
    State(state): State<PortalState>,
    Operator(session): Operator,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    let email = q.get("email").map(|e| e.to_lowercase());
    let page: u32 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let filter = |page: u32| AccountFilter {
        email: email.clone(),
        limit: ACCOUNTS_PAGE,
        offset: (page - 1).saturating_mul(ACCOUNTS_PAGE),
    };
    let (mut list, total) = match state.platform.portal().accounts(&filter(page)).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let pages = u32::try_from(total.div_ceil(u64::from(ACCOUNTS_PAGE)))
        .unwrap_or(u32::MAX)
        .max(1);
    let page = if page > pages {
        let (l, _) = match state.platform.portal().accounts(&filter(pages)).await {
            Ok(v) => v,
            Err(e) => return crate::failed(e),
        };
        list = l;
        pages
    } else {
        page
    };
    let mut h = Html::new();
    h.raw("<h1>Accounts</h1>");
    if let Some(n) = notice(q.get("done")) {
        w!(h, "<p class=\"notice\" role=\"status\">" {n} "</p>");
    }
    w!(h, "<form method=\"get\" action=\"/portal/operator/accounts\" class=\"inline\"><label for=\"email\">E-mail contains</label> "
        "<input id=\"email\" name=\"email\" value=\"" {email.as_deref().unwrap_or("")} "\"> <button type=\"submit\">Search</button>");
    if email.is_some() {
        h.raw(" <a href=\"/portal/operator/accounts\">Clear</a>");
    }
    w!(h, "</form><p>" {total} {if total == 1 { " account" } else { " accounts" }} " · page " {page} " of " {pages} "</p>"
        "<div class=\"table-wrap\"><table data-testid=\"accounts\"><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">E-mail</th><th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th><th scope=\"col\"><span class=\"sr-only\">Action</span></th></tr></thead><tbody>");
    for a in &list {
        w!(h, "<tr data-account=\"" {a.email} "\"><td>" {a.id} "</td><td>" {a.email} "</td><td>" {a.name} "</td><td>" {a.role.as_str()} "</td><td data-testid=\"account-status\">" {a.status.as_str()} "</td><td>" {when(a.created_at_ms)} "</td><td>");
        let action = match a.status {
            _ if a.is_operator() || a.id == session.developer.id => None,
            // A pending account cannot sign in before it confirms its e-mail, and an
            // operator's reactivation would skip that check: nothing to deactivate.
            AccountStatus::Deleted | AccountStatus::Pending => None,
            AccountStatus::Deactivated => Some(("activate", "Reactivate")),
            _ => Some(("deactivate", "Deactivate")),
        };
        if let Some((value, label)) = action {
            w!(h, "<form method=\"post\" action=\"/portal/operator/accounts/" {a.id} "\" class=\"inline\">" [csrf_field(&session)]
                "<input type=\"hidden\" name=\"action\" value=\"" {value} "\">"
                "<button type=\"submit\" class=\"secondary\" aria-label=\"" {label} " " {a.email} "\">" {label} "</button></form>");
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table></div>");
    if pages > 1 {
        let base = match &email {
            Some(e) => format!("/portal/operator/accounts?email={}&", form_encode(e)),
            None => "/portal/operator/accounts?".to_owned(),
        };
        h.raw("<nav class=\"pager\" aria-label=\"Pages\">");
        if page > 1 {
            w!(h, "<a href=\"" {base} "page=" {page - 1} "\">Previous</a> ");
        }
        if page < pages {
            w!(h, "<a href=\"" {base} "page=" {page + 1} "\">Next</a>");
        }
        h.raw("</nav>");
    }
    document("Accounts", Some(&session), "accounts", h).into_response()
}

/// `POST /portal/operator/accounts/{id}`: `action=deactivate|activate`, confirmed first.
pub(crate) async fn set_active(
    State(state): State<PortalState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let Ok(id) = id.parse::<i64>() else {
        return not_found().await;
    };
    let account = match state.platform.portal().developer(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found().await,
        Err(e) => return crate::failed(e),
    };
    if account.is_operator() || account.status == AccountStatus::Deleted {
        return not_found().await;
    }
    let active = match form.get("action") {
        "deactivate" => false,
        "activate" => true,
        _ => return see_other("/portal/operator/accounts"),
    };
    let action = if active { "activate" } else { "deactivate" };
    let path = format!("/portal/operator/accounts/{id}");
    if !confirm::confirmed(&form) {
        let consequences = if active {
            vec![
                format!("{} can sign in again.", account.email),
                "Their keys were replaced when the account was deactivated: they find new subscription keys in the portal and renew the M-Pesa API key.".to_owned(),
            ]
        } else {
            vec![
                format!(
                    "{} can no longer sign in; every session of theirs ends.",
                    account.email
                ),
                "Their subscription keys, API keys and M-Pesa API key stop working at once."
                    .to_owned(),
                "Their API users, transactions and the ledger stay.".to_owned(),
            ]
        };
        return confirm::page(
            &session,
            &confirm::Confirm {
                title: if active {
                    "Reactivate the account"
                } else {
                    "Deactivate the account"
                },
                consequences: &consequences,
                action: &path,
                fields: &[("action", action)],
                button: if active { "Reactivate" } else { "Deactivate" },
                cancel: "/portal/operator/accounts",
                section: "accounts",
                ask_password: false,
            },
        );
    }
    let notice = NewMail {
        developer_id: id,
        channel: MailChannel::Email,
        kind: MailKind::Notice,
        recipient: account.email.clone(),
        subject: if active {
            "Your Mkoba account was reactivated".to_owned()
        } else {
            "Your Mkoba account was deactivated".to_owned()
        },
        body: if active {
            format!(
                "Hello {},\n\nThe operator reactivated your account: you can sign in again. While it was deactivated, your subscription keys were replaced (find the new ones in the portal), your API keys were revoked (make new ones for your API users) and your M-Pesa API key was replaced by one nobody holds (renew it on the portal's M-Pesa page):\n\n{}\n",
                account.name,
                state.config.link("/portal/profile")
            )
        } else {
            format!(
                "Hello {},\n\nThe operator of this platform deactivated your account: you cannot sign in and your keys no longer work. Contact the operator to have it reactivated.\n",
                account.name
            )
        },
    };
    match state
        .platform
        .portal()
        .set_account_active(id, active, Some(notice))
        .await
    {
        Ok(AccountOutcome::Done | AccountOutcome::AlreadyDone) => {
            tracing::info!(
                developer.id = id,
                operator.id = session.developer.id,
                active,
                "account status set by an operator"
            );
            see_other(if active {
                "/portal/operator/accounts?done=reactivated"
            } else {
                "/portal/operator/accounts?done=deactivated"
            })
        }
        Err(AccountError::NotFound) => not_found().await,
        Err(AccountError::WrongState) => see_other("/portal/operator/accounts?done=unchanged"),
        Err(e) => crate::failed(e),
    }
}
