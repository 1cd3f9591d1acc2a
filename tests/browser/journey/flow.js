// A developer account's journey as a person goes through it, in headless Chromium at
// 1280 px and again at 390 px: sign up, the activation mail in the sandbox mailbox, the
// activation link, sign-in, the phone step with the code from the virtual phone, the
// M-Pesa API key (kept on the profile, as seed 004 has it); then My Profile (name, password change signing out another
// session, e-mail change by link, M-Pesa key renewal with its confirmation, the PEM
// download, a subscription key regenerated after confirming), forgot-password, the
// go-live request (refused until each product asked for has a successful sandbox
// payment: an M-Pesa C2B from the API page, a request-to-pay as a backend makes it)
// approved by the operator (and a production API user after it), and
// deleting the account. Every page is saved as a screenshot into $ARTIFACTS, and at phone
// width no page may scroll sideways.
"use strict";
const lib = require("../lib");
const { need, check, launch, run } = lib;

const BASE = need("PORTAL_BASE_URL", "a running server, e.g. http://127.0.0.1:8080").replace(/\/$/, "");
const OPERATOR_EMAIL = need("OPERATOR_EMAIL", "an operator who approves the go-live request");
const OPERATOR_PASSWORD = need("OPERATOR_PASSWORD");

async function text(page, selector) {
  return ((await page.textContent(selector)) || "").trim();
}

/// One journey in a browser context of the given size; `tag` prefixes its screenshots.
async function journey(browser, size, tag) {
  const context = await browser.newContext(size);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Refused forms answer 4xx on purpose; Chromium reports those as console errors.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) errors.push(m.text());
  });
  const narrow = size.viewport.width < 500;
  // A screenshot of `on` (this page, or the operator's), which at phone width must fit.
  const shotOf = async (on, name) => {
    if (narrow) {
      const wide = await on.evaluate(() => document.documentElement.scrollWidth);
      check(`${tag} ${name} fits the screen`, wide <= size.viewport.width + 2, `scrollWidth ${wide}`);
    }
    await lib.shot(on, `${tag}-${name}`);
  };
  const shot = (name) => shotOf(page, name);
  const email = `journey-${tag}-${Date.now()}@example.com`;
  const password = "correct horse battery";

  // Sign up: the account is created inactive.
  await page.goto(`${BASE}/portal/signup`);
  check(`${tag} the sign-up page links the sandbox mailbox`, await page.isVisible("[data-testid=mailbox-link]"));
  await page.fill("#name", "Neema Developer");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#password2", password);
  await shot("01-signup");
  await page.click("button[type=submit]");
  check(`${tag} sign-up asks to check the e-mail`, (await text(page, "h1")) === "Check your e-mail");
  check(`${tag} the page names the address`, (await page.textContent("main")).includes(email));
  await shot("02-check-email");

  // Signing in before activation is refused with an explanation.
  await page.goto(`${BASE}/portal/signin`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  check(`${tag} an inactive account cannot sign in yet`, (await page.textContent("main")).includes("not activated yet"));
  await shot("03-not-activated");

  // The mailbox (banner link) has the activation mail; its link activates the account.
  await page.goto(`${BASE}/portal/signin`);
  await page.click("[data-testid=mailbox-link]");
  check(`${tag} the mailbox shows the activation mail`, await page.isVisible("[data-testid=mail-activation]"));
  await shot("04-mailbox");
  await page.click("a[href*='/portal/activate?t=']");
  check(`${tag} the link activates the e-mail`, await page.isVisible("[data-testid=activated]"));
  await shot("05-activated");

  // Sign in: the phone step.
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  check(`${tag} sign-in leads to the phone step`, page.url().endsWith("/portal/welcome"));
  await shot("06-phone-step");
  await page.fill("#phone", "12ab");
  await page.click("text=Send the code");
  check(`${tag} a malformed number is refused`, await page.isVisible("p.error"));
  await page.fill("#phone", "+255 712 345 678");
  await page.click("text=Send the code");
  const sms = await text(page, "[data-testid=sms]");
  const code = (sms.match(/code is (\d{6})/) || [])[1];
  check(`${tag} the code arrives on the virtual phone`, !!code, sms);
  await shot("07-code-sent");
  await page.fill("#code", code === "000000" ? "000001" : "000000");
  await page.click("text=Confirm and activate");
  check(`${tag} a wrong code is refused`, (await text(page, "p.error")).includes("tries left"));
  await page.fill("#code", code);
  await page.click("text=Confirm and activate");
  const firstKey = await text(page, "[data-testid=mpesa-api-key]");
  check(`${tag} the account is active and its M-Pesa API key shown`, /^[a-z0-9]{32}$/.test(firstKey), firstKey);
  check(`${tag} after a redirect, so a reload sends nothing again`, page.url().endsWith("/portal/welcome/done"), page.url());
  await shot("08-active");

  // My profile: the M-Pesa API key, name and password (another session is signed out).
  await page.goto(`${BASE}/portal/profile`);
  check(`${tag} the profile shows the phone`, (await page.textContent("main")).includes("+255712345678"));
  check(`${tag} the profile shows the M-Pesa API key`, (await text(page, "[data-testid=mpesa-api-key]")) === firstKey);
  await shot("09-profile");
  await page.fill("#name", "Neema K.");
  await page.click("button:has-text('Save name')");
  check(`${tag} the name is saved`, (await page.inputValue("#name")) === "Neema K.");
  // The phone number, changed with a code sent to the new number's virtual phone.
  await page.click("[data-testid=change-phone]");
  await page.fill("#phone", "+255 754 000 111");
  await page.click("text=Send the code");
  const newSms = await text(page, "[data-testid=sms]");
  const newCode = (newSms.match(/code is (\d{6})/) || [])[1];
  check(`${tag} the new number's code arrives on its virtual phone`, !!newCode, newSms);
  await page.fill("#code", newCode);
  await page.click("button:has-text('Confirm the new number')");
  const changed = await page.textContent("main");
  check(`${tag} the phone number is changed`, changed.includes("Your phone number was changed.") && changed.includes("+255754000111"),
    page.url() + " " + changed.slice(0, 300));
  await shot("09b-phone-changed");
  const other = await browser.newContext(size);
  const elsewhere = await other.newPage();
  await elsewhere.goto(`${BASE}/portal/signin`);
  await elsewhere.fill("#email", email);
  await elsewhere.fill("#password", password);
  await elsewhere.click("button[type=submit]");
  check(`${tag} a second session is open`, elsewhere.url().endsWith("/portal"));
  const newPassword = "a different long password";
  await page.fill("#current", password);
  await page.fill("#new_password", newPassword);
  await page.fill("#new_password2", newPassword);
  await page.click("button:has-text('Change password')");
  check(`${tag} the password is changed`, (await page.textContent("main")).includes("every other session was signed out"));
  await shot("10-password-changed");
  await elsewhere.goto(`${BASE}/portal/apiusers`);
  check(`${tag} the other session was signed out`, elsewhere.url().includes("/portal/signin"));
  await other.close();

  // E-mail change, confirmed by the link sent to the new address.
  const newEmail = email.replace("@", "+new@");
  await page.fill("#new_email", newEmail);
  await page.fill("#email_password", newPassword);
  await page.click("button:has-text('Send the confirmation link')");
  check(`${tag} the change waits for the link`, (await page.textContent("main")).includes("We sent a link to the new address"));
  await page.goto(`${BASE}/portal/mail`);
  await shot("11-mailbox-signed-in");
  await page.click("a[href*='/portal/profile/email/confirm?t=']");
  check(`${tag} the link changes the e-mail`, await page.isVisible("[data-testid=email-changed]"));
  await shot("12-email-changed");
  await page.goto(`${BASE}/portal/profile`);
  check(`${tag} the profile shows the new e-mail`, (await text(page, "[data-testid=profile-email]")) === newEmail);

  // The M-Pesa key renewal asks first, then says what changed.
  await page.click("button:has-text('Renew API key')");
  check(`${tag} renewing asks for confirmation`, (await text(page, "h1")) === "Renew your M-Pesa API key?");
  await shot("13-confirm-renewal");
  await page.click("[data-testid=confirm]");
  const secondKey = await text(page, "[data-testid=mpesa-api-key]");
  check(`${tag} a new key is shown`, secondKey.length === 32 && secondKey !== firstKey);
  check(`${tag} the page says the old key no longer works`, (await text(page, "p.notice")).includes("no longer works"));
  await shot("14-renewed");
  await page.reload();
  check(`${tag} reloading renews nothing`, (await text(page, "[data-testid=mpesa-api-key]")) === secondKey);

  // The public key as PEM.
  await page.goto(`${BASE}/portal/profile`);
  const pemPath = await page.getAttribute("[data-testid=pem-download]", "href");
  const pem = await (await page.request.get(BASE + pemPath)).text();
  check(`${tag} the PEM download is a public key`, pem.startsWith("-----BEGIN PUBLIC KEY-----\n") && pem.trim().endsWith("-----END PUBLIC KEY-----"));

  // A subscription key is regenerated only after confirming.
  await page.goto(`${BASE}/portal`);
  await page.click("text=Subscribe to collection");
  const oldKey = await text(page, "[data-testid=key-collection-primary]");
  await page.click("button[aria-label='Regenerate the primary collection key']");
  check(`${tag} regenerating asks first`, (await text(page, "h1")).startsWith("Regenerate the primary"));
  await shot("15-confirm-regenerate");
  await page.click("[data-testid=confirm]");
  check(`${tag} the notice names the old key`, (await page.textContent("main")).includes(`…${oldKey.slice(-4)} no longer works`));
  check(`${tag} the key changed`, (await text(page, "[data-testid=key-collection-primary]")) !== oldKey);

  // Sign out; forgot-password from the sign-in page.
  await page.click("text=Sign out");
  await page.click("text=Forgot your password?");
  await page.fill("#email", newEmail);
  await page.click("button:has-text('Send the link')");
  check(`${tag} forgot-password answers without saying whether the account exists`, (await text(page, "h1")) === "Check your e-mail");
  await shot("16-forgot");
  // The developer reads the link in their mailbox, signed in on another device.
  const device = await browser.newContext(size);
  const phone = await device.newPage();
  await phone.goto(`${BASE}/portal/signin`);
  await phone.fill("#email", newEmail);
  await phone.fill("#password", newPassword);
  await phone.click("button[type=submit]");
  await phone.goto(`${BASE}/portal/mail`);
  const reset = await phone.getAttribute("a[href*='/portal/reset?t=']", "href");
  await device.close();
  await page.goto(reset);
  await shot("17-reset");
  const resetPassword = "the third long password";
  await page.fill("#password", resetPassword);
  await page.fill("#password2", resetPassword);
  await page.click("button:has-text('Set the password')");
  check(`${tag} the reset lands on sign-in`, (await page.textContent("main")).includes("Your password was changed"));
  await page.goto(reset);
  check(`${tag} the reset link works once`, (await page.textContent("main")).includes("used already"));
  await page.goto(`${BASE}/portal/signin`);
  await page.fill("#email", newEmail);
  await page.fill("#password", resetPassword);
  await page.click("button[type=submit]");
  check(`${tag} the new password signs in`, page.url().endsWith("/portal"));

  // Go live: before approval only the sandbox; the request with its report; the
  // operator approves it; then the approved market opens.
  await page.goto(`${BASE}/portal/apiusers`);
  check(`${tag} production markets wait for go-live`, await page.isDisabled("option[value=mtnuganda]"));
  // The go-live form filled in afresh, asking for `products` (and Uganda for MoMo's).
  const goLiveForm = async (products) => {
    await page.goto(`${BASE}/portal/golive`);
    await page.fill("#company", "Neema Clinics");
    await page.fill("#use_case", "Patients pay consultations from their phones.");
    if (products.some((p) => p !== "mpesa")) await page.check("input[name=market][value=mtnuganda]");
    for (const p of products) await page.check(`input[name=product][value=${p}]`);
  };
  // The request needs a tested integration (seed 004): refused while the report holds no
  // successful payment; a C2B sent from the M-Pesa API page's Send Request box makes one.
  await goLiveForm(["mpesa"]);
  await page.click("button:has-text('Submit the go-live request')");
  check(`${tag} go-live waits for a successful sandbox payment`, (await page.textContent("main")).includes("no successful sandbox transaction yet"));
  await shot("19b-golive-untested");
  await page.goto(`${BASE}/portal/docs/v2C2bSingleStage`);
  await page.click("details.send > summary");
  await Promise.all([page.waitForNavigation(), page.click("details.send button[type=submit]")]);
  check(`${tag} a sandbox C2B from the API page`, (await page.textContent("[data-testid=send-status]")).trim() === "201");
  // Each product asked for needs its own: Collection is refused until a request-to-pay
  // succeeds, made as the developer's backend makes one (a sandbox API user and key from
  // the API users page, a token, the payment, its status).
  await goLiveForm(["collection", "mpesa"]);
  await page.click("button:has-text('Submit the go-live request')");
  check(`${tag} go-live names the product not tested`, (await page.textContent("[role=alert]")).includes("no successful sandbox transaction of Collection:"));
  await shot("19c-golive-product-untested");
  await page.goto(`${BASE}/portal`);
  const subscription = await text(page, "[data-testid=key-collection-primary]");
  await page.goto(`${BASE}/portal/apiusers`);
  await page.fill("#host", "clinic.example");
  await page.selectOption("#environment", "sandbox");
  await page.click("button:has-text('Create API user')");
  const basic = Buffer.from(`${await text(page, "h1")}:${await text(page, "[data-testid=new-api-key]")}`).toString("base64");
  const backend = { "Ocp-Apim-Subscription-Key": subscription };
  const grant = await page.request.post(`${BASE}/collection/token/`, { headers: { ...backend, Authorization: `Basic ${basic}` } });
  backend.Authorization = `Bearer ${(await grant.json()).access_token}`;
  backend["X-Target-Environment"] = "sandbox";
  const reference = require("crypto").randomUUID();
  const payment = await page.request.post(`${BASE}/collection/v1_0/requesttopay`, {
    headers: { ...backend, "X-Reference-Id": reference },
    data: { amount: "5", currency: "EUR", externalId: "neema-1", payer: { partyIdType: "MSISDN", partyId: "256779999001" }, payerMessage: "Consultation", payeeNote: "Consultation" },
  });
  check(`${tag} a sandbox request-to-pay is accepted`, payment.status() === 202, `status ${payment.status()}`);
  let status = "";
  for (let i = 0; i < 50 && status !== "SUCCESSFUL"; i++) {
    const r = await page.request.get(`${BASE}/collection/v1_0/requesttopay/${reference}`, { headers: backend });
    status = (await r.json()).status;
    if (status !== "SUCCESSFUL") await page.waitForTimeout(100);
  }
  check(`${tag} the request-to-pay succeeds`, status === "SUCCESSFUL", status);
  await goLiveForm(["collection", "mpesa"]);
  await shot("20-golive-form");
  await page.click("button:has-text('Submit the go-live request')");
  check(`${tag} the request waits for review`, (await page.textContent("main")).includes("Waiting for review"));
  await shot("21-golive-sent");
  const ops = await browser.newContext(size);
  const op = await ops.newPage();
  await op.goto(`${BASE}/portal/signin`);
  await op.fill("#email", OPERATOR_EMAIL);
  await op.fill("#password", OPERATOR_PASSWORD);
  await op.click("button[type=submit]");
  check(`${tag} the operator lands on the requests`, op.url().endsWith("/portal/operator"));
  const opShot = (name) => shotOf(op, name);
  await opShot("22-operator-requests");
  await op.click(`tr:has-text('${newEmail}') a`);
  check(`${tag} the operator sees the company`, (await op.textContent("main")).includes("Neema Clinics"));
  await opShot("23-operator-request");
  await op.fill("#comment", "Verified, welcome.");
  await op.click("button:has-text('Approve')");
  check(`${tag} the operator approved`, (await op.textContent("main")).includes("Approved"));
  await op.goto(`${BASE}/portal/operator/accounts`);
  await opShot("24-operator-accounts");
  await op.goto(`${BASE}/portal/mail`);
  await opShot("25-operator-mailbox");
  await ops.close();
  await page.goto(`${BASE}/portal/golive`);
  check(`${tag} the developer has production access`, (await text(page, "[data-testid=live-access]")).startsWith("mtnuganda"));
  await shot("26-golive-approved");
  await page.goto(`${BASE}/portal/apiusers`);
  await page.fill("#host", "clinic.example");
  await page.selectOption("#environment", "mtnuganda");
  await page.click("button:has-text('Create API user')");
  check(`${tag} a production API user is created`, (await page.textContent("main")).includes("mtnuganda"));
  await page.goto(`${BASE}/portal/mail`);
  check(`${tag} the approval was mailed`, (await page.textContent("main")).includes("Your go-live request was approved"));

  // Delete the account: confirmation with the password.
  await page.goto(`${BASE}/portal/profile`);
  await page.click("button:has-text('Delete my account')");
  check(`${tag} deleting asks first`, (await text(page, "h1")) === "Delete your account?");
  await shot("18-confirm-delete");
  await page.fill("#confirm_password", resetPassword);
  await page.click("[data-testid=confirm]");
  check(`${tag} the account is deleted`, await page.isVisible("[data-testid=deleted]"));
  await shot("19-deleted");
  await page.goto(`${BASE}/portal/signin`);
  await page.fill("#email", newEmail);
  await page.fill("#password", resetPassword);
  await page.click("button[type=submit]");
  check(`${tag} a deleted account cannot sign in`, (await page.textContent("main")).includes("do not match"));
  check(`${tag} no script errors`, errors.length === 0, errors.join("; "));
  await context.close();
}

async function main() {
  const browser = await launch();
  await journey(browser, { viewport: { width: 1280, height: 900 } }, "desktop");
  await journey(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }, "phone");
  await browser.close();
}

run(main);
