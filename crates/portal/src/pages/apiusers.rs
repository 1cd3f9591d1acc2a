//! API users and their keys: create (production-style, with callback host and target
//! environment), list, show, create and revoke keys. Users made through the sandbox
//! provisioning API with one of the developer's subscription keys appear here too.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::CreateError;
use mkoba_platform::golive::LiveAccess;
use mkoba_platform::model::ApiUser;
use uuid::Uuid;

use crate::html::Html;
use crate::{
    Form, PortalState, Problem, Session, csrf_field, document, query_params, see_other, w, when,
};

/// Whether `host` is a plain host name or IP address (what MTN calls the callback host).
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        && !host.starts_with(['.', '-'])
}

fn create_form(
    h: &mut Html,
    state: &PortalState,
    session: &Session,
    access: &LiveAccess,
    draft: (&str, &str),
    problem: Option<&Problem>,
) {
    let (host, env) = draft;
    w!(*h, "<form method=\"post\" action=\"/portal/apiusers\" class=\"grid-form\">" [csrf_field(session)]
        "<div><label for=\"host\">Callback host</label>"
        "<input id=\"host\" name=\"host\" required placeholder=\"clinic.com\" value=\"" {host} "\"" [crate::described(problem, "host", Some("host-hint"))] ">"
        "<p id=\"host-hint\" class=\"hint\">Callback URLs of this user must be on this host (<code>providerCallbackHost</code>).</p></div>"
        "<div><label for=\"environment\">Target environment</label><select id=\"environment\" name=\"environment\"" [crate::invalid_if(problem, "environment")] ">");
    for e in state.environments.iter() {
        let selected = if e == env { " selected" } else { "" };
        if access.allows_environment(e) {
            w!(*h, "<option" {selected} ">" {e} "</option>");
        } else {
            w!(*h, "<option disabled" {selected} " value=\"" {e} "\">" {e} " (after go-live approval)</option>");
        }
    }
    h.raw(concat!("</select><p class=\"hint\"><code>sandbox</code> has MTN's test numbers; a market (<code>mtnuganda</code>, …) is production: it opens when the operator approves your <a href=\"/portal/golive\">go-live request</a> for it.</p></div>",
        "<div><button type=\"submit\">Create API user</button></div></form>"));
}

async fn active_keys(
    state: &PortalState,
    user: &ApiUser,
) -> Result<usize, mkoba_platform::Internal> {
    Ok(state
        .platform
        .portal()
        .api_keys_of(&user.id)
        .await?
        .iter()
        .filter(|k| k.revoked_at_ms.is_none())
        .count())
}

async fn list_page(
    state: &PortalState,
    session: &Session,
    status: StatusCode,
    error: Option<&Problem>,
    done: Option<&String>,
    host: &str,
    env: &str,
) -> Response {
    let users = match state
        .platform
        .portal()
        .api_users_of(session.developer.id)
        .await
    {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let access = match state
        .platform
        .portal()
        .live_access(session.developer.id)
        .await
    {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let mut h = Html::new();
    w!(h, "<h1>API users</h1>" [super::notice(done)]
        "<p class=\"lead\">An API user and its API key are the Basic credentials of <code>POST /{product}/token/</code>. On MTN, production users are created in the partner portal and sandbox users through the provisioning API; here you can do both.</p>"
        "<h2>Create an API user</h2>");
    crate::form_error(&mut h, error);
    create_form(&mut h, state, session, &access, (host, env), error);
    w!(h, "<h2>Your API users <span class=\"count\">" {users.len()} "</span></h2>");
    super::listed_newest(&mut h, users.len());
    if users.is_empty() {
        h.raw("<p class=\"muted\">None yet.</p>");
    } else {
        h.raw("<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">API user</th><th scope=\"col\">Environment</th><th scope=\"col\">Callback host</th><th scope=\"col\">Active keys</th><th scope=\"col\">Created</th></tr></thead><tbody>");
        for u in &users {
            let n = match active_keys(state, u).await {
                Ok(v) => v,
                Err(e) => return crate::failed(e),
            };
            w!(h, "<tr><td><a class=\"mono\" href=\"/portal/apiusers/" {u.id} "\">" {u.id} "</a></td><td>" {u.target_environment} "</td><td>" {u.provider_callback_host} "</td><td>" {n} "</td><td>" {when(u.created_at_ms)} "</td></tr>");
        }
        h.raw("</tbody></table></div>");
    }
    (status, document("API users", Some(session), "apiusers", h)).into_response()
}

pub(crate) async fn list(
    State(state): State<PortalState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let q = query_params(query.as_deref());
    list_page(
        &state,
        &session,
        StatusCode::OK,
        None,
        q.get("done"),
        "",
        "sandbox",
    )
    .await
}

pub(crate) async fn create(
    State(state): State<PortalState>,
    session: Session,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let host = form.get("host").to_ascii_lowercase();
    let env = form.get("environment").to_owned();
    let refuse = async |field: &'static str, msg: &str| {
        list_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            Some(&(field, msg.to_owned())),
            None,
            &host,
            &env,
        )
        .await
    };
    if !valid_host(&host) {
        return refuse(
            "host",
            "The callback host must be a host name such as clinic.com or an IP address, without scheme or path.",
        ).await;
    }
    if !state.environments.contains(&env) {
        return refuse(
            "environment",
            "Choose one of the listed target environments.",
        )
        .await;
    }
    match state
        .platform
        .portal()
        .live_access(session.developer.id)
        .await
    {
        Ok(access) if access.allows_environment(&env) => {}
        Ok(_) => {
            return list_page(
                &state,
                &session,
                StatusCode::FORBIDDEN,
                Some(&("environment", format!(
                    "{env} is a production environment: it opens once the operator approves your go-live request for it (My profile → Go live)."
                ))),
                None,
                &host,
                "sandbox",
            ).await;
        }
        Err(e) => return crate::failed(e),
    }
    let user = ApiUser {
        id: Uuid::new_v4(),
        developer_id: session.developer.id,
        provider_callback_host: host.clone(),
        target_environment: env.clone(),
        created_at_ms: state.platform.now_ms(),
    };
    let id = user.id;
    match state.platform.credentials().create_api_user(user).await {
        Ok(()) => {}
        Err(CreateError::Duplicate) => return refuse("", "That id is taken; try again.").await,
        Err(e) => return crate::failed(e),
    }
    tracing::info!(api_user.id = %id, environment = %env, "API user created in the portal");
    new_key_response(&state, &session, id).await
}

/// The one-time flash that carries a new API key from the POST that made it to the page
/// it redirects to (post/redirect/get: reloading that page sends nothing again). The key
/// never goes into a URL: it travels in a cookie that only that user's page receives
/// (`Path=/portal/apiusers/{id}`, `HttpOnly`, `SameSite=Strict`), signed with the
/// platform's secret and bound to the developer and the API user, valid for
/// [`FLASH_TTL_MS`]; the page that shows the key deletes the cookie, so a reload (or any
/// later visit) shows it no more.
const FLASH_COOKIE: &str = "mkoba_new_api_key";
const FLASH_PURPOSE: &str = "portal new api key";
const FLASH_TTL_MS: i64 = 120_000;

fn flash_cookie(state: &PortalState, id: Uuid, value: &str, max_age: i64) -> HeaderValue {
    let mut c = format!(
        "{FLASH_COOKIE}={value}; Path=/portal/apiusers/{id}; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    );
    if state.config.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The flash cookie's value, if the request carries one.
fn flash_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == FLASH_COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The key in a flash, if it is genuine, unexpired and for this developer and API user.
fn open_flash(state: &PortalState, session: &Session, id: Uuid, token: &str) -> Option<String> {
    let claims = state
        .platform
        .credentials()
        .verify_claims(FLASH_PURPOSE, token)
        .ok()?;
    let fresh = claims["exp"]
        .as_i64()
        .is_some_and(|exp| exp > state.platform.now_ms());
    let ours = claims["dev"].as_i64() == Some(session.developer.id)
        && claims["user"].as_str() == Some(id.to_string().as_str());
    let credentials = state.platform.credentials();
    (fresh && ours)
        .then(|| claims["key"].as_str())
        .flatten()
        .and_then(|sealed| credentials.unseal(FLASH_PURPOSE, sealed))
}

/// Creates a key, then redirects to the user's page, which shows it once.
async fn new_key_response(state: &PortalState, session: &Session, id: Uuid) -> Response {
    let key = match state.platform.credentials().create_api_key(id).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let token = state.platform.credentials().sign_claims(
        FLASH_PURPOSE,
        &serde_json::json!({
            "dev": session.developer.id,
            "user": id.to_string(),
            // Encrypted: the cookie store, and a proxy logging cookies, hold no key.
            "key": state.platform.credentials().seal(FLASH_PURPOSE, &key),
            "exp": state.platform.now_ms() + FLASH_TTL_MS,
        }),
    );
    let mut r = see_other(&format!("/portal/apiusers/{id}?done=key-created"));
    r.headers_mut().append(
        header::SET_COOKIE,
        flash_cookie(state, id, &token, FLASH_TTL_MS / 1000),
    );
    r
}

async fn show_page(
    state: &PortalState,
    session: &Session,
    id: Uuid,
    new_key: Option<&str>,
    done: Option<&String>,
) -> Response {
    let user = match state
        .platform
        .portal()
        .owned_api_user(session.developer.id, &id)
        .await
    {
        Ok(Some(u)) => u,
        Ok(None) => return not_found_page(session),
        Err(e) => return crate::failed(e),
    };
    let keys = match state.platform.portal().api_keys_of(&id).await {
        Ok(v) => v,
        Err(e) => return crate::failed(e),
    };
    let csrf = csrf_field(session);
    let mut h = Html::new();
    w!(h, "<p class=\"crumbs\"><a href=\"/portal/apiusers\">API users</a> /</p><h1 class=\"mono\">" {user.id} "</h1>");
    if done.is_some_and(|d| d == "key-created") {
        h.raw("<p class=\"notice warn\" role=\"status\" data-testid=\"key-shown-once\">An API key was created and shown once; it is stored only as a hash and cannot be shown again. Lost it? Create another below (and revoke the old one).</p>");
    } else {
        h.html(&super::notice(done));
    }
    if let Some(key) = new_key {
        w!(h, "<section class=\"reveal\" aria-labelledby=\"newkey\"><h2 id=\"newkey\">Your new API key</h2>"
            "<p>Copy it now: it is stored only as a hash and is never shown again. Lost it? Create another.</p>"
            "<p><code class=\"secret big\" data-testid=\"new-api-key\">" {key} "</code> <button type=\"button\" class=\"copy\" data-copy=\"" {key} "\" aria-label=\"Copy the new API key\" hidden>Copy</button></p>"
            "<p class=\"hint\">Token: <code>POST /collection/token/</code> with <code>Authorization: Basic base64(" {user.id} ":&lt;key&gt;)</code>.</p></section>");
    }
    w!(h, "<dl class=\"facts\"><dt>Target environment</dt><dd>" {user.target_environment} "</dd>"
        "<dt>Callback host</dt><dd>" {user.provider_callback_host} "</dd>"
        "<dt>Created</dt><dd>" {when(user.created_at_ms)} "</dd>"
        "<dt>Transactions</dt><dd><a href=\"/portal/transactions?api_user=" {user.id} "\">This user's transactions</a></dd></dl>"
        "<h2>API keys</h2>"
        "<form method=\"post\" action=\"/portal/apiusers/" {user.id} "/keys\">" [csrf] "<button type=\"submit\">Create API key</button></form>");
    if keys.is_empty() {
        h.raw("<p class=\"muted\">No keys yet.</p>");
    } else {
        h.raw("<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">Created</th><th scope=\"col\">Status</th><th scope=\"col\"><span class=\"sr-only\">Action</span></th></tr></thead><tbody>");
        // Numbered per API user, oldest first (the store's ids count every developer's
        // keys: a new developer's first key was #8).
        let mut ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        for k in &keys {
            let number = ids.partition_point(|&id| id < k.id) + 1;
            w!(h, "<tr><td>#" {number});
            // Its last characters, to tell it from the others (keys made before they were
            // kept have none).
            if let Some(ending) = &k.ending {
                w!(h, " <code data-testid=\"key-ending\">…" {ending} "</code>");
            }
            w!(h, "</td><td>" {when(k.created_at_ms)} "</td>");
            match k.revoked_at_ms {
                Some(at) => {
                    w!(h, "<td><span class=\"badge failed\">revoked</span> " {when(at)} "</td><td></td></tr>")
                }
                None => {
                    w!(h, "<td><span class=\"badge ok\">active</span></td><td><form method=\"post\" action=\"/portal/apiusers/" {user.id} "/keys/" {k.id} "/revoke\">" [csrf]
                    "<button type=\"submit\" class=\"danger\" aria-label=\"Revoke key " {number} "\">Revoke</button></form></td></tr>")
                }
            }
        }
        h.raw("</tbody></table></div><p class=\"hint\">A revoked key can no longer get tokens; tokens already issued stay valid until they expire.</p>");
    }
    let title = format!("API user {}", user.id);
    document(&title, Some(session), "apiusers", h).into_response()
}

pub(crate) fn not_found_page(session: &Session) -> Response {
    let mut h = Html::new();
    h.raw("<h1>Not found</h1><p>There is nothing here for your account.</p><p><a href=\"/portal\">Back to the overview</a></p>");
    (
        StatusCode::NOT_FOUND,
        document("Not found", Some(session), "", h),
    )
        .into_response()
}

fn parse_id(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s).ok()
}

pub(crate) async fn show(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = query_params(query.as_deref());
    let Some(id) = parse_id(&id) else {
        return not_found_page(&session);
    };
    let Some(token) = flash_of(&headers) else {
        return show_page(&state, &session, id, None, q.get("done")).await;
    };
    // Shown once: the cookie goes whatever it held.
    let key = open_flash(&state, &session, id, &token);
    let done = if key.is_some() { None } else { q.get("done") };
    let mut r = show_page(&state, &session, id, key.as_deref(), done).await;
    r.headers_mut()
        .append(header::SET_COOKIE, flash_cookie(&state, id, "", 0));
    r
}

pub(crate) async fn create_key(
    State(state): State<PortalState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if !session.check(&Form::parse(&body)) {
        return crate::csrf_refused();
    }
    let Some(id) = parse_id(&id) else {
        return not_found_page(&session);
    };
    match state
        .platform
        .portal()
        .owned_api_user(session.developer.id, &id)
        .await
    {
        Ok(Some(_)) => new_key_response(&state, &session, id).await,
        Ok(None) => not_found_page(&session),
        Err(e) => crate::failed(e),
    }
}

pub(crate) async fn revoke_key(
    State(state): State<PortalState>,
    session: Session,
    Path((id, key_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !session.check(&form) {
        return crate::csrf_refused();
    }
    let (Some(id), Ok(key_id)) = (parse_id(&id), key_id.parse::<i64>()) else {
        return not_found_page(&session);
    };
    if !super::confirm::confirmed(&form) {
        // No question about a key that is not this developer's, or not there to revoke
        // (as the test clocks' Delete asks nothing about a clock that is gone).
        let owned = match state
            .platform
            .portal()
            .owned_api_user(session.developer.id, &id)
            .await
        {
            Ok(owned) => owned.is_some(),
            Err(e) => return crate::failed(e),
        };
        let live = owned
            && match state.platform.portal().api_keys_of(&id).await {
                Ok(keys) => keys
                    .iter()
                    .any(|k| k.id == key_id && k.revoked_at_ms.is_none()),
                Err(e) => return crate::failed(e),
            };
        if !live {
            return not_found_page(&session);
        }
        let action = format!("/portal/apiusers/{id}/keys/{key_id}/revoke");
        let cancel = format!("/portal/apiusers/{id}");
        return super::confirm::page(
            &session,
            &super::confirm::Confirm {
                title: "Revoke this API key?",
                consequences: &[
                    "The key stops working at once: token requests with it get login_failed."
                        .to_owned(),
                    "Tokens already issued with it live until they expire.".to_owned(),
                ],
                action: &action,
                fields: &[],
                button: "Revoke the key",
                cancel: &cancel,
                section: "apiusers",
                ask_password: false,
            },
        );
    }
    match state
        .platform
        .portal()
        .revoke_api_key(session.developer.id, id, key_id)
        .await
    {
        Ok(true) => see_other(&format!("/portal/apiusers/{id}?done=revoked")),
        Ok(false) => not_found_page(&session),
        Err(e) => crate::failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_hosts_are_bare_hosts() {
        assert!(valid_host("clinic.com"));
        assert!(valid_host("127.0.0.1"));
        assert!(!valid_host("https://clinic.com"));
        assert!(!valid_host("clinic.com/cb"));
        assert!(!valid_host(""));
        assert!(!valid_host("-x.com"));
    }
}
