//! Seed 004's library files: downloaded from the portal over HTTP, included in a program
//! the way the Getting Started guide says, and used to pay (Python with the standard
//! library only, Node.js with its own modules, Java with the JDK).

use std::path::{Path, PathBuf};

use crate::helpers::{TestApp, between};
use crate::portal::Browser;

/// Downloads a library file into `dir`, checking it comes as a download without a session.
async fn download(app: &TestApp, dir: &Path, file: &str, content_type: &str) -> PathBuf {
    let r = app
        .send("GET", &format!("/portal/library/{file}"), &[], None)
        .await;
    assert_eq!(r.status, 200, "{file}");
    assert_eq!(r.header("content-type"), Some(content_type), "{file}");
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"{file}\"").as_str())
    );
    let path = dir.join(file);
    std::fs::write(&path, &r.body).unwrap();
    path
}

/// Runs `program` with `args` in `dir`: its output, stdout then stderr.
async fn run(dir: &Path, program: &str, args: &[String]) -> (bool, String) {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const PYTHON: &str = r#"
import sys, uuid
from portalsdk import APIContext, APIMethodType, APIRequest, PortalSDKError

api_key, public_key, port = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3])
context = APIContext(api_key=api_key, public_key=public_key, ssl=False,
                     method_type=APIMethodType.GET, address='127.0.0.1', port=port,
                     path='/sandbox/ipg/v2/vodacomTZN/getSession/')
context.add_header('Origin', '*')
session = APIRequest(context).execute()
print('session', session.status_code, session.body['output_ResponseCode'])
context.api_key = session.body['output_SessionID']
context.method_type = APIMethodType.POST
context.path = '/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/'
for name, value in {'input_Amount': '10', 'input_Country': 'TZN', 'input_Currency': 'TZS',
                    'input_CustomerMSISDN': '000000000001', 'input_ServiceProviderCode': '000000',
                    'input_ThirdPartyConversationID': uuid.uuid4().hex,
                    'input_TransactionReference': 'T1234C', 'input_PurchasedItemsDesc': 'Shoes'}.items():
    context.add_parameter(name, value)
paid = APIRequest(context).execute()
print('c2b', paid.status_code, paid.body['output_ResponseCode'], paid.body['output_TransactionID'])

# A query: GET, its parameters in the query string, on a context of its own (its
# parameters are not the payment's).
query = APIContext(api_key=context.api_key, public_key=public_key, ssl=False,
                   method_type=APIMethodType.GET, address='127.0.0.1', port=port,
                   path='/sandbox/ipg/v2/vodacomTZN/queryTransactionStatus/')
query.add_header('Origin', '*')
query.add_parameter('input_QueryReference', paid.body['output_TransactionID'])
query.add_parameter('input_ServiceProviderCode', '000000')
query.add_parameter('input_Country', 'TZN')
query.add_parameter('input_ThirdPartyConversationID', uuid.uuid4().hex)
status = APIRequest(query).execute()
print('status', status.status_code, status.body['output_ResponseTransactionStatus'])

# A refusal is an answer, not an exception: a wrong API key.
wrong = APIContext(api_key='x' * 32, public_key=public_key, ssl=False,
                   method_type=APIMethodType.GET, address='127.0.0.1', port=port,
                   path='/sandbox/ipg/v2/vodacomTZN/getSession/')
wrong.add_header('Origin', '*')
refused = APIRequest(wrong).execute()
print('wrong key', refused.status_code, refused.body['output_ResponseCode'])
try:
    APIRequest(APIContext(api_key='k', public_key='not a key')).create_bearer_token()
except PortalSDKError as e:
    print('bad public key:', e)
"#;

const NODE: &str = r#"
const fs = require('fs');
const crypto = require('crypto');
const { APIContext, APIMethodType, APIRequest, PortalSDKError } = require('./portalsdk');
(async () => {
  const [apiKey, keyFile, port] = process.argv.slice(2);
  const context = new APIContext({ apiKey, publicKey: fs.readFileSync(keyFile, 'utf8'), ssl: false,
    methodType: APIMethodType.GET, address: '127.0.0.1', port: Number(port),
    path: '/sandbox/ipg/v2/vodacomTZN/getSession/' });
  context.addHeader('Origin', '*');
  const session = await new APIRequest(context).execute();
  console.log('session', session.statusCode, session.body.output_ResponseCode);
  context.apiKey = session.body.output_SessionID;
  context.methodType = APIMethodType.POST;
  context.path = '/sandbox/ipg/v2/vodacomTZN/b2cPayment/';
  const parameters = { input_Amount: '10', input_Country: 'TZN', input_Currency: 'TZS',
    input_CustomerMSISDN: '000000000001', input_ServiceProviderCode: '000000',
    input_ThirdPartyConversationID: crypto.randomUUID().replace(/-/g, ''),
    input_TransactionReference: 'T1234C', input_PaymentItemsDesc: 'Salary' };
  for (const [name, value] of Object.entries(parameters)) context.addParameter(name, value);
  const paid = await new APIRequest(context).execute();
  console.log('b2c', paid.statusCode, paid.body.output_ResponseCode, paid.body.output_TransactionID);
  // No server there: a PortalSDKError, not whatever fetch throws.
  const nobody = new APIContext({ apiKey, publicKey: context.publicKey, address: '127.0.0.1', port: 9 });
  try {
    await new APIRequest(nobody).execute();
  } catch (e) {
    console.log('no server:', e instanceof PortalSDKError);
  }
})().catch((e) => { console.error(e); process.exit(1); });
"#;

const JAVA: &str = r#"
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import portalsdk.PortalSDK.*;

public class Main {
    public static void main(String[] args) throws Exception {
        APIContext context = new APIContext();
        context.setApiKey(args[0]);
        context.setPublicKey(Files.readString(Path.of(args[1])));
        context.setSsl(false);
        context.setMethodType(APIMethodType.GET);
        context.setAddress("127.0.0.1");
        context.setPort(Integer.parseInt(args[2]));
        context.setPath("/sandbox/ipg/v2/vodacomTZN/getSession/");
        context.addHeader("Origin", "*");
        APIResponse session = new APIRequest(context).execute();
        System.out.println("session " + session.getStatusCode() + " " + session.getBody().get("output_ResponseCode"));
        context.setApiKey(session.getBody().get("output_SessionID"));
        context.setMethodType(APIMethodType.POST);
        context.setPath("/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/");
        context.addParameter("input_Amount", "10");
        context.addParameter("input_Country", "TZN");
        context.addParameter("input_Currency", "TZS");
        context.addParameter("input_CustomerMSISDN", "000000000001");
        context.addParameter("input_ServiceProviderCode", "000000");
        context.addParameter("input_ThirdPartyConversationID", UUID.randomUUID().toString().replace("-", ""));
        context.addParameter("input_TransactionReference", "T1234C");
        context.addParameter("input_PurchasedItemsDesc", "Shoes");
        APIResponse paid = new APIRequest(context).execute();
        System.out.println("c2b " + paid.getStatusCode() + " " + paid.getBody().get("output_ResponseCode") + " " + paid.getBody().get("output_TransactionID"));
        // A key too long to encrypt stops the call before anything is sent.
        context.setApiKey("a".repeat(502));
        try {
            new APIRequest(context).execute();
        } catch (APIException e) {
            System.out.println("long key: " + e.getMessage());
        }
    }
}
"#;

/// Each library downloads without a session and pays with the sandbox developer's keys:
/// a session, then a payment the ledger records (its transaction id is the platform's),
/// in Python, Node.js and Java.
#[tokio::test]
async fn each_library_downloads_and_pays_with_the_developers_keys() {
    let app = TestApp::spawn().await;
    let mpesa = app.mpesa().await;
    let dir = app.data_dir().join("library");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("public-key.txt"), &mpesa.public_key_b64).unwrap();
    let port = app.running.addr.port().to_string();
    // What each program is given: its first arguments, then the keys and the port.
    let args = |first: &[&str]| -> Vec<String> {
        let keys = [mpesa.api_key.as_str(), "public-key.txt", port.as_str()];
        first.iter().chain(&keys).map(|a| a.to_string()).collect()
    };
    let transaction_of = |out: &str, operation: &str| -> String {
        let line = out
            .lines()
            .find(|l| l.starts_with(operation))
            .unwrap_or_else(|| panic!("{out}"));
        line.rsplit(' ').next().unwrap().to_owned()
    };

    download(&app, &dir, "portalsdk.py", "text/x-python; charset=utf-8").await;
    std::fs::write(dir.join("pay.py"), PYTHON).unwrap();
    let (ok, out) = run(&dir, "python3", &args(&["pay.py"])).await;
    assert!(ok, "{out}");
    assert!(out.contains("session 200 INS-0\nc2b 201 INS-0 "), "{out}");
    assert!(out.contains("\nstatus 200 Completed\n"), "{out}");
    assert!(out.contains("\nwrong key 400 INS-989\n"), "{out}");
    assert!(
        out.contains("bad public key: the public key is not a base64 RSA public key"),
        "{out}"
    );
    let python_paid = transaction_of(&out, "c2b");

    download(&app, &dir, "portalsdk.js", "text/javascript; charset=utf-8").await;
    std::fs::write(dir.join("pay.js"), NODE).unwrap();
    let (ok, out) = run(&dir, "node", &args(&["pay.js"])).await;
    assert!(ok, "{out}");
    assert!(out.contains("session 200 INS-0\nb2c 201 INS-0 "), "{out}");
    assert!(out.contains("\nno server: true\n"), "{out}");
    let node_paid = transaction_of(&out, "b2c");

    download(
        &app,
        &dir,
        "PortalSDK.java",
        "text/x-java-source; charset=utf-8",
    )
    .await;
    std::fs::write(dir.join("Main.java"), JAVA).unwrap();
    // Made into the jar the guide says (the official portal's is a jar), without a warning
    // of javac's, and a program compiled against it.
    let words = |w: &str| w.split(' ').map(String::from).collect::<Vec<_>>();
    for (program, line) in [
        ("javac", "-Xlint:all -Werror -d portal-sdk PortalSDK.java"),
        ("jar", "cf portal-sdk.jar -C portal-sdk ."),
        (
            "javac",
            "-Xlint:all -Werror -cp portal-sdk.jar -d classes Main.java",
        ),
    ] {
        let (ok, out) = run(&dir, program, &words(line)).await;
        assert!(ok, "{program} {line}: {out}");
    }
    let (ok, out) = run(
        &dir,
        "java",
        &args(&["-cp", "portal-sdk.jar:classes", "Main"]),
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("session 200 INS-0\nc2b 201 INS-0 "), "{out}");
    assert!(
        out.contains("\nlong key: the API key is too long for the public key"),
        "{out}"
    );
    let java_paid = transaction_of(&out, "c2b");

    // The three payments are the platform's: the sandbox developer's transactions find each
    // by its transaction id.
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    b.sign_in(&login.email, &login.password).await;
    for (id, operation) in [
        (python_paid, "mpesa · c2b"),
        (node_paid, "mpesa · b2c"),
        (java_paid, "mpesa · c2b"),
    ] {
        let page = b
            .get(&format!("/portal/transactions?ref={id}"))
            .await
            .text();
        let rows = between(&page, "<tbody>", "</tbody>");
        assert_eq!(rows.matches("<tr").count(), 1, "{id}: {rows}");
        assert!(
            rows.contains(operation) && rows.contains("SUCCESSFUL"),
            "{id}: {rows}"
        );
    }

    // Unknown files are not served.
    let r = app
        .send("GET", "/portal/library/portalsdk.rb", &[], None)
        .await;
    assert_eq!(r.status, 404);
}

/// The M-Pesa page lists the three libraries with their links, and the Getting Started
/// guide says how to include one, with the same links.
#[tokio::test]
async fn the_portal_lists_the_libraries_where_developers_look() {
    let app = TestApp::spawn().await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    b.sign_in(&login.email, &login.password).await;
    let page = b.get("/portal/mpesa").await.text();
    let card = between(&page, "<h2 id=\"library\">Library files</h2>", "</section>");
    for file in ["PortalSDK.java", "portalsdk.py", "portalsdk.js"] {
        assert!(
            card.contains(&format!("href=\"/portal/library/{file}\">{file}</a>")),
            "{card}"
        );
    }
    let guide = b.get("/portal/guides/mpesa-getting-started").await.text();
    let section = between(&guide, "id=\"the-library-file\"", "id=\"configuration");
    for file in ["PortalSDK.java", "portalsdk.py", "portalsdk.js"] {
        assert!(
            section.contains(&format!("href=\"/portal/library/{file}\"")),
            "{section}"
        );
    }
    assert!(section.contains("from portalsdk import APIContext, APIMethodType, APIRequest"));
}
