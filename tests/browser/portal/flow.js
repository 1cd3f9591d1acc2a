// The developer portal as a person uses it, in headless Chromium: sign up, subscribe,
// create an API user and key, pay through the API with those keys, find the payment in
// the transactions table and in a chart, approve a payment on the virtual phone. Every
// page is saved as a screenshot (desktop and phone width) into $ARTIFACTS.
"use strict";
const { need, check, launch, shot, run } = require("../lib");

const BASE = need("PORTAL_BASE_URL", "a running server, e.g. http://127.0.0.1:8080").replace(/\/$/, "");

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

// WCAG contrast ratio of two CSS colours ("rgb(r, g, b)" / "rgba(…)").
function contrast(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/[\d.]+/g).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05);
}

// The colour of an element's text and the first opaque background behind it.
async function colours(page, selector) {
  return page.$eval(selector, (el) => {
    const fg = getComputedStyle(el).color;
    let bg = "rgb(255, 255, 255)";
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== "transparent" && !/rgba\(.*, 0\)$/.test(c)) { bg = c; break; }
    }
    return { fg, bg };
  });
}

// Tables whose content is wider than their box (scrolling sideways inside the page).
async function overflowingTables(page) {
  return page.$$eval(".table-wrap", (els) => els
    .filter((e) => e.scrollWidth > e.clientWidth + 1)
    .map((e) => (e.querySelector("caption") || e).textContent.trim().slice(0, 40)));
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
  const browser = await launch();
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
  // A refused form: focus goes to its error and the title says so (a screen reader reads
  // both; the error alone, already in the page as it loads, is not read by every reader).
  await page.fill("#password2", "another horse battery");
  await page.click("button[type=submit]");
  check("a refused form puts focus on its error",
    await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("role") === "alert"));
  check("a refused form's page title begins with Error", (await page.title()).startsWith("Error: "), await page.title());
  await page.fill("#password", "correct horse battery");
  await page.fill("#password2", "correct horse battery");
  await shot(page, "02-signup");
  await page.click("button[type=submit]");
  // The account journey (tests/browser/journey covers it step by step): the activation
  // link from the sandbox mailbox, sign-in, the phone number and the code from the SMS.
  await page.click("[data-testid=open-mailbox]");
  await page.click("a[href*='/portal/activate?t=']");
  await page.fill("#password", "correct horse battery");
  await page.click("button[type=submit]");
  await page.fill("#phone", "+256 772 000 001");
  await page.click("text=Send the code");
  const sms = await page.textContent("[data-testid=sms]");
  await page.fill("#code", sms.match(/code is (\d{6})/)[1]);
  await page.click("text=Confirm and activate");
  await page.click("text=Subscribe to a MoMo product");
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
  check("creating an API user redirects to its page (post/redirect/get)",
    /\/portal\/apiusers\/[0-9a-f-]{36}\?done=key-created$/.test(page.url()) && !page.url().includes(apiKey), page.url());
  await shot(page, "04-api-user");
  await page.reload();
  check("reloading the page neither shows the key again nor makes another user",
    !(await page.isVisible("[data-testid=new-api-key]")) && (await page.isVisible("[data-testid=key-shown-once]"))
    && ((await page.textContent("h1")).trim() === apiUser));
  await page.goto(`${BASE}/portal/apiusers`);
  check("still one API user", (await page.locator(`a[href^="/portal/apiusers/"]`).count()) === 1);

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
  check("ledger steps name the accounts' owners",
    await page.isVisible("text=from the wallet of MSISDN 256772000001 for the partner's collection account of API user"));
  await shot(page, "06-transaction");

  // Reports: the chart has a bar, and the table beside it counts the payment.
  await page.click("nav >> text=Reports");
  const bars = await page.locator("#volume ~ .pair svg rect.c-ok").count();
  check("the volume chart draws the successful payment", bars >= 1, `bars: ${bars}`);
  const cell = await page.locator("#volume ~ .pair table tbody tr td").first().textContent();
  check("the table beside the chart counts it", cell.trim() === "1", cell);
  await shot(page, "07-reports");
  const wideTables = await overflowingTables(page);
  check("no report table scrolls sideways at 1280 px", wideTables.length === 0, wideTables.join("; "));
  await page.selectOption("#api_user", apiUser);
  await page.click("text=Show");
  check("reports filter by API user", await page.isVisible(`[data-testid=active-filters] >> text=${apiUser}`));
  const csvHref = await page.getAttribute("[data-testid=csv-volume]", "href");
  // (The page's CSP allows no fetch; the browser context's request client has its cookies.)
  const csvResponse = await page.request.get(BASE + csvHref);
  const csv = await csvResponse.text();
  check("a report table downloads as CSV", csvResponse.status() === 200
    && csvResponse.headers()["content-type"] === "text/csv; charset=utf-8"
    && csv.startsWith("period_start,successful,failed,pending\r\n"), csv.slice(0, 80));

  // A callback attempt's line stays on one line: the call, its answer, its latency.
  const withCallback = crypto.randomUUID();
  const cb = await api("POST", "/collection/v1_0/requesttopay", {
    "Ocp-Apim-Subscription-Key": key, Authorization: `Bearer ${token}`, "X-Target-Environment": "sandbox",
    "X-Reference-Id": withCallback, "X-Callback-Url": "http://127.0.0.1:9/cb", "Content-Type": "application/json",
  }, JSON.stringify({ amount: "12", currency: "EUR", externalId: "cb-1", payer: { partyIdType: "MSISDN", partyId: "256772000003" },
    payerMessage: "cb", payeeNote: "cb" }));
  check("a payment with a callback URL is accepted", cb.status === 202, cb.text);
  await until("the callback attempt", async () => {
    await page.goto(`${BASE}/portal/transactions/${withCallback}`);
    return page.isVisible("text=Callback attempt 1");
  });
  const line = await page.$eval(".timeline .call", (el) => {
    const code = el.querySelector("code").getBoundingClientRect();
    const answer = el.querySelector("b").getBoundingClientRect();
    return { codeTop: code.top, answerTop: answer.top, height: el.getBoundingClientRect().height };
  });
  check("a callback line does not break", Math.abs(line.codeTop - line.answerTop) < 4, JSON.stringify(line));
  await shot(page, "06-transaction-callback");

  // More than a page of payments: the pager's links are readable and a page past the end
  // is the last one.
  await Promise.all(Array.from({ length: 25 }, (_, i) => requestToPay(key, token, `2567730${String(i).padStart(5, "0")}`, "1")));
  await page.goto(`${BASE}/portal/transactions`);
  const older = "nav.pager a[rel=next]";
  check("the pager links to older payments", await page.isVisible(older));
  const pc = await colours(page, older);
  const ratio = contrast(pc.fg, pc.bg);
  check("pager links have readable contrast (WCAG AA)", ratio >= 4.5, `${pc.fg} on ${pc.bg}: ${ratio.toFixed(2)}`);
  await page.click(older);
  check("'Older' goes on from the page's last payment",
    (await page.isVisible("text=Page 2 of 2")) && page.url().includes("after="), page.url());
  await page.click("nav.pager a[rel=prev]");
  check("'Newer' comes back to the newest", await page.isVisible("text=Page 1 of 2"), page.url());
  await page.goto(`${BASE}/portal/transactions?page=999`);
  check("page 999 is clamped to the last page", await page.isVisible("text=Page 2 of 2"));
  await page.goto(`${BASE}/portal/transactions?from=2026-12-10&to=2026-12-01`);
  check("a reversed date range is explained", await page.isVisible("[data-testid=filter-error] >> text=reversed"));
  await page.click("text=Swap the dates");
  check("swapping the dates applies them", !(await page.isVisible("[data-testid=filter-error]")));
  await page.goto(`${BASE}/portal/apiusers/${apiUser}`);
  await page.click("text=This user's transactions");
  check("an API-user filter is shown", await page.isVisible(`[data-testid=active-filters] >> text=${apiUser}`));
  await page.click("[data-testid=active-filters] >> text=Clear all filters");
  check("and can be cleared", !(await page.isVisible("[data-testid=active-filters]")) && !page.url().includes("api_user"));

  // The virtual phone: turn payer approval on, pay, approve on the phone.
  await page.click("nav >> text=Virtual phone");
  await page.click("text=Turn payer approval on");
  const waiting = await requestToPay(key, token, "256772000002", "75");
  await new Promise((r) => setTimeout(r, 300));
  check("the payment waits for the payer", (await status(key, token, waiting)) === "PENDING");
  await page.goto(`${BASE}/portal/phone?msisdn=256772000002`);
  check("the phone shows the waiting payment", await page.isVisible(`text=${waiting}`));
  await shot(page, "08-phone");
  await page.click(`form[action="/portal/phone/${waiting}/approve"] button`);
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
  // Renew the API key (after its confirmation step), use it with Node's own RSA (PKCS#1
  // v1.5 with the published key), renew again and see the old key refused.
  await page.click("text=Renew API key");
  await page.click("[data-testid=confirm]");
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
  await page.click("[data-testid=confirm]");
  const secondKey = ((await page.textContent("[data-testid=mpesa-api-key]")) || "").trim();
  check("renewing again gives another key", secondKey.length === 32 && secondKey !== firstKey);
  const old = await getSession(firstKey);
  check("the old key is refused", old.status === 400 && old.json().output_ResponseCode === "INS-989", old.text);
  check("the renewed key works", (await getSession(secondKey)).status === 200);
  await shot(page, "10-mpesa-renewed");
  await page.goto(`${BASE}/portal/transactions?product=mpesa`);
  check("the M-Pesa payment is in the transactions table", await page.isVisible('table.tx td:has-text("mpesa · c2b")'));
  const conversation = c2b.json().output_ConversationID;
  check("the M-Pesa row shows the wire id", await page.isVisible(`table.tx a:text-is("${conversation}")`), conversation);
  await page.click(`table.tx a:text-is("${conversation}")`);
  check("an M-Pesa transaction's page has its timeline",
    (await page.isVisible("text=Settlement decision")) && (await page.isVisible("text=short code 000000 of your M-Pesa application")));
  await shot(page, "10-mpesa-transaction");
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
    ["transaction", `/portal/transactions/${waiting}`], ["transaction-callback", `/portal/transactions/${withCallback}`],
    ["mpesa-transaction", `/portal/transactions/${conversation}`], ["reports", "/portal/reports"], ["phone", "/portal/phone"],
    ["mpesa", "/portal/mpesa"], ["docs", "/portal/docs"]]) {
    await small.goto(BASE + path);
    const wide = await small.evaluate(() => document.documentElement.scrollWidth);
    check(`${name} fits a phone screen`, wide <= 392, `scrollWidth ${wide}`);
    await shot(small, `phone-${name}`);
  }
  // A table that scrolls sideways (the M-Pesa resource URLs at 390 px) is a named keyboard
  // stop; one that fits is neither.
  await small.goto(`${BASE}/portal/mpesa`);
  const wraps = await small.$$eval(".table-wrap", (ws) => ws.map((w) => ({
    scrolls: w.scrollWidth > w.clientWidth + 1, role: w.getAttribute("role"),
    tabindex: w.getAttribute("tabindex"), label: w.getAttribute("aria-label") || "" })));
  const scrolling = wraps.filter((w) => w.scrolls);
  check("a table that scrolls sideways is a named keyboard stop",
    scrolling.length > 0 && scrolling.every((w) => w.role === "region" && w.tabindex === "0" && w.label.endsWith("(scrolls sideways)")),
    JSON.stringify(wraps));
  check("a table that fits is no stop", wraps.filter((w) => !w.scrolls).every((w) => w.tabindex === null), JSON.stringify(wraps));
  check("the resource URLs' region is named by its caption",
    scrolling.some((w) => w.label === "Resource URLs (scrolls sideways)"), JSON.stringify(scrolling));
  // The navigation wraps: every link on screen, none scrolled out of sight.
  const nav = await small.$$eval("header.top nav a", (as) => as.map((a) => {
    const r = a.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top, visible: r.width > 0 && r.height > 0 };
  }));
  const offscreen = nav.filter((r) => !r.visible || r.left < 0 || r.right > 390);
  const rows = new Set(nav.map((r) => Math.round(r.top))).size;
  check("the navigation wraps at phone width", offscreen.length === 0 && rows > 1, JSON.stringify({ offscreen, rows }));
  await small.goto(`${BASE}/portal/reports`);
  const phoneTables = await overflowingTables(small);
  check("no report table scrolls sideways at 390 px", phoneTables.length === 0, phoneTables.join("; "));
  const tick = await small.$eval("#volume-chart-t", (t) => {
    const label = t.closest("svg").querySelector("text.axis.narrow");
    return { display: getComputedStyle(label).display, height: label.getBoundingClientRect().height };
  });
  check("chart axis labels are legible at 390 px", tick.display !== "none" && tick.height >= 10, JSON.stringify(tick));
  await small.goto(`${BASE}/portal/transactions`);
  const phoneTx = await overflowingTables(small);
  check("the transactions table fits at 390 px", phoneTx.length === 0, phoneTx.join("; "));
  await phone.close();

  // Sign out.
  await page.click("text=Sign out");
  check("signing out returns to sign-in", page.url().includes("/portal/signin"));
  check("no script errors", errors.length === 0, errors.join("; "));
  await browser.close();
}

run(main);
