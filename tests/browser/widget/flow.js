// The MTN MoMo Collection Widget as a merchant's customer meets it, in headless Chromium.
// This script serves the merchant's pages itself (a small HTTP server on 127.0.0.1, so on
// another origin than Mkoba, under a strict Content-Security-Policy) and embeds the widget
// script from Mkoba. Each step uses a fresh browser context. See NOTES.md for the contract.
"use strict";
const http = require("http");
const crypto = require("crypto");
const { need, check, launch, shot, run } = require("../lib");

const MKOBA = need("MKOBA_BASE_URL", "a running server, e.g. http://127.0.0.1:8080").replace(/\/+$/, "");
const MKOBA_ORIGIN = new URL(MKOBA).origin;
const API_USER = need("API_USER", "an API user that takes widget payments from any page or from the merchant origin");
const REFUSED_API_USER = need("REFUSED_API_USER", "an API user whose allowed origins exclude the merchant origin");
const CURRENCY = process.env.CURRENCY || "EUR";
const MERCHANT_PORT = Number(process.env.MERCHANT_PORT || 0);
const SETTLE_TIMEOUT = Number(process.env.SETTLE_TIMEOUT_MS || 20000);
const SCRIPT_URL = `${MKOBA}/v0.1.0/mobile-money-widget-mtn.js`;
const RUN = Date.now().toString(36);
const EVENTS = ["created", "successful", "failed", "canceled"];
const DETAIL_KEYS = ["invoiceId", "externalId", "referenceId", "paymentReference", "payee", "payeeFirstName",
  "payeeLastName", "amount", "currency", "status", "expiryDateTime"];


const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the merchant's site -----------------------------------------------------------------
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function widgetDiv(id, attrs) {
  const a = Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}="${esc(v)}"`).join("");
  return `<div class="mobile-money-qr-payment" id="${esc(id)}"${a}></div>`;
}

function page(nonce, title, body, scriptAttrs) {
  // Records every widget event (they bubble to document) and every CSP violation.
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="${nonce}">body{font:16px/1.4 system-ui,sans-serif;margin:24px;color:#222}main{display:flex;gap:32px;align-items:flex-start}
#log{font:12px/1.3 ui-monospace,monospace;max-width:460px;overflow-wrap:anywhere}.card{padding:16px;border:1px solid #ddd;border-radius:8px}</style>
<script nonce="${nonce}">
window.__globals = Object.getOwnPropertyNames(window);
window.mmwEvents = [];
window.mmwViolations = [];
${JSON.stringify(EVENTS)}.forEach(function (n) {
  document.addEventListener("mobile-money-qr-payment-" + n, function (e) {
    window.mmwEvents.push({ type: n, detail: e.detail, target: e.target.id, bubbles: e.bubbles, at: Date.now() });
    var li = document.createElement("li");
    li.textContent = n + " " + JSON.stringify(e.detail);
    document.getElementById("log").appendChild(li);
  });
});
document.addEventListener("securitypolicyviolation", function (e) { window.mmwViolations.push(e.violatedDirective + " " + e.blockedURI); });
</script>
<script src="${esc(SCRIPT_URL)}" nonce="${nonce}"${scriptAttrs || ""}></script>
</head><body><h1>${esc(title)}</h1><main><div class="card">${body}</div><div><h2>Events</h2><ol id="log"></ol></div></main></body></html>`;
}

function merchant(req, res) {
  const u = new URL(req.url, "http://merchant");
  const q = (k, d) => u.searchParams.get(k) ?? d;
  const nonce = crypto.randomBytes(12).toString("base64");
  let html;
  if (u.pathname === "/checkout") {
    html = page(nonce, "Checkout", `<p>Order ${esc(q("externalId", ""))}: ${esc(q("amount", ""))} ${esc(q("currency", CURRENCY))}</p>` +
      widgetDiv("w", { "data-api-user-id": q("apiUser", API_USER), "data-amount": q("amount", "10"), "data-currency": q("currency", CURRENCY), "data-external-id": q("externalId", "order") }));
  } else if (u.pathname === "/late") {
    // The widget element arrives after load (the test inserts it from ?amount=… etc.).
    html = page(nonce, "Late checkout", `<p>Loading the payment…</p><div id="slot"></div>`, " async");
  } else if (u.pathname === "/bad") {
    html = page(nonce, "Bad checkout",
      widgetDiv("bad-amount", { "data-api-user-id": API_USER, "data-amount": "12.34567", "data-currency": CURRENCY, "data-external-id": "bad-1" }) +
      "<hr>" + widgetDiv("bad-many", { "data-api-user-id": "not-a-uuid", "data-amount": "10", "data-external-id": "bad-2" }));
  } else {
    res.writeHead(404, { "Content-Type": "text/plain" });
    return res.end("not found");
  }
  res.writeHead(200, {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    // The widget must work under a strict policy: no inline script or style without the
    // page's nonce, no eval, Mkoba named for the script, the calls and the QR image.
    "Content-Security-Policy": `default-src 'none'; script-src 'nonce-${nonce}' ${MKOBA_ORIGIN}; style-src 'nonce-${nonce}'; ` +
      `connect-src ${MKOBA_ORIGIN}; img-src ${MKOBA_ORIGIN}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  });
  res.end(html);
}

// ---- helpers over a page -----------------------------------------------------------------
async function events(page) {
  return page.evaluate(() => window.mmwEvents);
}

async function waitEvent(page, type, timeout) {
  try {
    const h = await page.waitForFunction((t) => window.mmwEvents.find((e) => e.type === t), type, { timeout, polling: 100 });
    return await h.jsonValue();
  } catch (e) {
    const seen = await events(page).catch(() => []);
    throw new Error(`no ${type} event within ${timeout} ms (events: ${JSON.stringify(seen.map((x) => [x.type, x.detail]))})`);
  }
}

const testid = (id) => `[data-testid=${id}]`;

async function text(page, id) {
  return ((await page.textContent(testid(id), { timeout: 5000 })) || "").trim();
}

async function state(page, sel) {
  return page.getAttribute(sel || "#w", "data-mmw-state");
}

function invoiceChecks(tag, d, want) {
  const keys = Object.keys(d || {}).sort();
  // A failed invoice says why, as Collection's invoice status does.
  const expected = d && d.status === "FAILED" ? [...DETAIL_KEYS, "errorReason"] : DETAIL_KEYS;
  check(`${tag}: detail has exactly the invoice fields`, JSON.stringify(keys) === JSON.stringify([...expected].sort()), keys);
  if (!d) return;
  check(`${tag}: payee has partyIdType and partyId`, d.payee && typeof d.payee.partyIdType === "string" && typeof d.payee.partyId === "string"
    && Object.keys(d.payee).length === 2, d.payee);
  for (const [k, v] of Object.entries(want)) check(`${tag}: detail.${k} is ${JSON.stringify(v)}`, d[k] === v, d[k]);
  check(`${tag}: invoiceId is a UUID`, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(d.invoiceId || ""), d.invoiceId);
  check(`${tag}: expiryDateTime is a time`, !isNaN(Date.parse(d.expiryDateTime)), d.expiryDateTime);
}

function checkoutUrl(base, amount, externalId, apiUser) {
  const q = new URLSearchParams({ amount, currency: CURRENCY, externalId, apiUser: apiUser || API_USER });
  return `${base}/checkout?${q}`;
}

// ---- the steps -----------------------------------------------------------------------------
async function main() {
  // 0. The script itself.
  const r = await fetch(SCRIPT_URL);
  const js = await r.text();
  check("script: served with 200", r.status === 200, r.status);
  check("script: served as JavaScript", /javascript/.test(r.headers.get("content-type") || ""), r.headers.get("content-type"));
  check("script: under 30 KB", Buffer.byteLength(js) < 30 * 1024, Buffer.byteLength(js));
  check("script: no eval or Function constructor", !/\beval\s*\(|new\s+Function\s*\(/.test(js));
  console.log(`script-bytes ${Buffer.byteLength(js)}`);

  const server = http.createServer(merchant);
  await new Promise((ok, bad) => server.once("error", bad).listen(MERCHANT_PORT, "127.0.0.1", ok));
  const SHOP = `http://127.0.0.1:${server.address().port}`;
  console.log(`merchant-origin ${SHOP}`);

  const browser = await launch({ timeout: 30000 });

  // Each step in its own context; an exception fails the step and the run goes on.
  async function step(name, fn, allowedConsole) {
    const context = await browser.newContext({ viewport: { width: 900, height: 720 } });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    const errors = [];
    const widgetRequests = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error" && !(allowedConsole && allowedConsole.test(m.text()))) errors.push(m.text());
    });
    page.on("request", (q) => {
      if (q.url().startsWith(MKOBA_ORIGIN) && new URL(q.url()).pathname.startsWith("/widget/")) {
        widgetRequests.push({ method: q.method(), url: q.url(), at: Date.now() });
      }
    });
    try {
      await fn({ page, context, widgetRequests });
      const violations = await page.evaluate(() => window.mmwViolations || []).catch(() => []);
      check(`${name}: no CSP violations`, violations.length === 0, violations);
      check(`${name}: no script errors`, errors.length === 0, errors);
    } catch (e) {
      check(name, false, (e && e.message ? e.message : String(e)).split("\n")[0]);
    } finally {
      await context.close().catch(() => {});
    }
  }

  // 1. Bad attributes: a visible error, and no request.
  await step("1 bad attributes", async ({ page, widgetRequests }) => {
    await page.goto(`${SHOP}/bad`);
    await page.waitForSelector(`#bad-amount ${testid("mmw-error")}`, { state: "visible" });
    const one = await page.textContent(`#bad-amount ${testid("mmw-error")}`);
    check("1 bad attributes: the bad amount shows an error naming data-amount", /data-amount/.test(one), one);
    check("1 bad attributes: the error is an alert", (await page.getAttribute(`#bad-amount ${testid("mmw-error")}`, "role")) === "alert");
    const two = await page.textContent(`#bad-many ${testid("mmw-error")}`);
    check("1 bad attributes: a bad API user id and a missing currency are both named",
      /data-api-user-id/.test(two) && /data-currency/.test(two), two);
    check("1 bad attributes: no pay button", (await page.locator(testid("mmw-button")).count()) === 0);
    await shot(page, "01-bad-attributes");
    await sleep(1000);
    check("1 bad attributes: no request to /widget/", widgetRequests.length === 0, widgetRequests);
  });

  // 2. Amount 10 stays pending: the panel, then cancel.
  await step("2 amount 10", async ({ page, widgetRequests }) => {
    const ext = `order-${RUN}-10`;
    await page.goto(checkoutUrl(SHOP, "10", ext));
    const button = page.locator(testid("mmw-button"));
    await button.waitFor({ state: "visible" });
    check("2 amount 10: the button says Pay with MoMo", (await button.getAttribute("aria-label")) === "Pay with MoMo");
    const box = await button.boundingBox();
    check("2 amount 10: the collapsed button is about 45x36", box && Math.abs(box.width - 45) <= 4 && Math.abs(box.height - 36) <= 4, box);
    check("2 amount 10: the element is marked ready", (await page.getAttribute("#w", "data-mmw-ready")) !== null);
    const leaks = await page.evaluate(() => Object.getOwnPropertyNames(window)
      .filter((k) => !window.__globals.includes(k) && !["__globals", "mmwEvents", "mmwViolations"].includes(k)));
    check("2 amount 10: the only new global is mobileMoneyReinitializeWidgets",
      JSON.stringify(leaks) === '["mobileMoneyReinitializeWidgets"]', leaks);
    check("2 amount 10: no request before the click", widgetRequests.length === 0, widgetRequests);
    await shot(page, "widget-collapsed", "#w > .mmw-root");
    await shot(page, "02-collapsed");

    await button.click();
    const created = await waitEvent(page, "created", 10000);
    check("2 amount 10: the created event bubbles from the element", created.bubbles && created.target === "w", created);
    const d = created.detail;
    invoiceChecks("2 amount 10: created", d, { status: "PENDING", amount: "10", currency: CURRENCY, externalId: ext });
    const post = widgetRequests.find((q) => q.method === "POST");
    check("2 amount 10: the invoice was created by POST /widget/v1_0/invoice", post && post.url === `${MKOBA}/widget/v1_0/invoice`, widgetRequests);

    const panel = page.locator(testid("mmw-panel"));
    await panel.waitFor({ state: "visible" });
    const pbox = await panel.boundingBox();
    check("2 amount 10: the panel is about 220x400", pbox && Math.abs(pbox.width - 220) <= 10 && Math.abs(pbox.height - 400) <= 10, pbox);
    check("2 amount 10: the panel shows the amount", (await text(page, "mmw-amount")) === `10 ${CURRENCY}`, await text(page, "mmw-amount"));
    check("2 amount 10: the panel shows the payee", (await text(page, "mmw-payee")) === `${d.payeeFirstName} ${d.payeeLastName}`.trim(), await text(page, "mmw-payee"));
    const qrOk = await page.waitForFunction(() => {
      const i = document.querySelector("[data-testid=mmw-qr]");
      return i && i.complete && i.naturalWidth > 0;
    }, null, { timeout: 10000 }).then(() => true, () => false);
    check("2 amount 10: the QR code image loads", qrOk, await page.getAttribute(testid("mmw-qr"), "src"));
    check("2 amount 10: the QR image comes from Mkoba", ((await page.getAttribute(testid("mmw-qr"), "src")) || "").startsWith(`${MKOBA}/widget/v1_0/invoice/${d.invoiceId}/`));
    check("2 amount 10: the QR image has its alt text", (await page.getAttribute(testid("mmw-qr"), "alt")) === "QR code to pay");
    const href = (await page.getAttribute(testid("mmw-qr-link"), "href")) || "";
    check("2 amount 10: the QR link opens the invoice on the virtual phone", href.includes(`/portal/phone/invoice/${d.invoiceId}`), href);
    check("2 amount 10: the QR link opens a new tab without opener",
      (await page.getAttribute(testid("mmw-qr-link"), "target")) === "_blank" && /noopener/.test(await page.getAttribute(testid("mmw-qr-link"), "rel")));
    const ussd = await text(page, "mmw-ussd");
    check("2 amount 10: the USSD code is shown", ussd === `Dial *165*3*${d.paymentReference}#`, ussd);
    const c1 = await text(page, "mmw-countdown");
    check("2 amount 10: the countdown is mm:ss", /^(\d+:)?\d{2}:\d{2}$/.test(c1), c1);
    await sleep(2100);
    const c2 = await text(page, "mmw-countdown");
    check("2 amount 10: the countdown runs", c2 !== c1 && /^(\d+:)?\d{2}:\d{2}$/.test(c2), `${c1} then ${c2}`);
    check("2 amount 10: the state is pending", (await state(page)) === "pending" &&
      (await page.getAttribute(testid("mmw-state"), "data-state")) === "pending");
    check("2 amount 10: the status line is a live region", (await page.getAttribute(testid("mmw-state"), "aria-live")) === "polite");
    check("2 amount 10: no close button while pending", !(await page.isVisible(testid("mmw-close"))));
    await shot(page, "widget-expanded", "#w > .mmw-root");
    await shot(page, "02-expanded");

    const polls0 = widgetRequests.filter((q) => q.method === "GET").length;
    await sleep(3000);
    const polls = widgetRequests.filter((q) => q.method === "GET").length - polls0;
    const late = (await events(page)).filter((e) => e.type === "successful" || e.type === "failed");
    check("2 amount 10: no outcome within 3 s", late.length === 0, late);
    check("2 amount 10: the long-poll does not hammer (at most 2 requests in 3 s)", polls <= 2, polls);
    check("2 amount 10: the long-poll asks with wait and known",
      widgetRequests.some((q) => q.method === "GET" && q.url === `${MKOBA}/widget/v1_0/invoice/${d.invoiceId}?wait=25&known=PENDING`), widgetRequests);

    await page.click(testid("mmw-cancel"));
    const canceled = await waitEvent(page, "canceled", 10000);
    check("2 amount 10: cancel sends DELETE", widgetRequests.some((q) => q.method === "DELETE" && q.url === `${MKOBA}/widget/v1_0/invoice/${d.invoiceId}`));
    check("2 amount 10: the canceled event carries the invoice", canceled.detail && canceled.detail.invoiceId === d.invoiceId, canceled.detail);
    await page.waitForFunction(() => document.querySelector("#w").getAttribute("data-mmw-state") === "canceled", null, { timeout: 5000 });
    check("2 amount 10: the state is canceled", (await page.getAttribute(testid("mmw-state"), "data-state")) === "canceled");
    await sleep(500);
    check("2 amount 10: no failed event for a cancel", !(await events(page)).some((e) => e.type === "failed"), await events(page));
    await shot(page, "widget-canceled", "#w > .mmw-root");
    await page.click(testid("mmw-close"));
    await page.waitForSelector(testid("mmw-button"));
    check("2 amount 10: closing returns to the pay button", (await state(page)) === "idle" && !(await page.isVisible(testid("mmw-panel"))));
  });

  // 2b. Amount 10 again, cancelled elsewhere (the partner, another tab): the page learns it
  // from its long-poll and says canceled, not failed.
  await step("2b cancelled elsewhere", async ({ page }) => {
    await page.goto(checkoutUrl(SHOP, "10", `order-${RUN}-10b`));
    await page.click(testid("mmw-button"));
    const created = await waitEvent(page, "created", 10000);
    const id = created.detail.invoiceId;
    const del = await fetch(`${MKOBA}/widget/v1_0/invoice/${id}`, { method: "DELETE", headers: { Origin: SHOP } });
    check("2b cancelled elsewhere: the DELETE from elsewhere is accepted", del.status === 200, del.status);
    const canceled = await waitEvent(page, "canceled", SETTLE_TIMEOUT);
    check("2b cancelled elsewhere: the canceled event carries the invoice and its reason",
      canceled.detail && canceled.detail.invoiceId === id && canceled.detail.errorReason
        && canceled.detail.errorReason.code === "TRANSACTION_CANCELED", canceled.detail);
    await page.waitForSelector("#w[data-mmw-state=canceled]", { timeout: 5000 });
    check("2b cancelled elsewhere: the panel says Payment canceled", (await page.textContent(testid("mmw-panel"))).includes("Payment canceled"));
    check("2b cancelled elsewhere: no failed event", !(await events(page)).some((e) => e.type === "failed"), await events(page));
  });

  // 3. Amount 50 fails.
  await step("3 amount 50", async ({ page }) => {
    const ext = `order-${RUN}-50`;
    await page.goto(checkoutUrl(SHOP, "50", ext));
    await page.click(testid("mmw-button"));
    const created = await waitEvent(page, "created", 10000);
    invoiceChecks("3 amount 50: created", created.detail, { status: "PENDING", amount: "50", externalId: ext });
    const f = await waitEvent(page, "failed", SETTLE_TIMEOUT);
    invoiceChecks("3 amount 50: failed", f.detail, { status: "FAILED", amount: "50", invoiceId: created.detail.invoiceId });
    check("3 amount 50: the failed event says why", f.detail.errorReason && f.detail.errorReason.code === "APPROVAL_REJECTED", f.detail.errorReason);
    await page.waitForSelector(`#w[data-mmw-state=failed]`, { timeout: 5000 });
    check("3 amount 50: the panel says Payment failed", (await page.textContent(testid("mmw-panel"))).includes("Payment failed"));
    check("3 amount 50: a Try again button", await page.isVisible("button:has-text('Try again')"));
    check("3 amount 50: no successful event", !(await events(page)).some((e) => e.type === "successful"));
    await shot(page, "widget-failed", "#w > .mmw-root");
    await shot(page, "03-failed");
  });

  // 4. Amount 100 succeeds.
  await step("4 amount 100", async ({ page, widgetRequests }) => {
    const ext = `order-${RUN}-100`;
    await page.goto(checkoutUrl(SHOP, "100", ext));
    await page.click(testid("mmw-button"));
    const created = await waitEvent(page, "created", 10000);
    invoiceChecks("4 amount 100: created", created.detail, { status: "PENDING", amount: "100", externalId: ext });
    const s = await waitEvent(page, "successful", SETTLE_TIMEOUT);
    invoiceChecks("4 amount 100: successful", s.detail, { status: "SUCCESSFUL", amount: "100", invoiceId: created.detail.invoiceId });
    console.log(`invoice-100 ${s.detail.invoiceId}`);
    await page.waitForSelector(`#w[data-mmw-state=successful]`, { timeout: 5000 });
    check("4 amount 100: the panel says Paid with the amount", /Paid/.test(await page.textContent(testid("mmw-panel"))) &&
      (await text(page, "mmw-amount")) === `100 ${CURRENCY}`);
    check("4 amount 100: no failed event", !(await events(page)).some((e) => e.type === "failed"));
    await shot(page, "widget-successful", "#w > .mmw-root");
    await shot(page, "04-successful");
    await page.click(testid("mmw-close"));
    await page.click(testid("mmw-button"));
    await page.waitForSelector(testid("mmw-panel"));
    check("4 amount 100: once paid, the button shows the receipt and pays no second time",
      widgetRequests.filter((q) => q.method === "POST").length === 1 && /Paid/.test(await page.textContent(testid("mmw-panel"))));
    // A single-page checkout reuses the element for the next order: new data and
    // mobileMoneyReinitializeWidgets() make it a pay button for that order, not the last
    // order's receipt (before 2026-12-07 it kept showing "Paid").
    const next = `order-${RUN}-100-next`;
    await page.evaluate((ext) => {
      const w = document.getElementById("w");
      w.dataset.amount = "300";
      w.dataset.externalId = ext;
      window.mmwEvents.length = 0;
      window.mobileMoneyReinitializeWidgets();
    }, next);
    await page.waitForSelector(`#w ${testid("mmw-button")}`, { state: "visible", timeout: 5000 });
    check("4 amount 100: the reused element is no longer paid", !(await page.isVisible(`#w[data-mmw-state=successful]`)));
    await page.click(testid("mmw-button"));
    const again = await waitEvent(page, "created", 10000);
    invoiceChecks("4 amount 100: the next order's invoice", again.detail, { status: "PENDING", amount: "300", externalId: next });
  });

  // 5 and 6. The payer follows the QR link to the virtual phone and decides there.
  for (const [n, decision, outcome, status] of [["5", "approve", "successful", "SUCCESSFUL"], ["6", "reject", "failed", "FAILED"]]) {
    const tag = `${n} QR ${decision}`;
    await step(tag, async ({ page, context }) => {
      await page.goto(checkoutUrl(SHOP, "10", `order-${RUN}-qr-${decision}`));
      await page.click(testid("mmw-button"));
      const created = await waitEvent(page, "created", 10000);
      const id = created.detail.invoiceId;
      let phone;
      if (decision === "approve") {
        // A click on the QR code opens the link in a new tab, as a phone's camera would.
        [phone] = await Promise.all([context.waitForEvent("page", { timeout: 10000 }), page.click(testid("mmw-qr"))]);
        await phone.waitForLoadState();
      } else {
        const href = await page.getAttribute(testid("mmw-qr-link"), "href");
        phone = await context.newPage();
        await phone.goto(href);
      }
      check(`${tag}: the link opens the invoice on the phone`, phone.url().includes(`/portal/phone/invoice/${id}`), phone.url());
      await phone.waitForSelector(testid(`phone-${decision}`), { state: "visible" });
      const amount = (await phone.textContent(testid("phone-amount")).catch(() => "")) || "";
      check(`${tag}: the phone shows the amount`, /\b10([.,]0+)?\b/.test(amount), amount);
      await shot(phone, `0${n}-phone-${decision}`);
      await phone.click(testid(`phone-${decision}`));
      const e = await waitEvent(page, outcome, SETTLE_TIMEOUT);
      check(`${tag}: the merchant page gets ${outcome} for the invoice`, e.detail && e.detail.invoiceId === id && e.detail.status === status, e.detail);
      await page.waitForSelector(`#w[data-mmw-state=${outcome}]`, { timeout: 5000 });
      await shot(phone, `0${n}-phone-${decision}-done`);
      await shot(page, `0${n}-merchant-${outcome}`);
    });
  }

  // 7. An element added after load, set up by mobileMoneyReinitializeWidgets().
  await step("7 late element", async ({ page }) => {
    await page.goto(`${SHOP}/late`);
    await page.waitForFunction(() => typeof window.mobileMoneyReinitializeWidgets === "function", null, { timeout: 10000 });
    const attrs = { apiUserId: API_USER, amount: "10", currency: CURRENCY, externalId: `order-${RUN}-late` };
    await page.evaluate((a) => {
      const d = document.createElement("div");
      d.className = "mobile-money-qr-payment";
      d.id = "w";
      d.dataset.apiUserId = a.apiUserId;
      d.dataset.amount = a.amount;
      d.dataset.currency = a.currency;
      d.dataset.externalId = a.externalId;
      document.getElementById("slot").appendChild(d);
    }, attrs);
    await sleep(300);
    check("7 late element: not set up before the call", (await page.locator(`#w ${testid("mmw-button")}`).count()) === 0);
    await page.evaluate(() => window.mobileMoneyReinitializeWidgets());
    await page.waitForSelector(`#w ${testid("mmw-button")}`, { state: "visible", timeout: 5000 });
    check("7 late element: the button appears after mobileMoneyReinitializeWidgets()", true);
    await page.evaluate(() => window.mobileMoneyReinitializeWidgets());
    check("7 late element: a second call does not set it up twice", (await page.locator(testid("mmw-button")).count()) === 1);
    await page.click(testid("mmw-button"));
    const created = await waitEvent(page, "created", 10000);
    check("7 late element: created", created.detail && created.detail.status === "PENDING" && created.detail.externalId === attrs.externalId, created.detail);
    // Removing the element stops its long-poll.
    await page.evaluate(() => document.getElementById("w").remove());
    check("7 late element: removed quietly", true);
    await shot(page, "07-late");
  });

  // 8. A page whose origin the API user does not allow.
  await step("8 refused origin", async ({ page }) => {
    await page.goto(checkoutUrl(SHOP, "10", `order-${RUN}-refused`, REFUSED_API_USER));
    await page.click(testid("mmw-button"));
    const f = await waitEvent(page, "failed", 10000);
    const err = f.detail && f.detail.error;
    check("8 refused origin: failed with error.status 403", err && err.status === 403, f.detail);
    check("8 refused origin: the error has a code and a message", err && typeof err.code === "string" && err.code && typeof err.message === "string" && err.message, err);
    check("8 refused origin: detail is only the error", f.detail && JSON.stringify(Object.keys(f.detail)) === '["error"]', f.detail);
    check("8 refused origin: no created event", !(await events(page)).some((e) => e.type === "created"));
    const msg = page.locator(`#w ${testid("mmw-error")}`);
    check("8 refused origin: a visible message", (await msg.isVisible()) && ((await msg.textContent()) || "").trim().length > 0);
    check("8 refused origin: the state is failed", (await state(page)) === "failed");
    await shot(page, "widget-refused", "#w > .mmw-root");
    await shot(page, "08-refused");
  }, /status of 403/);

  // 9. The page's clock runs ahead of the server's (by more than the invoice's whole
  // validity): its countdown ends at once, but the widget waits for the server's word, so a
  // payment approved after that still ends as paid on the page.
  await step("9 clock ahead", async ({ page, context }) => {
    await context.addInitScript(() => {
      const real = Date.now.bind(Date);
      Date.now = () => real() + 24 * 3600 * 1000;
    });
    await page.goto(checkoutUrl(SHOP, "10", `order-${RUN}-clock`));
    await page.click(testid("mmw-button"));
    const created = await waitEvent(page, "created", 10000);
    const id = created.detail.invoiceId;
    await page.waitForFunction(() => document.querySelector("#w").getAttribute("data-mmw-state") === "expiring", null, { timeout: 5000 });
    check("9 clock ahead: the countdown ends on the page's clock", (await text(page, "mmw-countdown")) === "Expired");
    check("9 clock ahead: no QR code to pay once it ended", !(await page.isVisible(testid("mmw-qr"))));
    const phone = await context.newPage();
    const r = await fetch(`${MKOBA}/widget/v1_0/invoice/${id}`, { headers: { Origin: SHOP } });
    const link = (await r.json()).qrLink;
    await phone.goto(link);
    await phone.waitForSelector(testid("phone-approve"), { state: "visible" });
    await phone.click(testid("phone-approve"));
    const s = await waitEvent(page, "successful", SETTLE_TIMEOUT);
    check("9 clock ahead: the page gets successful for the invoice", s.detail && s.detail.invoiceId === id && s.detail.status === "SUCCESSFUL", s.detail);
    await page.waitForSelector(`#w[data-mmw-state=successful]`, { timeout: 5000 });
    check("9 clock ahead: no failed event", !(await events(page)).some((e) => e.type === "failed"));
    await shot(page, "09-clock-ahead-paid");
  });

  // 10. A single-page app takes a pending element off the page and puts it back, and
  // copies it: mobileMoneyReinitializeWidgets() sets both up again, and each makes its
  // invoice.
  await step("10 detached and copied", async ({ page }) => {
    await page.goto(checkoutUrl(SHOP, "10", `order-${RUN}-moved`));
    await page.click(testid("mmw-button"));
    await waitEvent(page, "created", 10000);
    await page.evaluate(async () => {
      const w = document.getElementById("w");
      const parent = w.parentNode;
      w.remove();
      await new Promise((r) => setTimeout(r, 2500));
      parent.appendChild(w);
      const copy = w.cloneNode(true);
      copy.id = "w2";
      copy.dataset.externalId = w.dataset.externalId + "-copy";
      parent.appendChild(copy);
      window.mmwEvents.length = 0;
      window.mobileMoneyReinitializeWidgets();
    });
    for (const id of ["w", "w2"]) {
      const ready = await page.waitForSelector(`#${id} ${testid("mmw-button")}`, { state: "visible", timeout: 5000 }).then(() => true, () => false);
      check(`10 detached and copied: #${id} shows the pay button again`, ready);
      if (!ready) continue;
      await page.click(`#${id} ${testid("mmw-button")}`);
      const made = await page.waitForFunction((t) => window.mmwEvents.some((e) => e.type === "created" && e.target === t), id, { timeout: 10000 }).then(() => true, () => false);
      check(`10 detached and copied: #${id} makes its invoice`, made, await events(page));
    }
  });

  // 11. A currency the API user's market does not use: MoMo's 500 INVALID_CURRENCY, which
  // trying again cannot change: the failure is shown without "Try again".
  await step("11 wrong currency", async ({ page }) => {
    const q = new URLSearchParams({ amount: "100", currency: CURRENCY === "EUR" ? "GHS" : "EUR", externalId: `order-${RUN}-cur`, apiUser: API_USER });
    await page.goto(`${SHOP}/checkout?${q}`);
    await page.click(testid("mmw-button"));
    const f = await waitEvent(page, "failed", 10000);
    const err = f.detail && f.detail.error;
    check("11 wrong currency: failed with INVALID_CURRENCY", err && err.code === "INVALID_CURRENCY", f.detail);
    check("11 wrong currency: no Try again", !(await page.isVisible("button:has-text('Try again')")));
  }, /status of 500/);

  await browser.close();
  server.close();
}

run(main);
