// The portal's API pages and guides as a developer uses them, in headless Chromium: the
// sample code with their own keys and its copy button, the Send Request box on a v2
// M-Pesa page (the response beside the parameters sent), a v1x page with its port, the
// guides, and every page at phone width. Screenshots go to $ARTIFACTS.
"use strict";
const { need, check, launch, shot, run } = require("../lib");

const BASE = need("PORTAL_BASE_URL", "a running server, e.g. http://127.0.0.1:8080").replace(/\/$/, "");
const EMAIL = need("PORTAL_EMAIL", "a developer who can sign in");
const PASSWORD = need("PORTAL_PASSWORD");

async function main() {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  // Sign in.
  await page.goto(`${BASE}/portal/signin`);
  await page.fill("#email", EMAIL);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("form.stack button[type=submit]")]);
  check("signed in", !page.url().includes("/portal/signin"), page.url());

  // The API docs index links every operation to its page.
  await page.goto(`${BASE}/portal/docs`);
  const links = await page.$$eval("a.op-page", (as) => as.length);
  check("the index links every operation's page", links > 70, String(links));

  // A MoMo page: the developer's key in the samples, copy buttons that work.
  await page.goto(`${BASE}/portal/docs/Collection-Requesttopay-V1`);
  check("the request-to-pay page has its title", (await page.textContent("h1")).includes("requesttopay"));
  const curl = await page.textContent("[data-testid=sample-curl]");
  check("the curl sample names the request-to-pay URL", curl.includes(`curl -i -X POST "${BASE}/collection/v1_0/requesttopay"`), curl);
  check("the curl sample carries a subscription key", /SUBSCRIPTION_KEY='[0-9a-f]{32}'/.test(curl), curl);
  const columns = await page.$eval(".doc-grid", (g) => getComputedStyle(g).gridTemplateColumns.split(" ").length);
  check("reference and samples side by side at 1280 px", columns === 2, String(columns));
  const copy = page.locator("details.code[open] button.copy").first();
  check("the copy button shows with JavaScript", await copy.isVisible());
  await copy.click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check("the copy button copies the sample as shown", copied.trim() === curl.trim(), copied.slice(0, 80));
  await page.click("details.code[data-lang=python] > summary");
  check("another language opens", await page.isVisible("[data-testid=sample-python]"));
  await shot(page, "01-momo-request-to-pay");

  // A v2 M-Pesa page: Send Request with a fresh session, the answer beside the parameters.
  await page.goto(`${BASE}/portal/docs/v2C2bSingleStage`);
  check("the Send Request box starts closed", !(await page.isVisible("#send-body")));
  await page.click("details.send > summary");
  const headers = await page.inputValue("#send-headers");
  check("the box shows the encrypted session bearer", /Authorization: Bearer [A-Za-z0-9+/=]{600,}/.test(headers), headers.slice(0, 80));
  const context_ = await page.textContent("[data-testid=send-context]");
  check("the box shows verb, resource URL and SSL", context_.includes("POST") && context_.includes("/c2bPayment/singleStage/") && context_.includes("false"), context_);
  await shot(page, "02-mpesa-send-request");
  await Promise.all([page.waitForNavigation(), page.click("details.send button[type=submit]")]);
  const status = await page.textContent("[data-testid=send-status]");
  check("the C2B is answered 201", status.trim() === "201", status);
  const sent = await page.textContent("[data-testid=sent-parameters]");
  const received = await page.textContent("[data-testid=response-parameters]");
  check("the parameters sent are shown", sent.includes("input_CustomerMSISDN") && sent.includes("000000000001"), sent);
  check("the response parameters are shown", received.includes("output_TransactionID") && received.includes("INS-0"), received);
  await shot(page, "03-mpesa-response");

  // A v1x page: its own port in the context and the samples.
  await page.goto(`${BASE}/portal/docs/v1xC2bSingleStage`);
  const port = (await page.textContent("[data-testid=resource-port]")).trim();
  check("the v1x page shows its port", /^\d+$/.test(port), port);
  const v1x = await page.textContent("[data-testid=sample-curl]");
  check("the v1x sample calls that port with the encrypted API key", v1x.includes(`:${port}/ipg/v1x/c2bPayment/singleStage/`) && v1x.includes('bearer "$MPESA_API_KEY"'), v1x);
  await shot(page, "04-mpesa-v1x");

  // Guides.
  await page.goto(`${BASE}/portal/guides`);
  await shot(page, "05-guides");
  await page.click("a[href='/portal/guides/sandbox-use-cases']");
  const tables = await page.$$eval(".guide table", (t) => t.length);
  check("the sandbox guide has its tables", tables >= 8, String(tables));
  const text = await page.textContent(".guide");
  check("the sandbox guide has the test numbers", text.includes("46733123450") && text.includes("258840000008"));
  await shot(page, "06-guide-sandbox");
  await page.goto(`${BASE}/portal/guides/introduction`);
  await Promise.all([page.waitForNavigation(), page.click(".guide a[href='/portal/guides/sandbox-use-cases'] >> nth=0")]);
  check("a link between guides works", page.url().endsWith("/portal/guides/sandbox-use-cases"), page.url());

  // Phone width: nothing scrolls sideways.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  small.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  for (const c of await context.cookies()) await phone.addCookies([c]);
  for (const [name, path] of [
    ["momo-request-to-pay", "/portal/docs/Collection-Requesttopay-V1"],
    ["mpesa-c2b", "/portal/docs/v2C2bSingleStage"],
    ["mpesa-v1x", "/portal/docs/v1xReversal"],
    ["guides", "/portal/guides"],
    ["guide-sandbox", "/portal/guides/sandbox-use-cases"],
    ["guide-codes", "/portal/guides/mpesa-response-codes"],
  ]) {
    await small.goto(BASE + path);
    const wide = await small.evaluate(() => document.documentElement.scrollWidth);
    check(`${name} fits a phone screen`, wide <= 392, `scrollWidth ${wide}`);
    await shot(small, `phone-${name}`);
  }
  await phone.close();
  check("no script or policy errors", errors.length === 0, errors.join("; "));
  await browser.close();
}

run(main);
