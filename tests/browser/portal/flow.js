// The developer portal as a person uses it, in headless Chromium: sign up, subscribe,
// create an API user and key, pay through the API with those keys, find the payment in
// the transactions table and in a chart, approve a payment on the virtual phone. Every
// page is saved as a screenshot (desktop and phone width) into $ARTIFACTS.
"use strict";
const { chromium } = require("playwright-core");

const BASE = process.env.PORTAL_BASE_URL.replace(/\/$/, "");
const OUT = process.env.ARTIFACTS;
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? ": " + detail : ""}`);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
}

async function api(method, path, headers, body) {
  const r = await fetch(BASE + path, { method, headers, body });
  const text = await r.text();
  return { status: r.status, text, json: () => JSON.parse(text) };
}

async function requestToPay(key, token, msisdn, amount) {
  const ref = crypto.randomUUID();
  const r = await api("POST", "/collection/v1_0/requesttopay", {
    "Ocp-Apim-Subscription-Key": key,
    Authorization: `Bearer ${token}`,
    "X-Target-Environment": "sandbox",
    "X-Reference-Id": ref,
    "Content-Type": "application/json",
  }, JSON.stringify({
    amount, currency: "EUR", externalId: `order-${amount}`,
    payer: { partyIdType: "MSISDN", partyId: msisdn },
    payerMessage: `Order ${amount}`, payeeNote: "Mkoba shop",
  }));
  if (r.status !== 202) throw new Error(`request-to-pay answered ${r.status}: ${r.text}`);
  return ref;
}

async function status(key, token, ref) {
  const r = await api("GET", `/collection/v1_0/requesttopay/${ref}`, {
    "Ocp-Apim-Subscription-Key": key,
    Authorization: `Bearer ${token}`,
    "X-Target-Environment": "sandbox",
  });
  return r.json().status;
}

async function until(what, f) {
  for (let i = 0; i < 100; i++) {
    const v = await f();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // A refused form answers 400 on purpose; Chromium reports that as a console error.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 400/.test(m.text())) errors.push(m.text());
  });

  // Sign up.
  await page.goto(`${BASE}/portal`);
  check("a visitor is sent to sign in", page.url().includes("/portal/signin"));
  await shot(page, "01-signin");
  await page.click("text=Create an account");
  const email = `dev-${Date.now()}@example.com`;
  await page.fill("#name", "Amani Developer");
  await page.fill("#email", email);
  await page.fill("#password", "correct horse battery");
  await page.fill("#password2", "correct horse battery");
  await shot(page, "02-signup");
  await page.click("button[type=submit]");
  check("sign-up lands on the overview", (await page.textContent("h1")).includes("Welcome, Amani"));

  // Subscribe and read the collection key.
  await page.click("text=Subscribe to collection");
  const key = (await page.textContent("[data-testid=key-collection-primary]")).trim();
  check("subscribing shows a 32-character primary key", /^[0-9a-f]{32}$/.test(key), key);
  check("copy buttons appear with JavaScript", await page.isVisible("button.copy"));
  await shot(page, "03-overview");

  // Create an API user and key.
  await page.click("nav >> text=API users");
  await page.fill("#host", "127.0.0.1");
  await page.selectOption("#environment", "sandbox");
  await page.click("text=Create API user");
  const apiKey = (await page.textContent("[data-testid=new-api-key]")).trim();
  const apiUser = (await page.textContent("h1")).trim();
  check("the new API key is shown once", /^[0-9a-f]{32}$/.test(apiKey), apiKey);
  await shot(page, "04-api-user");

  // Pay through the API with those keys.
  const basic = Buffer.from(`${apiUser}:${apiKey}`).toString("base64");
  const t = await api("POST", "/collection/token/", { "Ocp-Apim-Subscription-Key": key, Authorization: `Basic ${basic}` });
  check("the portal's keys get a token", t.status === 200, t.text);
  const token = t.json().access_token;
  const paid = await requestToPay(key, token, "256772000001", "150");
  await until("settlement", async () => (await status(key, token, paid)) !== "PENDING");
  check("the payment settles", (await status(key, token, paid)) === "SUCCESSFUL");

  // The transactions table and the transaction's timeline.
  await page.click("nav >> text=Transactions");
  check("the payment is in the transactions table", await page.isVisible(`table >> text=${paid}`));
  await shot(page, "05-transactions");
  await page.click(`text=${paid}`);
  check("the timeline shows the settlement", await page.isVisible("text=Settlement decision"));
  await shot(page, "06-transaction");

  // Reports: the chart has a bar, and the table beside it counts the payment.
  await page.click("nav >> text=Reports");
  const bars = await page.locator("#volume ~ .pair svg rect.c-ok").count();
  check("the volume chart draws the successful payment", bars >= 1, `bars: ${bars}`);
  const cell = await page.locator("#volume ~ .pair table tbody tr td").first().textContent();
  check("the table beside the chart counts it", cell.trim() === "1", cell);
  await shot(page, "07-reports");

  // The virtual phone: turn payer approval on, pay, approve on the phone.
  await page.click("nav >> text=Virtual phone");
  await page.click("text=Turn payer approval on");
  const waiting = await requestToPay(key, token, "256772000002", "75");
  await new Promise((r) => setTimeout(r, 300));
  check("the payment waits for the payer", (await status(key, token, waiting)) === "PENDING");
  await page.goto(`${BASE}/portal/phone?msisdn=256772000002`);
  check("the phone shows the waiting payment", await page.isVisible(`text=${waiting}`));
  await shot(page, "08-phone");
  await page.click(`article[aria-label="Payment ${waiting}"] >> text=Approve`);
  check("approving says so", await page.isVisible("text=Approved"));
  check("the approved payment is SUCCESSFUL", (await status(key, token, waiting)) === "SUCCESSFUL");
  await shot(page, "09-phone-approved");

  // M-Pesa application and API docs with the try-it box.
  await page.click("nav >> text=M-Pesa");
  check("the M-Pesa page explains the result URL rules", await page.isVisible("text=[11000, 19000]"));
  await page.fill("#result_url", "http://shop.example:8080/results");
  await page.click("text=Update");
  check("a result URL outside the rules is refused", await page.isVisible("text=Only secure HTTP"));
  await shot(page, "10-mpesa");
  // Renew the API key (the first renewal creates the application), use it with Node's own
  // RSA (PKCS#1 v1.5 with the published key), renew again and see the old key refused.
  await page.click("text=Renew API key");
  const firstKey = ((await page.textContent("[data-testid=mpesa-api-key]")) || "").trim();
  check("renewing shows a 32-character API key once", firstKey.length === 32, firstKey);
  const publicKey = ((await page.inputValue("#public-key")) || "").trim();
  check("the public key is one line of base64", /^MIICIjANBgkqhkiG9w0BAQEFAAOCAg8A[A-Za-z0-9+/=]+$/.test(publicKey));
  const pem = `-----BEGIN PUBLIC KEY-----\n${publicKey.match(/.{1,64}/g).join("\n")}\n-----END PUBLIC KEY-----\n`;
  const bearer = (secret) =>
    require("crypto").publicEncrypt({ key: pem, padding: require("crypto").constants.RSA_PKCS1_PADDING }, Buffer.from(secret)).toString("base64");
  const getSession = (apiKey) =>
    api("GET", "/sandbox/ipg/v2/vodacomTZN/getSession/", { Authorization: `Bearer ${bearer(apiKey)}`, Origin: "*" });
  const first = await getSession(firstKey);
  check("the new key opens a session", first.status === 200, first.text);
  const session = first.json().output_SessionID;
  // Payer approval is on (above), so the synchronous C2B waits for the customer's "PIN":
  // approve it on the virtual phone while the call is open.
  const pending = api("POST", "/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/", {
    Authorization: `Bearer ${bearer(session)}`, Origin: "*", "Content-Type": "application/json",
  }, JSON.stringify({
    input_Amount: "10", input_Country: "TZN", input_Currency: "TZS", input_CustomerMSISDN: "000000000001",
    input_ServiceProviderCode: "000000", input_ThirdPartyConversationID: crypto.randomUUID().replace(/-/g, ""),
    input_TransactionReference: "T1234C", input_PurchasedItemsDesc: "Shoes",
  }));
  await new Promise((r) => setTimeout(r, 500));
  await page.goto(`${BASE}/portal/phone?msisdn=000000000001`);
  check("the phone shows the waiting M-Pesa payment", await page.isVisible("text=c2b"));
  await shot(page, "10-mpesa-phone");
  await page.click('article.prompt:has-text("c2b") button.approve');
  const c2b = await pending;
  check("the approved M-Pesa C2B answers 201", c2b.status === 201 && c2b.json().output_ResponseCode === "INS-0", c2b.text);
  await page.goto(`${BASE}/portal/mpesa`);
  await page.click("text=Renew API key");
  const secondKey = ((await page.textContent("[data-testid=mpesa-api-key]")) || "").trim();
  check("renewing again gives another key", secondKey.length === 32 && secondKey !== firstKey);
  const old = await getSession(firstKey);
  check("the old key is refused", old.status === 400 && old.json().output_ResponseCode === "INS-989", old.text);
  check("the renewed key works", (await getSession(secondKey)).status === 200);
  await shot(page, "10-mpesa-renewed");
  await page.goto(`${BASE}/portal/transactions?product=mpesa`);
  check("the M-Pesa payment is in the transactions table", await page.isVisible('table.tx td:has-text("mpesa · c2b")'));
  await page.click("nav >> text=API docs");
  await page.selectOption("#api_user", apiUser);
  await page.click("text=Send request");
  check("try-it gets the balance", ((await page.textContent("[data-testid=try-status]")) || "").trim() === "200");
  await shot(page, "11-docs");

  // Phone-width screenshots of every page.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  for (const [name, path] of [["overview", "/portal"], ["api-users", "/portal/apiusers"], ["transactions", "/portal/transactions"],
    ["transaction", `/portal/transactions/${waiting}`], ["reports", "/portal/reports"], ["phone", "/portal/phone"],
    ["mpesa", "/portal/mpesa"], ["docs", "/portal/docs"]]) {
    await small.goto(BASE + path);
    const wide = await small.evaluate(() => document.documentElement.scrollWidth);
    check(`${name} fits a phone screen`, wide <= 392, `scrollWidth ${wide}`);
    await shot(small, `phone-${name}`);
  }
  await phone.close();

  // Sign out.
  await page.click("text=Sign out");
  check("signing out returns to sign-in", page.url().includes("/portal/signin"));
  check("no script errors", errors.length === 0, errors.join("; "));
  await browser.close();
}

main()
  .catch((e) => { failed += 1; console.log(`FAIL ${e.stack || e}`); })
  .finally(() => {
    console.log(`\nportal browser flow: ${passed} passed, ${failed} failed`);
    process.exit(failed === 0 ? 0 : 1);
  });
