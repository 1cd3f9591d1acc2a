//! Test clocks in the portal (`mkoba_platform::test_clock`): create one for a new API user,
//! advance it (everything that became due settles, as the time would have), delete it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mkoba_platform::test_clock::{ClockError, parse_span, span_refusal};
use uuid::Uuid;

use crate::html::Html;
use crate::{Form, PortalState, Session, csrf_field, document, query_params, see_other, w, when};

const BAD: StatusCode = StatusCode::BAD_REQUEST;

/// Spans offered as buttons; any other is typed.
const SPANS: &[&str] = &["1h", "1d", "7d", "30d"];

/// A refusal, and where the page says it: beside the form it is about, with the field
/// marked invalid and what was typed kept.
struct Refused<'a> {
    sentence: String,
    at: At<'a>,
}

enum At<'a> {
    /// Above the clocks (a clock that is gone).
    Page,
    /// The new clock's form: the field (`api_user`, `name`, or `""`) and the name typed.
    New(&'static str, &'a str),
    /// A clock's advance: its id and the span typed.
    Advance(Uuid, &'a str),
}

/// The sentence of a refusal, `id="form-error"`.
fn said(h: &mut Html, r: &Refused) {
    w!(*h, "<p class=\"error\" role=\"alert\" id=\"form-error\" data-testid=\"clock-error\">" {r.sentence} "</p>");
}

/// The attributes of a control the refusal is about.
fn invalid(h: &mut Html, is: bool) {
    if is {
        h.raw(" aria-invalid=\"true\" aria-describedby=\"form-error\"");
    }
}

async fn page(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    refused: Option<Refused<'_>>,
    done: Option<&String>,
) -> Response {
    let users = match state
        .platform
        .portal()
        .api_users_of(session.developer.id)
        .await
    {
        Ok(u) => u,
        Err(e) => return crate::failed(e),
    };
    // The M-Pesa application runs on an API user of its own (not listed with the MoMo ones).
    let mpesa_user = match state.platform.mpesa().app(session.developer.id).await {
        Ok(app) => app.map(|a| a.api_user),
        Err(e) => return crate::failed(e),
    };
    // Another node may have made or moved one since this node's writer last looked.
    if !state.platform.clocks().caught_up().await {
        return crate::failed(mkoba_platform::Internal::Busy);
    }
    let clocks = state.platform.clocks().list(session.developer.id);
    let csrf = csrf_field(session);
    let mut h = Html::new();
    w!(h, "<h1>Test clocks</h1>");
    if let Some(text) = match done.map(String::as_str) {
        Some("created") => {
            Some("Test clock created: payments of its API user now run on its time.")
        }
        Some("advanced") => Some("Advanced: everything that became due is settled."),
        Some("deleted") => Some("Test clock deleted: its pending payments ended as EXPIRED."),
        _ => None,
    } {
        w!(h, "<p class=\"notice\" role=\"status\">" {text} "</p>");
    }
    if let Some(r @ Refused { at: At::Page, .. }) = &refused {
        said(&mut h, r);
    }
    w!(h, "<p class=\"lead\">Expiry paths take hours or days in real time: a settle delay, an invoice's <code>validityDuration</code>, "
        "a token's <code>expires_in</code>, an M-Pesa session's lifetime. A test clock gives one new API user a time of its own that stands still "
        "until you advance it; advancing settles, in order, everything of that API user that became due, in milliseconds. "
        "Other API users stay on real time. The same from a terminal: <code>mkoba clock advance --api-user … 3d</code>.</p>");
    if clocks.is_empty() {
        h.raw("<p class=\"muted\" data-testid=\"no-clocks\">No test clocks yet.</p>");
    }
    for c in &clocks {
        let name = if c.name.is_empty() {
            "Test clock"
        } else {
            c.name.as_str()
        };
        w!(h, "<section class=\"card\" aria-label=\"Test clock " {c.id} "\" data-testid=\"clock\"><h2>" {name} "</h2>"
            "<dl><dt>Its time</dt><dd data-testid=\"clock-time\">" {when(c.now_ms)} "</dd>"
            [if Some(c.api_user) == mpesa_user {
                let mut d = Html::new();
                d.raw("<dt>Drives</dt><dd><a href=\"/portal/mpesa\">your M-Pesa application</a></dd>");
                d
            } else {
                let mut d = Html::new();
                w!(d, "<dt>API user</dt><dd class=\"mono\"><a href=\"/portal/apiusers/" {c.api_user} "\">" {c.api_user} "</a></dd>");
                d
            }]
            "<dt>Id</dt><dd class=\"mono\">" {c.id} "</dd></dl>");
        let typed = match &refused {
            Some(
                r @ Refused {
                    at: At::Advance(id, typed),
                    ..
                },
            ) if *id == c.id => {
                said(&mut h, r);
                Some(*typed)
            }
            _ => None,
        };
        w!(h, "<form method=\"post\" action=\"/portal/clocks/" {c.id} "/advance\" class=\"inline\" role=\"group\" aria-labelledby=\"advance-" {c.id} "\">" [csrf.clone()]
            "<span id=\"advance-" {c.id} "\">Advance " {name} " by</span>");
        for span in SPANS {
            w!(h, "<button type=\"submit\" name=\"by\" value=\"" {span} "\" aria-label=\"Advance " {name} " by " {span} "\">" {span} "</button>");
        }
        w!(h, "</form><form method=\"post\" action=\"/portal/clocks/" {c.id} "/advance\" class=\"inline\">" [csrf.clone()]
            "<label for=\"by-" {c.id} "\">or advance by</label><input id=\"by-" {c.id} "\" name=\"by\" placeholder=\"90s, 15m, 3h, 2d\" size=\"10\" required value=\"" ~{typed.unwrap_or_default()} "\"");
        invalid(&mut h, typed.is_some());
        w!(h, "><button type=\"submit\">Advance</button></form>"
            "<form method=\"post\" action=\"/portal/clocks/" {c.id} "/delete\" class=\"inline\">" [csrf.clone()]
            "<button type=\"submit\" class=\"danger\" aria-label=\"Delete " {name} " (" {c.id} ")…\">Delete…</button></form></section>");
    }
    let free: Vec<_> = users
        .iter()
        .filter(|u| !clocks.iter().any(|c| c.api_user == u.id))
        .collect();
    let mpesa_free = mpesa_user.filter(|m| !clocks.iter().any(|c| c.api_user == *m));
    // Which of them have payments (a clock is refused for those): offered, but disabled
    // and said so, the first without any chosen. One look in the index a user, at most
    // the listed number of them.
    let mut used = std::collections::HashSet::new();
    for u in &free {
        let filter = mkoba_platform::portal::PaymentFilter {
            developer_id: session.developer.id,
            api_user: Some(u.id),
            limit: 1,
            ..mkoba_platform::portal::PaymentFilter::default()
        };
        match state.platform.portal().payments_after(&filter).await {
            Ok((made, _)) if !made.is_empty() => {
                used.insert(u.id);
            }
            Ok(_) => {}
            Err(e) => return crate::failed(e),
        }
    }
    w!(
        h,
        "<section class=\"card\" aria-labelledby=\"new-clock\"><h2 id=\"new-clock\">New test clock</h2>"
    );
    if free.is_empty() && mpesa_free.is_none() {
        h.raw("<p class=\"muted\">Create a new <a href=\"/portal/apiusers\">API user</a> first: a test clock drives an API user with no payments yet.</p>");
    } else {
        let (field, name) = match &refused {
            Some(
                r @ Refused {
                    at: At::New(field, name),
                    ..
                },
            ) => {
                said(&mut h, r);
                (Some(*field), *name)
            }
            _ => (None, ""),
        };
        w!(h, "<form method=\"post\" action=\"/portal/clocks\" class=\"stack\">" [csrf.clone()]
            "<label for=\"clock-user\">API user (it must have no payments yet: the list holds every one without a clock)</label><select id=\"clock-user\" name=\"api_user\"");
        invalid(&mut h, field == Some("api_user"));
        h.raw(">");
        let mut first = true;
        for u in free.iter().filter(|u| !used.contains(&u.id)) {
            w!(h, "<option value=\"" {u.id} "\"");
            h.raw(if std::mem::take(&mut first) {
                " selected"
            } else {
                ""
            });
            w!(h, ">" {u.id} " (" {u.target_environment} ")</option>");
        }
        for u in free.iter().filter(|u| used.contains(&u.id)) {
            w!(h, "<option value=\"" {u.id} "\" disabled>" {u.id} " (" {u.target_environment} "): has payments</option>");
        }
        if let Some(m) = mpesa_free {
            w!(h, "<option value=\"" {m} "\">Your M-Pesa application (sessions, mandates, payments)</option>");
        }
        w!(h, "</select><label for=\"clock-name\">Name</label><input id=\"clock-name\" name=\"name\" maxlength=\"100\" placeholder=\"Invoice expiry\" value=\"" ~{name} "\"");
        invalid(&mut h, field == Some("name"));
        w!(
            h,
            "><p class=\"hint\">It starts at the server's time now.</p><button type=\"submit\">Create test clock</button></form>"
        );
    }
    h.raw("</section>");
    (status, document("Test clocks", Some(session), "clocks", h)).into_response()
}

/// The sentence a refusal shows; `None` when the platform could not store it now (the
/// busy page).
fn refusal(e: ClockError) -> Option<String> {
    match e {
        ClockError::Unavailable => None,
        e => Some(format!("{}.", capitalised(&e.to_string()))),
    }
}

fn busy() -> Response {
    crate::failed(mkoba_platform::CreateError::Unavailable)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `GET /portal/clocks`.
pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    page(&state, &session, StatusCode::OK, None, q.get("done")).await
}

/// `POST /portal/clocks`: `api_user`, `name`.
pub(crate) async fn create(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let name = form.get("name").trim();
    let bad = async |field: &'static str, sentence: String| {
        let at = At::New(field, name);
        page(&state, &session, BAD, Some(Refused { sentence, at }), None).await
    };
    let Ok(user) = Uuid::parse_str(form.get("api_user")) else {
        return bad("api_user", "Choose an API user.".to_owned()).await;
    };
    if name.chars().count() > 100 || name.chars().any(mkoba_platform::portal::hides_text) {
        return bad(
            "name",
            "The name is at most 100 characters, on one line.".to_owned(),
        )
        .await;
    }
    match state
        .platform
        .clocks()
        .create(session.developer.id, user, name.to_owned(), None)
        .await
    {
        Ok(_) => see_other("/portal/clocks?done=created"),
        Err(e) => {
            let field = if matches!(e, ClockError::TooMany) {
                ""
            } else {
                "api_user"
            };
            match refusal(e) {
                Some(text) => bad(field, text).await,
                None => busy(),
            }
        }
    }
}

/// `POST /portal/clocks/{id}/advance`: `by` (`90s`, `15m`, `3h`, `2d`).
pub(crate) async fn advance(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return crate::not_found().await;
    };
    let typed = form.get("by");
    let bad = async |sentence: String| {
        let at = At::Advance(id, typed);
        page(&state, &session, BAD, Some(Refused { sentence, at }), None).await
    };
    let Some(by) = parse_span(typed) else {
        // A number after all (negative, or too large to count): said as the API says it.
        let said = span_refusal(typed, true).and_then(refusal);
        return bad(said.unwrap_or_else(|| {
            "Advance by a whole number and a unit: 90s, 15m, 3h or 2d.".to_owned()
        }))
        .await;
    };
    match state
        .platform
        .clocks()
        .advance(session.developer.id, id, by)
        .await
    {
        Ok(_) => see_other("/portal/clocks?done=advanced"),
        // Deleted meanwhile (another tab, the CLI): the page of clocks says so.
        Err(ClockError::NotFound) => {
            let gone = Refused {
                sentence: "You have no test clock with that id (deleted, or never yours). The clocks you have are listed below.".to_owned(),
                at: At::Page,
            };
            page(&state, &session, StatusCode::NOT_FOUND, Some(gone), None).await
        }
        Err(e) => match refusal(e) {
            Some(text) => bad(text).await,
            None => busy(),
        },
    }
}

/// `POST /portal/clocks/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return crate::not_found().await;
    };
    let on_page = |sentence: &str| {
        Some(Refused {
            sentence: sentence.to_owned(),
            at: At::Page,
        })
    };
    let gone = "You have no test clock with that id (deleted already, or never yours). The clocks you have are listed below.";
    if !super::confirm::confirmed(&form) {
        // A stale page's button: no question about a clock that is not there (as every
        // node knows them: another may have made it).
        if !state.platform.clocks().caught_up().await {
            return busy();
        }
        if !state
            .platform
            .clocks()
            .list(session.developer.id)
            .iter()
            .any(|c| c.id == id)
        {
            return page(&state, &session, StatusCode::NOT_FOUND, on_page(gone), None).await;
        }
        let action = format!("/portal/clocks/{id}/delete");
        return super::confirm::page(
            &session,
            &super::confirm::Confirm {
                title: "Delete this test clock?",
                consequences: &[
                    "Its API user's pending payments end at once as FAILED, reason EXPIRED, with their callbacks.".to_owned(),
                    "The API user goes back to real time; its settled payments keep the clock's times.".to_owned(),
                ],
                action: &action,
                fields: &[],
                button: "Delete the clock",
                cancel: "/portal/clocks",
                section: "clocks",
                ask_password: false,
            },
        );
    }
    match state
        .platform
        .clocks()
        .delete(session.developer.id, id)
        .await
    {
        Ok(()) => see_other("/portal/clocks?done=deleted"),
        Err(ClockError::NotFound) => {
            page(&state, &session, StatusCode::NOT_FOUND, on_page(gone), None).await
        }
        Err(e) => match refusal(e) {
            Some(text) => {
                page(
                    &state,
                    &session,
                    StatusCode::BAD_REQUEST,
                    on_page(&text),
                    None,
                )
                .await
            }
            None => busy(),
        },
    }
}
