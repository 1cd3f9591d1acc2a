//! The served M-Pesa OpenAPI document: public, snapshotted, and every operation in it (each
//! method and path alias too) is really served on the main listener.

use crate::helpers::TestApp;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/snapshots/mpesa-openapi.json"
);

const DOCUMENT: &str = "/_mkoba/mpesa/openapi.json";

#[tokio::test]
async fn the_mpesa_openapi_document_is_public_and_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    // No subscription key, no bearer.
    let r = app.send("GET", DOCUMENT, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.header("content-type")
    );
    let served = serde_json::to_string_pretty(&r.json()).unwrap() + "\n";
    if std::env::var_os("MKOBA_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &served).unwrap();
    }
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        served == expected,
        "the M-Pesa OpenAPI document changed; review the difference and run `MKOBA_UPDATE_SNAPSHOTS=1 cargo test -p mkoba --test api mpesa_openapi` to accept it"
    );
}

/// The path to send for a documented one: v2 in the sandbox of Tanzania.
fn concrete(path: &str) -> String {
    path.replace("{env}", "sandbox")
        .replace("{market}", "vodacomTZN")
}

/// The gateway's part of a documented path (`/{env}/ipg/v2/{market}/`, `/ipg/v1x/`).
fn prefix(path: &str) -> &'static str {
    ["/{env}/ipg/v2/{market}/", "/ipg/v1x/"]
        .into_iter()
        .find(|p| path.starts_with(p))
        .unwrap_or_else(|| panic!("{path} is under neither gateway"))
}

#[tokio::test]
async fn every_documented_mpesa_operation_is_served() {
    let app = TestApp::spawn().await;
    let doc = app.send("GET", DOCUMENT, &[], None).await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 18, "{}", paths.len());
    let mut sent = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete"].contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"].as_str().unwrap();
            // The documented method and the others it is served by, on its path and its
            // aliases.
            let mut methods = vec![method.to_ascii_uppercase()];
            for also in op["x-also-methods"].as_array().into_iter().flatten() {
                methods.push(also.as_str().unwrap().to_owned());
            }
            let mut targets = vec![concrete(path)];
            for alias in op["x-aliases"].as_array().into_iter().flatten() {
                targets.push(concrete(&format!(
                    "{}{}",
                    prefix(path),
                    alias.as_str().unwrap()
                )));
            }
            for target in &targets {
                for m in &methods {
                    // No credentials: every served operation refuses with an INS code;
                    // the dispatcher's unknown path or method would be 404 or 405 with
                    // {"output_error":…}.
                    let r = app.send(m, target, &[], None).await;
                    sent += 1;
                    assert!(
                        [400, 401].contains(&r.status),
                        "{m} {target} ({id}) without credentials: {} {}",
                        r.status,
                        r.text()
                    );
                    assert!(
                        !r.text().contains("Resource not found"),
                        "{m} {target} ({id}) is documented but not served"
                    );
                    let body = r.json();
                    let code = body["output_ResponseCode"].as_str().unwrap_or_default();
                    assert!(
                        code.starts_with("INS-"),
                        "{m} {target} ({id}) answered no INS code: {body}"
                    );
                }
            }
        }
    }
    // Every operation, its other methods and its aliases.
    assert!(sent >= 30, "{sent}");
}
