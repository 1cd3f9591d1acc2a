//! Sample code for one API operation, in curl, Python, Java, JavaScript and Rust, written
//! from a [`Sample`]: the operation's method, URL, headers and example body, with the
//! signed-in developer's own subscription key, API user and M-Pesa public key filled in.
//!
//! Secrets the portal does not keep in clear (a MoMo API key) and ids only the developer
//! knows (the reference id of an earlier payment) are read from environment variables
//! (`API_KEY`, `REFERENCE_ID`, …) that each sample names at its top. The M-Pesa API key,
//! which the portal keeps (seed 004: the samples carry "your unique API Key and Public
//! Key"), is the default of its variable: the sample runs as it is, and `MPESA_API_KEY` set
//! in the environment wins (a name of its own: a MoMo API key exported as `API_KEY` for
//! the MoMo samples is no M-Pesa key).
//!
//! M-Pesa bearers are made as the gateway expects them: base64 of the RSA PKCS#1 v1.5
//! encryption of the secret under the platform public key (base64 SPKI DER): OpenSSL in
//! curl, pycryptodome in Python, `javax.crypto` in Java, `crypto.publicEncrypt` in Node,
//! `mkoba_sdk::mpesa::PublicKey` in Rust. On the v2 gateway the secret is the API key for
//! `getSession` and the session id it returns for every other call; on v1x it is the API
//! key on every call.

use std::fmt::Write as _;

use mkoba_api_types::mpesa::Market;
use serde_json::Value;

/// Which API an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gateway {
    Momo,
    /// M-Pesa v2: `/{env}/ipg/v2/{market}/…`, a session after `getSession`.
    V2,
    /// M-Pesa v1x: `/ipg/v1x/…`, the API key on every call.
    V1x,
}

/// How a MoMo operation authenticates besides the subscription key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MomoAuth {
    /// Subscription key only.
    Key,
    /// `Basic base64(apiUser:apiKey)`.
    Basic,
    /// `Bearer` access token from `POST /{product}/token/`.
    Token,
    /// `Bearer` oauth2 access token of a consent (from `OAUTH2_TOKEN`).
    Oauth2,
    /// Nothing at all (the Collection Widget's page-side endpoints).
    Public,
}

/// A path segment: literal text or an environment variable the developer sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(String),
    Var(&'static str),
}

/// A header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HVal {
    Lit(String),
    /// A constant the sample declares (`SUBSCRIPTION_KEY`).
    Const(&'static str),
    /// `Bearer <token>` from the token step (MoMo).
    Token,
    /// `Bearer <oauth2 token>` from `OAUTH2_TOKEN` (MoMo consent).
    Oauth2,
    /// `Basic base64(API_USER:API_KEY)` (MoMo).
    Basic,
    /// A fresh UUID v4.
    NewUuid,
    /// The encrypted M-Pesa bearer of the API key (v2 `getSession`, every v1x call).
    KeyBearer,
    /// The encrypted M-Pesa bearer of the session id `getSession` returned (v2).
    SessionBearer,
}

/// A constant the sample declares with its value, and what it is.
#[derive(Debug, Clone)]
pub(crate) struct Const {
    pub name: &'static str,
    pub value: String,
    pub note: String,
}

/// An environment variable the sample reads, and where its value comes from.
#[derive(Debug, Clone)]
pub(crate) struct EnvVar {
    pub name: &'static str,
    pub note: String,
    /// Its value when the environment has none (letters and digits only).
    pub default: Option<String>,
}

/// Everything the samples of one operation need.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub gateway: Gateway,
    pub operation_id: String,
    pub summary: String,
    pub method: String,
    /// `http://host:port`.
    pub base: String,
    pub path: Vec<Seg>,
    /// Query parameters (M-Pesa GETs).
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, HVal)>,
    pub body: Option<Value>,
    /// Send the body as `application/x-www-form-urlencoded` (the consent endpoints).
    pub form: bool,
    pub consts: Vec<Const>,
    pub env: Vec<EnvVar>,
    /// MoMo: the product whose `/token/` the Token step calls.
    pub product: Option<String>,
    pub momo_auth: MomoAuth,
    /// M-Pesa v2: the market, for the `getSession` URL and the Rust client.
    pub market: Option<Market>,
    /// M-Pesa: the `Origin` sent.
    pub origin: String,
    /// Body or query fields the samples read from a variable at run time, as `(field,
    /// VAR)`: an id only the developer knows (an environment variable, in `env`) or the
    /// fresh one (`fresh`). The page's Send Request box keeps the example values.
    pub field_vars: Vec<(String, &'static str)>,
    /// Variables the samples set to a fresh id (32 hex digits) on every run: the gateway
    /// refuses a conversation id, third-party reference or mandate reference it has seen.
    pub fresh: Vec<&'static str>,
}

/// One language's sample.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub key: &'static str,
    pub label: &'static str,
    pub text: String,
}

impl Sample {
    /// Every language's sample, in the order the page shows them.
    pub(crate) fn all(&self) -> Vec<Code> {
        let s = &self.coded();
        let same = |v: &str| v.to_owned();
        let rust_var = |v: &str| format!("{}.as_str()", v.to_ascii_lowercase());
        vec![
            Code {
                key: "curl",
                label: "curl",
                text: curl(s),
            },
            Code {
                key: "python",
                label: "Python",
                text: s.fill(python(s), same, same),
            },
            Code {
                key: "java",
                label: "Java",
                text: s.fill(java(s), same, |v| format!("\" + {v} + \"")),
            },
            Code {
                key: "javascript",
                label: "JavaScript",
                text: s.fill(javascript(s), same, same),
            },
            Code {
                key: "rust",
                label: "Rust",
                // The typed MoMo calls parse their body from a raw string: they set
                // what varies after parsing (`momo_rust_call`).
                text: if s.gateway == Gateway::Momo && momo_rust_call(self).is_some() {
                    rust(self)
                } else {
                    s.fill(rust(s), rust_var, rust_var)
                },
            },
        ]
    }

    /// The sample with each of [`Sample::field_vars`] holding its [`placeholder`], for a
    /// language to write as its variable ([`Sample::fill`]).
    fn coded(&self) -> Sample {
        let mut s = self.clone();
        for (field, var) in &self.field_vars {
            if let Some(v) = s.body.as_mut().and_then(|b| b.get_mut(field)) {
                *v = Value::String(placeholder(var));
            }
            for (k, v) in &mut s.query {
                if k == field {
                    *v = placeholder(var);
                }
            }
        }
        s
    }

    /// `text` with each placeholder written as a string literal replaced by `quoted(VAR)`,
    /// and each inside another literal by `inner(VAR)`.
    fn fill(
        &self,
        mut text: String,
        quoted: impl Fn(&str) -> String,
        inner: impl Fn(&str) -> String,
    ) -> String {
        for (_, var) in &self.field_vars {
            let p = placeholder(var);
            text = text
                .replace(&format!("\"{p}\""), &quoted(var))
                .replace(&p, &inner(var));
        }
        text
    }

    fn needs_session(&self) -> bool {
        self.headers.iter().any(|(_, v)| *v == HVal::SessionBearer)
    }

    fn needs_key_bearer(&self) -> bool {
        self.headers
            .iter()
            .any(|(_, v)| matches!(v, HVal::KeyBearer | HVal::SessionBearer))
    }

    fn needs_uuid(&self) -> bool {
        self.headers.iter().any(|(_, v)| *v == HVal::NewUuid)
    }

    /// Each fresh variable with the field it fills, for the samples to print.
    fn fresh_fields(&self) -> Vec<(&str, &'static str)> {
        self.field_vars
            .iter()
            .filter(|(_, v)| self.fresh.contains(v))
            .map(|(f, v)| (f.as_str(), *v))
            .collect()
    }

    /// The note of the fresh variable's declaration.
    const FRESH_NOTE: &'static str = "a fresh id each run: the gateway refuses one it has seen";

    /// The URL with `{VAR}`-style holes rendered by `var`.
    fn url_with(&self, var: impl Fn(&str) -> String) -> String {
        let mut u = self.base.clone();
        for s in &self.path {
            match s {
                Seg::Lit(t) => u.push_str(t),
                Seg::Var(v) => u.push_str(&var(v)),
            }
        }
        u
    }

    fn has_vars(&self) -> bool {
        self.path.iter().any(|s| matches!(s, Seg::Var(_)))
    }

    fn query_string(&self) -> String {
        if self.query.is_empty() {
            return String::new();
        }
        let pairs: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", crate::form_encode(k), crate::form_encode(v)))
            .collect();
        format!("?{}", pairs.join("&"))
    }

    /// The `getSession` URL of the v2 market (same host, same environment).
    fn session_url(&self) -> String {
        let market = self.market.map_or("vodacomTZN", Market::path);
        format!("{}/sandbox/ipg/v2/{market}/getSession/", self.base)
    }

    fn body_text(&self) -> Option<String> {
        let body = self.body.as_ref()?;
        if self.form {
            let pairs: Vec<String> = body
                .as_object()?
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{}={}", crate::form_encode(k), crate::form_encode(&v))
                })
                .collect();
            Some(pairs.join("&"))
        } else {
            Some(body.to_string())
        }
    }

    fn content_type(&self) -> Option<&'static str> {
        self.body.as_ref()?;
        Some(if self.form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        })
    }
}

/// What a variable field holds in [`Sample::coded`]: letters and underscores, which survive
/// every quoting and form encoding the samples use.
fn placeholder(var: &str) -> String {
    format!("__{var}__")
}

/// `'text'` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A double-quoted string literal for Python, Java, JavaScript and Rust.
fn dq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- curl ----------------------------------------------------------------------------------

fn curl(s: &Sample) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {} ({})", s.summary, s.operation_id);
    for c in s.consts.iter().filter(|c| c.name != "BASE") {
        let _ = writeln!(o, "{}={}   # {}", c.name, sh_quote(&c.value), c.note);
    }
    for e in &s.env {
        match &e.default {
            Some(d) => {
                let _ = writeln!(o, "{0}=\"${{{0}:-{1}}}\"   # {2}", e.name, d, e.note);
            }
            None => {
                let _ = writeln!(o, "# export {}=…   # {}", e.name, e.note);
            }
        }
    }
    if s.needs_key_bearer() {
        o.push_str("\n# The bearer: base64(RSA-PKCS#1 v1.5(secret)) under the public key.\n");
        o.push_str(
            "printf %s \"$PUBLIC_KEY\" | base64 -d | openssl pkey -pubin -inform DER -out mpesa-public-key.pem\n",
        );
        o.push_str("bearer() { printf %s \"$1\" | openssl pkeyutl -encrypt -pubin -inkey mpesa-public-key.pem -pkeyopt rsa_padding_mode:pkcs1 | base64 -w0; }\n");
    }
    if s.momo_auth == MomoAuth::Token {
        let product = s.product.as_deref().unwrap_or("collection");
        let _ = writeln!(
            o,
            "\n# An access token of the API user (valid for an hour); the answer is said when it has none.\nANSWER=$(curl -s -X POST \"{}/{product}/token/\" -u \"$API_USER:$API_KEY\" \\\n  -H \"Ocp-Apim-Subscription-Key: $SUBSCRIPTION_KEY\")\nTOKEN=$(printf %s \"$ANSWER\" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"access_token\", \"\"))' 2>/dev/null)\n[ -n \"$TOKEN\" ] || echo \"No access token; the token endpoint answered: $ANSWER\" >&2",
            s.base
        );
    }
    if s.needs_session() {
        let _ = writeln!(
            o,
            "\n# A session: getSession with the encrypted API key; the answer is said when it has none.\nANSWER=$(curl -s \"{}\" -H {} -H \"Authorization: Bearer $(bearer \"$MPESA_API_KEY\")\")\nSESSION=$(printf %s \"$ANSWER\" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"output_SessionID\", \"\"))' 2>/dev/null)\n[ -n \"$SESSION\" ] || echo \"No session; getSession answered: $ANSWER\" >&2",
            s.session_url(),
            sh_quote(&format!("Origin: {}", s.origin))
        );
    }
    if s.needs_uuid() {
        o.push_str("\nX_REFERENCE_ID=$(cat /proc/sys/kernel/random/uuid)   # a fresh UUID: the new resource's id\n");
    }
    for v in &s.fresh {
        let _ = writeln!(
            o,
            "\n{v}=$(cat /proc/sys/kernel/random/uuid | tr -d -)   # {}",
            Sample::FRESH_NOTE
        );
    }
    o.push('\n');
    // In double quotes a variable is `$VAR`; in single quotes (the body) the quotes close
    // around it.
    let url = s.fill(
        format!("{}{}", s.url_with(|v| format!("${v}")), s.query_string()),
        |v| format!("${v}"),
        |v| format!("${v}"),
    );
    let _ = write!(o, "curl -i -X {} \"{url}\"", s.method);
    for (name, value) in &s.headers {
        let line = match value {
            HVal::Lit(v) => sh_quote(&format!("{name}: {v}")),
            HVal::Const(c) => format!("\"{name}: ${c}\""),
            HVal::Token => format!("\"{name}: Bearer $TOKEN\""),
            HVal::Oauth2 => format!("\"{name}: Bearer $OAUTH2_TOKEN\""),
            HVal::Basic => {
                let _ = write!(o, " \\\n  -u \"$API_USER:$API_KEY\"");
                continue;
            }
            HVal::NewUuid => format!("\"{name}: $X_REFERENCE_ID\""),
            HVal::KeyBearer => format!("\"{name}: Bearer $(bearer \"$MPESA_API_KEY\")\""),
            HVal::SessionBearer => format!("\"{name}: Bearer $(bearer \"$SESSION\")\""),
        };
        let _ = write!(o, " \\\n  -H {line}");
    }
    if let Some(ct) = s.content_type() {
        let _ = write!(o, " \\\n  -H {}", sh_quote(&format!("Content-Type: {ct}")));
    }
    if let Some(body) = s.body_text() {
        let body = s.fill(
            sh_quote(&body),
            |v| format!("\"'\"${v}\"'\""),
            |v| format!("'\"${v}\"'"),
        );
        let _ = write!(o, " \\\n  -d {body}");
    } else if s.method == "POST" {
        // A bodyless POST needs Content-Length: 0 (curl sends it with -d '').
        o.push_str(" \\\n  -d ''");
    }
    o.push('\n');
    if s.needs_uuid() || !s.fresh.is_empty() {
        // On a line of its own: the answer's body ends without one.
        o.push_str("echo\n");
    }
    if s.needs_uuid() {
        o.push_str("echo \"X-Reference-Id: $X_REFERENCE_ID\"\n");
    }
    for (field, v) in s.fresh_fields() {
        let _ = writeln!(o, "echo \"{field}: ${v}\"");
    }
    o
}

// ---- Python --------------------------------------------------------------------------------

/// A JSON value as a Python literal.
fn py_value(v: &Value, indent: usize) -> String {
    let pad = "    ".repeat(indent + 1);
    let end = "    ".repeat(indent);
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => dq(s),
        Value::Array(a) if a.is_empty() => "[]".to_owned(),
        Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| format!("{pad}{},", py_value(x, indent + 1)))
                .collect();
            format!("[\n{}\n{end}]", items.join("\n"))
        }
        Value::Object(m) if m.is_empty() => "{}".to_owned(),
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{pad}{}: {},", dq(k), py_value(x, indent + 1)))
                .collect();
            format!("{{\n{}\n{end}}}", items.join("\n"))
        }
    }
}

fn python(s: &Sample) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {} ({})", s.summary, s.operation_id);
    o.push_str("# pip install requests");
    if s.needs_key_bearer() {
        o.push_str(" pycryptodome");
    }
    o.push('\n');
    if !s.env.is_empty() {
        o.push_str("import os\n");
    }
    if s.needs_uuid() || !s.fresh.is_empty() {
        o.push_str("import uuid\n");
    }
    if s.needs_key_bearer() {
        o.push_str("from base64 import b64decode, b64encode\n");
    }
    o.push_str("\nimport requests\n");
    if s.needs_key_bearer() {
        o.push_str("from Crypto.Cipher import PKCS1_v1_5\nfrom Crypto.PublicKey import RSA\n");
    }
    o.push('\n');
    for c in s.consts.iter().filter(|c| c.name != "BASE") {
        let _ = writeln!(o, "{} = {}  # {}", c.name, dq(&c.value), c.note);
    }
    for e in &s.env {
        let read = match &e.default {
            Some(d) => format!("os.environ.get({}) or {}", dq(e.name), dq(d)),
            None => format!("os.environ[{}]", dq(e.name)),
        };
        let _ = writeln!(o, "{} = {read}  # {}", e.name, e.note);
    }
    for v in &s.fresh {
        let _ = writeln!(o, "{v} = uuid.uuid4().hex  # {}", Sample::FRESH_NOTE);
    }
    if s.needs_key_bearer() {
        o.push_str(concat!(
            "\n\ndef bearer(secret):\n",
            "    \"\"\"base64(RSA-PKCS#1 v1.5(secret)) under the platform public key.\"\"\"\n",
            "    key = RSA.importKey(b64decode(PUBLIC_KEY))\n",
            "    cipher = PKCS1_v1_5.new(key)\n",
            "    return \"Bearer \" + b64encode(cipher.encrypt(secret.encode(\"ascii\"))).decode(\"ascii\")\n\n",
        ));
    }
    if s.momo_auth == MomoAuth::Token {
        let product = s.product.as_deref().unwrap_or("collection");
        let _ = writeln!(
            o,
            "\n# An access token of the API user (valid for an hour).\nanswer = requests.post(\n    {},\n    auth=(API_USER, API_KEY),\n    headers={{\"Ocp-Apim-Subscription-Key\": SUBSCRIPTION_KEY}},\n)\nif \"access_token\" not in answer.text:\n    raise SystemExit(f\"No access token; the token endpoint answered {{answer.status_code}}: {{answer.text}}\")\ntoken = answer.json()[\"access_token\"]",
            dq(&format!("{}/{product}/token/", s.base))
        );
    }
    if s.needs_session() {
        let _ = writeln!(
            o,
            "\n# A session: getSession with the encrypted API key.\nanswer = requests.get(\n    {},\n    headers={{\"Origin\": {}, \"Authorization\": bearer(MPESA_API_KEY)}},\n)\nif \"output_SessionID\" not in answer.text:\n    raise SystemExit(f\"No session; getSession answered {{answer.status_code}}: {{answer.text}}\")\nsession = answer.json()[\"output_SessionID\"]",
            dq(&s.session_url()),
            dq(&s.origin)
        );
    }
    if s.needs_uuid() {
        o.push_str("\nx_reference_id = str(uuid.uuid4())  # the new resource's id\n");
    }
    o.push('\n');
    let url = if s.has_vars() {
        format!("f{}", dq(&s.url_with(|v| format!("{{{v}}}"))))
    } else {
        dq(&s.url_with(|_| String::new()))
    };
    let _ = writeln!(
        o,
        "response = requests.request(\n    {},\n    {url},",
        dq(&s.method)
    );
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let v = match value {
            HVal::Lit(v) => dq(v),
            HVal::Const(c) => (*c).to_owned(),
            HVal::Token => "f\"Bearer {token}\"".to_owned(),
            HVal::Oauth2 => "f\"Bearer {OAUTH2_TOKEN}\"".to_owned(),
            HVal::Basic => {
                o.push_str("    auth=(API_USER, API_KEY),\n");
                continue;
            }
            HVal::NewUuid => "x_reference_id".to_owned(),
            HVal::KeyBearer => "bearer(MPESA_API_KEY)".to_owned(),
            HVal::SessionBearer => "bearer(session)".to_owned(),
        };
        headers.push(format!("        {}: {v},", dq(name)));
    }
    if !headers.is_empty() {
        let _ = writeln!(o, "    headers={{\n{}\n    }},", headers.join("\n"));
    }
    if !s.query.is_empty() {
        let q: serde_json::Map<String, Value> = s
            .query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let _ = writeln!(o, "    params={},", py_value(&Value::Object(q), 1));
    }
    if let Some(body) = &s.body {
        let _ = writeln!(
            o,
            "    {}={},",
            if s.form { "data" } else { "json" },
            py_value(body, 1)
        );
    }
    o.push_str(")\n");
    if s.needs_uuid() {
        o.push_str("print(\"X-Reference-Id:\", x_reference_id)\n");
    }
    o.push_str("print(response.status_code, response.text)\n");
    for (field, v) in s.fresh_fields() {
        let _ = writeln!(o, "print(\"{field}:\", {v})");
    }
    o
}

// ---- Java ----------------------------------------------------------------------------------

fn java(s: &Sample) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "// {} ({})", s.summary, s.operation_id);
    o.push_str("// Java 11 or newer: java Main.java\n");
    if s.needs_key_bearer() {
        o.push_str("import java.security.KeyFactory;\nimport java.security.PublicKey;\nimport java.security.spec.X509EncodedKeySpec;\n");
    }
    o.push_str("import java.net.URI;\nimport java.net.URLEncoder;\nimport java.net.http.HttpClient;\nimport java.net.http.HttpRequest;\nimport java.net.http.HttpResponse;\nimport java.nio.charset.StandardCharsets;\nimport java.util.Base64;\nimport java.util.UUID;\nimport java.util.regex.Matcher;\nimport java.util.regex.Pattern;\n");
    if s.needs_key_bearer() {
        o.push_str("import javax.crypto.Cipher;\n");
    }
    o.push_str("\npublic class Main {\n");
    for c in s.consts.iter().filter(|c| c.name != "BASE") {
        let _ = writeln!(
            o,
            "    static final String {} = {}; // {}",
            c.name,
            dq(&c.value),
            c.note
        );
    }
    o.push_str("\n    public static void main(String[] args) throws Exception {\n");
    for e in &s.env {
        let read = match &e.default {
            Some(d) => format!(
                "java.util.Optional.ofNullable(System.getenv({})).filter(v -> !v.isEmpty()).orElse({})",
                dq(e.name),
                dq(d)
            ),
            None => format!("System.getenv({})", dq(e.name)),
        };
        let _ = writeln!(o, "        String {} = {read}; // {}", e.name, e.note);
    }
    for v in &s.fresh {
        let _ = writeln!(
            o,
            "        String {v} = UUID.randomUUID().toString().replace(\"-\", \"\"); // {}",
            Sample::FRESH_NOTE
        );
    }
    if s.needs_uuid() {
        o.push_str(
            "        String referenceId = UUID.randomUUID().toString(); // the new resource's id\n",
        );
    }
    o.push_str("        HttpClient http = HttpClient.newHttpClient();\n");
    if s.momo_auth == MomoAuth::Token || s.headers.iter().any(|(_, v)| *v == HVal::Basic) {
        o.push_str("        String basic = Base64.getEncoder().encodeToString((API_USER + \":\" + API_KEY).getBytes(StandardCharsets.UTF_8));\n");
    }
    if s.momo_auth == MomoAuth::Token {
        let product = s.product.as_deref().unwrap_or("collection");
        let _ = writeln!(
            o,
            "\n        // An access token of the API user (valid for an hour).\n        HttpRequest tokenRequest = HttpRequest.newBuilder(URI.create({}))\n            .header(\"Authorization\", \"Basic \" + basic)\n            .header(\"Ocp-Apim-Subscription-Key\", SUBSCRIPTION_KEY)\n            .POST(HttpRequest.BodyPublishers.noBody())\n            .build();\n        String token = field(http.send(tokenRequest, HttpResponse.BodyHandlers.ofString()).body(), \"access_token\");",
            dq(&format!("{}/{product}/token/", s.base))
        );
    }
    if s.needs_session() {
        let _ = writeln!(
            o,
            "\n        // A session: getSession with the encrypted API key.\n        HttpRequest sessionRequest = HttpRequest.newBuilder(URI.create({}))\n            .header(\"Origin\", {})\n            .header(\"Authorization\", \"Bearer \" + bearer(MPESA_API_KEY))\n            .GET()\n            .build();\n        String session = field(http.send(sessionRequest, HttpResponse.BodyHandlers.ofString()).body(), \"output_SessionID\");",
            dq(&s.session_url()),
            dq(&s.origin)
        );
    }
    let mut parts = Vec::new();
    let mut lit = s.base.clone();
    for seg in &s.path {
        match seg {
            Seg::Lit(t) => lit.push_str(t),
            Seg::Var(v) => {
                parts.push(dq(&std::mem::take(&mut lit)));
                parts.push((*v).to_owned());
            }
        }
    }
    if !lit.is_empty() {
        parts.push(dq(&lit));
    }
    let mut url = parts.join(" + ");
    if !s.query.is_empty() {
        let parts: Vec<String> = s
            .query
            .iter()
            .map(|(k, v)| {
                format!(
                    "\"{k}=\" + URLEncoder.encode({}, StandardCharsets.UTF_8)",
                    dq(v)
                )
            })
            .collect();
        url = format!(
            "{url} + \"?\"\n            + {}",
            parts.join(" + \"&\"\n            + ")
        );
    }
    let _ = write!(
        o,
        "\n        HttpRequest request = HttpRequest.newBuilder(URI.create({url}))"
    );
    for (name, value) in &s.headers {
        let v = match value {
            HVal::Lit(v) => dq(v),
            HVal::Const(c) => (*c).to_owned(),
            HVal::Token => "\"Bearer \" + token".to_owned(),
            HVal::Oauth2 => "\"Bearer \" + OAUTH2_TOKEN".to_owned(),
            HVal::Basic => "\"Basic \" + basic".to_owned(),
            HVal::NewUuid => "referenceId".to_owned(),
            HVal::KeyBearer => "\"Bearer \" + bearer(MPESA_API_KEY)".to_owned(),
            HVal::SessionBearer => "\"Bearer \" + bearer(session)".to_owned(),
        };
        let _ = write!(o, "\n            .header({}, {v})", dq(name));
    }
    if let Some(ct) = s.content_type() {
        let _ = write!(o, "\n            .header(\"Content-Type\", {})", dq(ct));
    }
    match s.body_text() {
        Some(body) => {
            let _ = write!(
                o,
                "\n            .method({}, HttpRequest.BodyPublishers.ofString({}))",
                dq(&s.method),
                dq(&body)
            );
        }
        None => {
            let _ = write!(
                o,
                "\n            .method({}, HttpRequest.BodyPublishers.noBody())",
                dq(&s.method)
            );
        }
    }
    o.push_str("\n            .build();\n        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());\n");
    if s.needs_uuid() {
        o.push_str("        System.out.println(\"X-Reference-Id: \" + referenceId);\n");
    }
    o.push_str("        System.out.println(response.statusCode() + \" \" + response.body());\n");
    for (field, v) in s.fresh_fields() {
        let _ = writeln!(o, "        System.out.println(\"{field}: \" + {v});");
    }
    o.push_str("    }\n");
    if s.needs_key_bearer() {
        o.push_str(concat!(
            "\n    /** base64(RSA-PKCS#1 v1.5(secret)) under the platform public key (base64 SPKI DER). */\n",
            "    static String bearer(String secret) throws Exception {\n",
            "        byte[] der = Base64.getDecoder().decode(PUBLIC_KEY);\n",
            "        PublicKey key = KeyFactory.getInstance(\"RSA\").generatePublic(new X509EncodedKeySpec(der));\n",
            "        Cipher cipher = Cipher.getInstance(\"RSA/ECB/PKCS1Padding\");\n",
            "        cipher.init(Cipher.ENCRYPT_MODE, key);\n",
            "        return Base64.getEncoder().encodeToString(cipher.doFinal(secret.getBytes(StandardCharsets.UTF_8)));\n",
            "    }\n",
        ));
    }
    o.push_str(concat!(
        "\n    /** A string field of a JSON object (use a JSON library in real code). */\n",
        "    static String field(String json, String name) {\n",
        "        Matcher m = Pattern.compile(\"\\\"\" + name + \"\\\"\\\\s*:\\\\s*\\\"([^\\\"]*)\\\"\").matcher(json);\n",
        "        if (!m.find()) throw new IllegalStateException(name + \" is missing from \" + json);\n",
        "        return m.group(1);\n",
        "    }\n}\n",
    ));
    o
}

// ---- JavaScript ----------------------------------------------------------------------------

/// A JSON value as a JavaScript literal, indented.
fn js_value(v: &Value, indent: usize) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let pad = "  ".repeat(indent);
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_owned()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn javascript(s: &Sample) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "// {} ({})", s.summary, s.operation_id);
    o.push_str("// Node.js 18 or newer: node sample.js\n");
    if s.needs_key_bearer() || s.needs_uuid() || !s.fresh.is_empty() {
        o.push_str("const crypto = require(\"node:crypto\");\n");
    }
    o.push('\n');
    for c in s.consts.iter().filter(|c| c.name != "BASE") {
        let _ = writeln!(o, "const {} = {}; // {}", c.name, dq(&c.value), c.note);
    }
    for e in &s.env {
        let fallback = e
            .default
            .as_ref()
            .map(|d| format!(" || {}", dq(d)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "const {} = process.env.{}{fallback}; // {}",
            e.name, e.name, e.note
        );
    }
    for v in &s.fresh {
        let _ = writeln!(
            o,
            "const {v} = crypto.randomUUID().replaceAll(\"-\", \"\"); // {}",
            Sample::FRESH_NOTE
        );
    }
    if s.needs_key_bearer() {
        o.push_str(concat!(
            "\n// base64(RSA-PKCS#1 v1.5(secret)) under the platform public key (base64 SPKI DER).\n",
            "function bearer(secret) {\n",
            "  const key = crypto.createPublicKey({ key: Buffer.from(PUBLIC_KEY, \"base64\"), format: \"der\", type: \"spki\" });\n",
            "  const encrypted = crypto.publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(secret));\n",
            "  return `Bearer ${encrypted.toString(\"base64\")}`;\n",
            "}\n",
        ));
    }
    o.push_str("\nasync function main() {\n");
    if s.momo_auth == MomoAuth::Token || s.headers.iter().any(|(_, v)| *v == HVal::Basic) {
        o.push_str("  const basic = Buffer.from(`${API_USER}:${API_KEY}`).toString(\"base64\");\n");
    }
    if s.momo_auth == MomoAuth::Token {
        let product = s.product.as_deref().unwrap_or("collection");
        let _ = writeln!(
            o,
            "  // An access token of the API user (valid for an hour).\n  const tokenResponse = await fetch({}, {{\n    method: \"POST\",\n    headers: {{ Authorization: `Basic ${{basic}}`, \"Ocp-Apim-Subscription-Key\": SUBSCRIPTION_KEY }},\n  }});\n  const tokenAnswer = await tokenResponse.text();\n  const token = tokenResponse.ok ? JSON.parse(tokenAnswer).access_token : undefined;\n  if (!token) throw new Error(`No access token; the token endpoint answered ${{tokenResponse.status}}: ${{tokenAnswer}}`);",
            dq(&format!("{}/{product}/token/", s.base))
        );
    }
    if s.needs_session() {
        let _ = writeln!(
            o,
            "  // A session: getSession with the encrypted API key.\n  const sessionResponse = await fetch({}, {{\n    headers: {{ Origin: {}, Authorization: bearer(MPESA_API_KEY) }},\n  }});\n  const sessionAnswer = await sessionResponse.text();\n  const session = sessionResponse.ok ? JSON.parse(sessionAnswer).output_SessionID : undefined;\n  if (!session) throw new Error(`No session; getSession answered ${{sessionResponse.status}}: ${{sessionAnswer}}`);",
            dq(&s.session_url()),
            dq(&s.origin)
        );
    }
    let url = if s.has_vars() {
        format!("`{}`", s.url_with(|v| format!("${{{v}}}")))
    } else {
        dq(&s.url_with(|_| String::new()))
    };
    if s.query.is_empty() {
        let _ = writeln!(o, "  const url = {url};");
    } else {
        let q: serde_json::Map<String, Value> = s
            .query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let _ = writeln!(
            o,
            "  const url = {url} + \"?\" + new URLSearchParams({});",
            js_value(&Value::Object(q), 1)
        );
    }
    if s.needs_uuid() {
        o.push_str("  const referenceId = crypto.randomUUID(); // the new resource's id\n");
    }
    let _ = writeln!(
        o,
        "  const response = await fetch(url, {{\n    method: {},\n    headers: {{",
        dq(&s.method)
    );
    for (name, value) in &s.headers {
        let v = match value {
            HVal::Lit(v) => dq(v),
            HVal::Const(c) => (*c).to_owned(),
            HVal::Token => "`Bearer ${token}`".to_owned(),
            HVal::Oauth2 => "`Bearer ${OAUTH2_TOKEN}`".to_owned(),
            HVal::Basic => "`Basic ${basic}`".to_owned(),
            HVal::NewUuid => "referenceId".to_owned(),
            HVal::KeyBearer => "bearer(MPESA_API_KEY)".to_owned(),
            HVal::SessionBearer => "bearer(session)".to_owned(),
        };
        let _ = writeln!(o, "      {}: {v},", dq(name));
    }
    if let Some(ct) = s.content_type() {
        let _ = writeln!(o, "      \"Content-Type\": {},", dq(ct));
    }
    o.push_str("    },\n");
    if let Some(body) = &s.body {
        if s.form {
            let _ = writeln!(
                o,
                "    body: new URLSearchParams({}).toString(),",
                js_value(body, 2)
            );
        } else {
            let _ = writeln!(o, "    body: JSON.stringify({}),", js_value(body, 2));
        }
    }
    o.push_str("  });\n");
    if s.needs_uuid() {
        o.push_str("  console.log(\"X-Reference-Id:\", referenceId);\n");
    }
    o.push_str("  console.log(response.status, await response.text());\n");
    for (field, v) in s.fresh_fields() {
        let _ = writeln!(o, "  console.log(\"{field}:\", {v});");
    }
    o.push_str("}\n\nmain().catch((e) => {\n  console.error(e);\n  process.exit(1);\n});\n");
    o
}

// ---- Rust ----------------------------------------------------------------------------------

/// The Rust client call of a MoMo operation: (client type, statements using `client`).
fn momo_rust_call(s: &Sample) -> Option<(&'static str, String)> {
    let id = s.operation_id.as_str();
    let product = s.product.as_deref().unwrap_or("");
    let client = match product {
        "collection" => "Collection",
        "disbursement" => "Disbursement",
        "remittance" => "Remittance",
        _ => "",
    };
    let body = s.body.as_ref().map(|b| {
        serde_json::to_string_pretty(b)
            .unwrap_or_default()
            .replace('\n', "\n    ")
    });
    let parsed = |ty: &str| {
        format!(
            "    let body: {ty} = serde_json::from_str(r#\"{}\"#)?;\n",
            body.clone().unwrap_or_default()
        )
    };
    let create = |ty: &str, method: &str| {
        format!(
            "{}    let reference_id = client.{method}(&body).await?; // the generated X-Reference-Id\n    println!(\"202 Accepted: {{reference_id}}\");\n",
            parsed(ty)
        )
    };
    // The payment to refund comes from `REFERENCE_ID`, set on the parsed body.
    let refund = |method: &str| {
        create("Refund", method)
            .replacen("let body: Refund", "let mut body: Refund", 1)
            .replacen(
                "?;\n",
                "?;\n    body.reference_id_to_refund = reference_id; // the payment to refund\n",
                1,
            )
    };
    let status = |method: &str| {
        format!(
            "    let reference_id: ReferenceId = reference_id.parse()?;\n    let status = client.{method}(&reference_id).await?;\n    println!(\"{{status:?}}\");\n"
        )
    };
    let suffix = id.rsplit_once('-').map_or(id, |(_, s)| s);
    let call = match (id, suffix) {
        (_, "CreateAccessToken") => {
            "    let token = client.create_access_token().await?;\n    println!(\"{} (expires in {} s)\", token.access_token, token.expires_in);\n".to_owned()
        }
        (_, "GetAccountBalance") => {
            "    let balance = client.get_account_balance().await?;\n    println!(\"{} {}\", balance.available_balance, balance.currency);\n".to_owned()
        }
        (_, "GetAccountBalanceInSpecificCurrency") => {
            "    let balance = client.get_account_balance_in_currency(\"EUR\").await?;\n    println!(\"{} {}\", balance.available_balance, balance.currency);\n".to_owned()
        }
        (_, "ValidateAccountHolderStatus") => {
            "    let active = client.validate_account_holder_status(IdType::Msisdn, \"256774290781\").await?;\n    println!(\"active: {active}\");\n".to_owned()
        }
        (_, "GetBasicUserinfo") => {
            "    let info = client.get_basic_userinfo(IdType::Msisdn, \"256774290781\").await?;\n    println!(\"{info:?}\");\n".to_owned()
        }
        (_, "authorize") => {
            "    let consent = client\n        .bc_authorize(\"ID:256774290781/MSISDN\", \"profile\", AccessType::Online, None)\n        .await?;\n    println!(\"auth_req_id {}\", consent.auth_req_id);\n".to_owned()
        }
        (_, "CreateOauth2Token") => {
            "    let oauth2 = client.create_oauth2_token(&auth_req_id).await?;\n    println!(\"{}\", oauth2.access_token);\n".to_owned()
        }
        (_, "GetUserInfoWithConsent") => {
            "    let info = client.get_user_info_with_consent(&oauth2_token).await?;\n    println!(\"{info:?}\");\n".to_owned()
        }
        ("Collection-Requesttopay-V1", _) => create("RequestToPay", "request_to_pay"),
        ("Collection-Requesttowithdraw-V1", _) => create("RequestToPay", "request_to_withdraw_v1"),
        ("Collection-Requesttowithdraw-V2", _) => create("RequestToPay", "request_to_withdraw_v2"),
        ("Collection-GetRequesttopayStatus", _) => status("get_request_to_pay_status"),
        ("Collection-GetRequesttowithdrawStatus", _) => status("get_request_to_withdraw_status"),
        ("RequesttoPayDeliveryNotification", _) => {
            "    let reference_id: ReferenceId = reference_id.parse()?;\n    client\n        .request_to_pay_delivery_notification(&reference_id, \"Your order is on its way\")\n        .await?;\n    println!(\"notification sent for {reference_id}\");\n".to_owned()
        }
        ("CreateInvoice", _) => create("CreateInvoice", "create_invoice"),
        ("GetInvoiceStatus", _) => status("get_invoice_status"),
        ("CancelInvoice", _) => {
            "    let reference_id: ReferenceId = reference_id.parse()?;\n    let cancelled = client.cancel_invoice(&reference_id, Some(\"order-1\")).await?;\n    println!(\"{cancelled:?}\");\n".to_owned()
        }
        ("PreApproval", _) => create("PreApproval", "pre_approval"),
        ("GetPreApprovalStatus", _) => status("get_pre_approval_status"),
        ("CancelPreApproval", _) => {
            "    let reference_id: ReferenceId = reference_id.parse()?;\n    client.cancel_pre_approval(&reference_id).await?;\n    println!(\"pre-approval {reference_id} cancelled\");\n".to_owned()
        }
        ("GetApprovedPreApprovals", _) => {
            "    let approved = client.get_approved_pre_approvals(IdType::Msisdn, \"256774290781\").await?;\n    println!(\"{approved:?}\");\n".to_owned()
        }
        ("CreatePayments", _) => create("CreatePayments", "create_payments"),
        ("GetPaymentStatus", _) => status("get_payment_status"),
        ("Disbursement-Transfer-V1" | "Remittance-Transfer-V1", _) => create("Transfer", "transfer"),
        ("Disbursement-Deposit-V1", _) => create("Transfer", "deposit_v1"),
        ("Disbursement-Deposit-V2", _) => create("Transfer", "deposit_v2"),
        ("Disbursement-Refund-V1", _) => refund("refund_v1"),
        ("Disbursement-Refund-V2", _) => refund("refund_v2"),
        ("Disbursement-GetTransferStatus" | "Remittance-GetTransferStatus", _) => {
            status("get_transfer_status")
        }
        ("Disbursement-GetDepositStatus", _) => status("get_deposit_status"),
        ("Disbursement-GetRefundStatus", _) => status("get_refund_status"),
        ("Remittance-Cashtransfer-V2", _) => create("CashTransfer", "cash_transfer"),
        ("Remittance-GetCashtransferStatus", _) => status("get_cash_transfer_status"),
        _ => return None,
    };
    if client.is_empty() {
        return None;
    }
    Some((client, call))
}

/// How a Rust sample's `Cargo.toml` names the SDK, which is not on crates.io.
const SDK_DEPENDENCY: &str =
    "mkoba-sdk = { path = \"…/crates/sdk\" } (the SDK of your Mkoba checkout)";

/// The opening of every Rust sample's program: `main` prints an error as its message (a
/// `main` that returns it would print its `Debug` form) and exits 1; the sample's body
/// is `run`.
const RUST_MAIN: &str = "\n#[tokio::main]\nasync fn main() {\n    if let Err(e) = run().await {\n        eprintln!(\"{e}\");\n        std::process::exit(1);\n    }\n}\n\nasync fn run() -> Result<(), Box<dyn std::error::Error>> {\n";

fn rust_consts(o: &mut String, s: &Sample, base: bool) {
    for c in s.consts.iter().filter(|c| base || c.name != "BASE") {
        let _ = writeln!(
            o,
            "const {}: &str = {}; // {}",
            c.name,
            dq(&c.value),
            c.note
        );
    }
}

fn rust_env(o: &mut String, s: &Sample) {
    for e in &s.env {
        let read = match &e.default {
            Some(d) => format!(
                "std::env::var({}).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {}.to_owned())",
                dq(e.name),
                dq(d)
            ),
            None => format!(
                "std::env::var({}).map_err(|_| {})?",
                dq(e.name),
                dq(&format!("set {}: {}", e.name, e.note))
            ),
        };
        let _ = writeln!(
            o,
            "    let {} = {read}; // {}",
            e.name.to_ascii_lowercase(),
            e.note
        );
    }
}

fn rust(s: &Sample) -> String {
    match s.gateway {
        Gateway::Momo => rust_momo(s),
        Gateway::V2 => rust_v2(s).unwrap_or_else(|| rust_plain(s)),
        Gateway::V1x => rust_plain(s),
    }
}

fn rust_momo(s: &Sample) -> String {
    let id = s.operation_id.as_str();
    let mut o = String::new();
    let _ = writeln!(o, "// {} ({})", s.summary, id);
    let _ = writeln!(
        o,
        "// Cargo.toml: {SDK_DEPENDENCY}, tokio (features \"full\"){}",
        if momo_rust_call(s).is_some_and(|(_, call)| call.contains("serde_json")) {
            ", serde_json"
        } else {
            ""
        }
    );
    match id {
        "post-v1_0-apiuser" | "get-v1_0-apiuser" | "post-v1_0-apiuser-apikey" => {
            if id == "post-v1_0-apiuser" {
                o.push_str("use mkoba_sdk::momo::Provisioning;\n\n");
            } else {
                o.push_str("use mkoba_sdk::momo::{Provisioning, ReferenceId};\n\n");
            }
            rust_consts(&mut o, s, true);
            o.push_str(RUST_MAIN);
            let _ = writeln!(
                o,
                "    let provisioning = Provisioning::new(SUBSCRIPTION_KEY).base_url(BASE);"
            );
            let call = match id {
                "post-v1_0-apiuser" => {
                    "    let api_user = provisioning.create_api_user(\"127.0.0.1\").await?; // 201: the generated X-Reference-Id\n    println!(\"API user {api_user}\");\n"
                }
                "get-v1_0-apiuser" => {
                    "    let api_user: ReferenceId = API_USER.parse()?;\n    let user = provisioning.get_api_user(&api_user).await?;\n    println!(\"{user:?}\");\n"
                }
                _ => {
                    "    let api_user: ReferenceId = API_USER.parse()?;\n    let api_key = provisioning.create_api_key(&api_user).await?; // shown once: keep it\n    println!(\"API key {api_key}\");\n"
                }
            };
            o.push_str(call);
            o.push_str("    Ok(())\n}\n");
            return o;
        }
        _ => {}
    }
    let Some((client, call)) = momo_rust_call(s) else {
        let mut p = rust_plain(s);
        p.insert_str(
            0,
            "// mkoba-sdk has no method for this endpoint (the Collection Widget's script or its settings page calls it); any HTTP client does:\n",
        );
        return p;
    };
    let mut uses = vec!["Config".to_owned(), client.to_owned()];
    if call.contains("ReferenceId") {
        uses.push("ReferenceId".to_owned());
    }
    if call.contains("IdType::") {
        uses.push("IdType".to_owned());
    }
    if call.contains("AccessType::") {
        uses.push("AccessType".to_owned());
    }
    uses.sort();
    let _ = writeln!(o, "use mkoba_sdk::momo::{{{}}};", uses.join(", "));
    for ty in [
        "RequestToPay",
        "Transfer",
        "Refund",
        "CashTransfer",
        "CreateInvoice",
        "PreApproval",
        "CreatePayments",
    ] {
        if call.contains(&format!("body: {ty} =")) {
            let _ = writeln!(o, "use mkoba_sdk::types::momo::{ty};");
        }
    }
    o.push('\n');
    rust_consts(&mut o, s, true);
    o.push_str(RUST_MAIN);
    rust_env(&mut o, s);
    let env = s
        .headers
        .iter()
        .find(|(n, _)| n == "X-Target-Environment")
        .and_then(|(_, v)| match v {
            HVal::Lit(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "sandbox".to_owned());
    let api_user = if s.consts.iter().any(|c| c.name == "API_USER") {
        "\n            .api_user(API_USER, &api_key)"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "    let client = {client}::new(\n        Config::new(SUBSCRIPTION_KEY)\n            .base_url(BASE)\n            .target_environment({}){api_user},\n    )?;",
        dq(&env)
    );
    o.push_str(&call);
    o.push_str("    Ok(())\n}\n");
    o
}

/// The v2 operations the SDK's `mpesa::Client` has a method for.
fn rust_v2(s: &Sample) -> Option<String> {
    let body = s
        .body
        .clone()
        .or_else(|| {
            let q: serde_json::Map<String, Value> = s
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            Some(Value::Object(q))
        })
        .unwrap_or_default();
    let f = |name: &str| body[name].as_str().unwrap_or("").to_owned();
    let q = |name: &str| dq(&f(name));
    let opt = |name: &str| match body[name].as_str() {
        Some(v) => format!("Some({}.into())", dq(v)),
        None => "None".to_owned(),
    };
    let (ty, call) = match s.operation_id.as_str() {
        "v2GetSession" => (
            "",
            "    let session = client.create_session().await?;\n    println!(\"session {session}\");\n".to_owned(),
        ),
        "v2C2bSingleStage" => (
            "C2bPayment",
            format!(
                "    let request = client.c2b(&C2bPayment {{\n        amount: Amount::parse({})?,\n        customer_msisdn: {}.into(),\n        service_provider_code: {}.into(),\n        transaction_reference: {}.into(),\n        purchased_items_desc: {}.into(),\n    }});\n",
                q("input_Amount"),
                q("input_CustomerMSISDN"),
                q("input_ServiceProviderCode"),
                q("input_TransactionReference"),
                q("input_PurchasedItemsDesc")
            ),
        ),
        "v2B2cSingleStage" => (
            "B2cPayment",
            format!(
                "    let request = client.b2c(&B2cPayment {{\n        amount: Amount::parse({})?,\n        customer_msisdn: {}.into(),\n        service_provider_code: {}.into(),\n        transaction_reference: {}.into(),\n        payment_items_desc: {}.into(),\n    }});\n",
                q("input_Amount"),
                q("input_CustomerMSISDN"),
                q("input_ServiceProviderCode"),
                q("input_TransactionReference"),
                q("input_PaymentItemsDesc")
            ),
        ),
        "v2B2bSingleStage" => (
            "B2bPayment",
            format!(
                "    let request = client.b2b(&B2bPayment {{\n        amount: Amount::parse({})?,\n        primary_party_code: {}.into(),\n        receiver_party_code: {}.into(),\n        transaction_reference: {}.into(),\n        purchased_items_desc: {}.into(),\n    }});\n",
                q("input_Amount"),
                q("input_PrimaryPartyCode"),
                q("input_ReceiverPartyCode"),
                q("input_TransactionReference"),
                q("input_PurchasedItemsDesc")
            ),
        ),
        "v2Reversal" => (
            "Reversal",
            format!(
                "    let request = client.reversal(&Reversal {{\n        transaction_id: {}.into(), // the output_TransactionID to reverse\n        service_provider_code: {}.into(),\n        amount: {},\n    }});\n",
                q("input_TransactionID"),
                q("input_ServiceProviderCode"),
                match body["input_ReversalAmount"].as_str() {
                    Some(a) => format!("Some(Amount::parse({})?)", dq(a)),
                    None => "None".to_owned(),
                }
            ),
        ),
        "v2QueryTransactionStatus" => (
            "TransactionStatusQuery",
            format!(
                "    let request = client.query_transaction_status(&TransactionStatusQuery {{\n        query_reference: {}.into(),\n        service_provider_code: {}.into(),\n    }});\n",
                q("input_QueryReference"),
                q("input_ServiceProviderCode")
            ),
        ),
        "v2QueryBeneficiaryName" => (
            "BeneficiaryNameQuery",
            format!(
                "    let request = client.query_beneficiary_name(&BeneficiaryNameQuery {{\n        customer_msisdn: {}.into(),\n        service_provider_code: {}.into(),\n    }});\n",
                q("input_CustomerMSISDN"),
                q("input_ServiceProviderCode")
            ),
        ),
        "v2DirectDebitCreation" => (
            "DirectDebitCreate",
            format!(
                "    let request = client.direct_debit_create(&DirectDebitCreate {{\n        customer_msisdn: {}.into(),\n        service_provider_code: {}.into(),\n        third_party_reference: {}.into(),\n        agreed_tc: true,\n        ..Default::default()\n    }});\n",
                q("input_CustomerMSISDN"),
                q("input_ServiceProviderCode"),
                q("input_ThirdPartyReference")
            ),
        ),
        "v2DirectDebitPayment" => (
            "DirectDebitPayment",
            format!(
                "    let request = client.direct_debit_payment(&DirectDebitPayment {{\n        customer_msisdn: {},\n        msisdn_token: None,\n        service_provider_code: {}.into(),\n        third_party_reference: {}.into(),\n        amount: Amount::parse({})?,\n        mandate_id: None,\n    }});\n",
                opt("input_CustomerMSISDN"),
                q("input_ServiceProviderCode"),
                q("input_ThirdPartyReference"),
                q("input_Amount")
            ),
        ),
        "v2QueryDirectDebit" => (
            "DirectDebitQuery",
            format!(
                "    let request = client.query_direct_debit(&DirectDebitQuery {{\n        customer_msisdn: {},\n        service_provider_code: {}.into(),\n        third_party_reference: {}.into(),\n        balance_amount: {},\n        ..Default::default()\n    }});\n",
                opt("input_CustomerMSISDN"),
                q("input_ServiceProviderCode"),
                q("input_ThirdPartyReference"),
                match body["input_BalanceAmount"].as_str() {
                    Some(a) => format!("Some(Amount::parse({})?)", dq(a)),
                    None => "None".to_owned(),
                }
            ),
        ),
        "v2DirectDebitCancel" => (
            "DirectDebitCancel",
            format!(
                "    let request = client.cancel_direct_debit(&DirectDebitCancel {{\n        customer_msisdn: {},\n        service_provider_code: {}.into(),\n        third_party_reference: {}.into(),\n        ..Default::default()\n    }});\n",
                opt("input_CustomerMSISDN"),
                q("input_ServiceProviderCode"),
                q("input_ThirdPartyReference")
            ),
        ),
        _ => return None,
    };
    let market = s.market.unwrap_or(Market::VodacomTzn);
    let mut o = String::new();
    let _ = writeln!(o, "// {} ({})", s.summary, s.operation_id);
    let _ = writeln!(
        o,
        "// Cargo.toml: {SDK_DEPENDENCY}, tokio (features \"full\")"
    );
    let mut uses = vec!["Client", "Config", "Market"];
    if call.contains("Amount::") {
        uses.push("Amount");
    }
    if !ty.is_empty() {
        uses.push(ty);
    }
    uses.sort_unstable();
    let _ = writeln!(o, "use mkoba_sdk::mpesa::{{{}}};\n", uses.join(", "));
    rust_consts(&mut o, s, true);
    o.push_str(RUST_MAIN);
    rust_env(&mut o, s);
    // The SDK makes the conversation id itself; any other fresh id the call takes is
    // made here.
    for (field, v) in s.fresh_fields() {
        if call.contains(&placeholder(v)) {
            let _ = writeln!(
                o,
                "    let {0} = mkoba_sdk::mpesa::new_conversation_id(); // {1}\n    println!(\"{field}: {{{0}}}\");",
                v.to_ascii_lowercase(),
                Sample::FRESH_NOTE
            );
        }
    }
    let origin = if s.origin == "*" {
        String::new()
    } else {
        format!("\n            .origin({})", dq(&s.origin))
    };
    let _ = writeln!(
        o,
        "    // getSession with the encrypted API key happens on first need; the session is\n    // encrypted and sent on every call, and replaced before it expires.\n    let client = Client::new(\n        Config::new(Market::{market:?}, mpesa_api_key, PUBLIC_KEY)\n            .base_url(BASE){origin},\n    )?;"
    );
    o.push_str(&call);
    if !ty.is_empty() {
        o.push_str("    println!(\"input_ThirdPartyConversationID {}\", request.id());\n    match request.await {\n        Ok(answer) => println!(\"{answer:?}\"),\n        Err(e) => {\n            eprintln!(\"{e} {:?} {:?}\", e.ins_code(), e.hint());\n            std::process::exit(1);\n        }\n    }\n");
    }
    o.push_str("    Ok(())\n}\n");
    Some(o)
}

/// Rust without a typed client: the SDK makes the M-Pesa bearer, `reqwest` sends.
fn rust_plain(s: &Sample) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "// {} ({})", s.summary, s.operation_id);
    let mut deps = Vec::new();
    if s.needs_key_bearer() {
        deps.push(SDK_DEPENDENCY);
    }
    deps.push("reqwest (features \"json\")");
    deps.push("tokio (features \"full\")");
    if (s.body.is_some() && !s.form) || s.needs_session() || s.momo_auth == MomoAuth::Token {
        deps.push("serde_json");
    }
    if s.needs_uuid() || !s.fresh.is_empty() {
        deps.push("uuid (features \"v4\")");
    }
    let _ = writeln!(o, "// Cargo.toml: {}", deps.join(", "));
    if s.needs_key_bearer() {
        o.push_str("use mkoba_sdk::mpesa::PublicKey;\n");
    }
    if s.body.is_some() && !s.form {
        o.push_str("use serde_json::json;\n");
    }
    o.push('\n');
    rust_consts(&mut o, s, false);
    o.push_str(RUST_MAIN);
    rust_env(&mut o, s);
    for v in &s.fresh {
        let _ = writeln!(
            o,
            "    let {} = uuid::Uuid::new_v4().simple().to_string(); // {}",
            v.to_ascii_lowercase(),
            Sample::FRESH_NOTE
        );
    }
    if s.needs_uuid() {
        o.push_str("    let reference_id = uuid::Uuid::new_v4().to_string(); // the new resource's id\n    println!(\"X-Reference-Id: {reference_id}\");\n");
    }
    o.push_str("    let http = reqwest::Client::new();\n");
    if s.needs_key_bearer() {
        o.push_str("    // base64(RSA-PKCS#1 v1.5(secret)) under the platform public key.\n    let key = PublicKey::from_base64(PUBLIC_KEY)?;\n");
    }
    if s.needs_session() {
        let _ = writeln!(
            o,
            "    let answer: serde_json::Value = http\n        .get({})\n        .header(\"Origin\", {})\n        .header(\"Authorization\", format!(\"Bearer {{}}\", key.bearer(&mpesa_api_key)?))\n        .send()\n        .await?\n        .json()\n        .await?;\n    let session = answer[\"output_SessionID\"].as_str().unwrap_or_default().to_owned();",
            dq(&s.session_url()),
            dq(&s.origin)
        );
    }
    if s.momo_auth == MomoAuth::Token {
        let product = s.product.as_deref().unwrap_or("collection");
        let _ = writeln!(
            o,
            "    let answer: serde_json::Value = http\n        .post({})\n        .basic_auth(API_USER, Some(&api_key))\n        .header(\"Ocp-Apim-Subscription-Key\", SUBSCRIPTION_KEY)\n        .send()\n        .await?\n        .json()\n        .await?;\n    let token = answer[\"access_token\"].as_str().unwrap_or_default().to_owned();",
            dq(&format!("{}/{product}/token/", s.base))
        );
    }
    let url = if s.has_vars() {
        format!(
            "format!({})",
            dq(&s.url_with(|v| {
                if s.env.iter().any(|e| e.name == v) {
                    format!("{{{}}}", v.to_ascii_lowercase())
                } else {
                    format!("{{{v}}}")
                }
            }))
        )
    } else {
        dq(&s.url_with(|_| String::new()))
    };
    let _ = write!(
        o,
        "    let response = http\n        .request(reqwest::Method::{}, {url})",
        s.method
    );
    for (name, value) in &s.headers {
        let v = match value {
            HVal::Lit(v) => dq(v),
            HVal::Const(c) => (*c).to_owned(),
            HVal::Token => "format!(\"Bearer {token}\")".to_owned(),
            HVal::Oauth2 => "format!(\"Bearer {oauth2_token}\")".to_owned(),
            HVal::Basic => {
                o.push_str("\n        .basic_auth(API_USER, Some(&api_key))");
                continue;
            }
            HVal::NewUuid => "&reference_id".to_owned(),
            HVal::KeyBearer => "format!(\"Bearer {}\", key.bearer(&mpesa_api_key)?)".to_owned(),
            HVal::SessionBearer => "format!(\"Bearer {}\", key.bearer(&session)?)".to_owned(),
        };
        let _ = write!(o, "\n        .header({}, {v})", dq(name));
    }
    if !s.query.is_empty() {
        let pairs: Vec<String> = s
            .query
            .iter()
            .map(|(k, v)| format!("({}, {})", dq(k), dq(v)))
            .collect();
        let _ = write!(o, "\n        .query(&[{}])", pairs.join(", "));
    }
    if let Some(body) = &s.body {
        if s.form {
            let pairs: Vec<String> = body
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("({}, {})", dq(k), dq(v.as_str().unwrap_or(""))))
                .collect();
            let _ = write!(o, "\n        .form(&[{}])", pairs.join(", "));
        } else {
            let text = serde_json::to_string_pretty(body)
                .unwrap_or_default()
                .replace('\n', "\n        ");
            let _ = write!(o, "\n        .json(&json!({text}))");
        }
    }
    o.push_str("\n        .send()\n        .await?;\n    println!(\"{} {}\", response.status(), response.text().await?);\n");
    for (field, v) in s.fresh_fields() {
        let _ = writeln!(
            o,
            "    println!(\"{field}: {{{}}}\");",
            v.to_ascii_lowercase()
        );
    }
    o.push_str("    Ok(())\n}\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(dq("a\"b\\"), r#""a\"b\\""#);
    }

    #[test]
    fn python_literals_use_python_constants() {
        let v = serde_json::json!({"a": true, "b": null, "c": [1, "x"]});
        let p = py_value(&v, 0);
        assert!(
            p.contains("\"a\": True") && p.contains("\"b\": None"),
            "{p}"
        );
    }
}
