//! The served OpenAPI document: snapshotted, and every operation in it is really served.

use crate::helpers::TestApp;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/snapshots/openapi.json"
);

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    let r = app.send("GET", "/_mkoba/openapi.json", &[], None).await;
    assert_eq!(r.status, 200);
    let served = serde_json::to_string_pretty(&r.json()).unwrap() + "\n";
    if std::env::var_os("MKOBA_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &served).unwrap();
    }
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        served == expected,
        "the OpenAPI document changed; review the difference and run `MKOBA_UPDATE_SNAPSHOTS=1 cargo test -p mkoba --test api openapi` to accept it"
    );
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = TestApp::spawn().await;
    let doc = app
        .send("GET", "/_mkoba/openapi.json", &[], None)
        .await
        .json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 40, "{}", paths.len());
    let id = uuid::Uuid::new_v4().to_string();
    for (path, methods) in paths {
        let product = path
            .split('/')
            .nth(1)
            .filter(|p| ["collection", "disbursement", "remittance"].contains(p))
            .unwrap_or("collection");
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { id.as_str() } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in methods.as_object().unwrap().keys() {
            let r = app
                .send(
                    &method.to_ascii_uppercase(),
                    &concrete,
                    &[("Ocp-Apim-Subscription-Key", app.key(product))],
                    None,
                )
                .await;
            assert!(
                !(r.status == 404 && r.text().contains("Resource not found")),
                "{method} {path} is documented but not served"
            );
        }
    }
}
