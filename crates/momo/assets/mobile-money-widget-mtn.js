/*! Mkoba: MTN MoMo Collection Widget, mobile-money-widget-mtn.js v0.1.0 (Apache-2.0).
 * <script src="https://MKOBA/v0.1.0/mobile-money-widget-mtn.js"></script>
 * <div class="mobile-money-qr-payment" data-api-user-id="UUID v4" data-amount="10"
 *      data-currency="EUR" data-external-id="order-1"></div>
 * Each element becomes a MoMo pay button; a click opens a panel and creates an invoice on
 * the server this script came from (QR code and USSD code for the payer). The element
 * dispatches bubbling CustomEvents mobile-money-qr-payment-created, -successful, -failed
 * and -canceled with the invoice as `detail` ({error: {status, code, message}} for a
 * network or gateway failure). Call mobileMoneyReinitializeWidgets() for elements added
 * later. No dependencies, no external assets, no eval, no inline handlers or styles.
 */
(() => {
  "use strict";
  if (typeof window === "undefined" || typeof document === "undefined") return;
  // Loaded twice: the first copy is in charge.
  if (typeof window.mobileMoneyReinitializeWidgets === "function") return window.mobileMoneyReinitializeWidgets();

  const FILE = /\/(?:v\d+(?:\.\d+)*\/)?mobile-money-widget-mtn\.js$/;
  const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
  const FIELDS = ["invoiceId", "externalId", "referenceId", "paymentReference", "payee",
    "payeeFirstName", "payeeLastName", "amount", "currency", "status", "expiryDateTime", "errorReason"];
  const WAIT_S = 25;
  const MAX_FAILURES = 5;
  const MAX_BACKOFF_MS = 30000;
  const FINAL = ["successful", "failed", "canceled", "expired"];
  const ABORTED = new Error("aborted");

  // ---- where we were loaded from: the server's base URL --------------------------------
  const pathOf = (src) => { try { return new URL(src, document.baseURI).pathname; } catch (_) { return ""; } };
  const script = (() => {
    const cur = document.currentScript;
    if (cur && cur.src && FILE.test(pathOf(cur.src))) return cur;
    const all = document.getElementsByTagName("script");
    for (let i = all.length - 1; i >= 0; i--) if (all[i].src && FILE.test(pathOf(all[i].src))) return all[i];
    return cur && cur.src ? cur : null;
  })();
  const BASE = (() => {
    try {
      const u = new URL(script.src, document.baseURI);
      return u.origin + u.pathname.replace(FILE, "").replace(/\/+$/, "");
    } catch (_) {
      return window.location.origin;
    }
  })();
  const NONCE = (script && (script.nonce || script.getAttribute("nonce"))) || "";

  // ---- style (one <style>, with the script's nonce for pages with a CSP) ----------------
  const CSS = `
.mmw-root{display:inline-block;vertical-align:middle;font:14px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;text-align:left;letter-spacing:normal}
.mmw-root *,.mmw-root *::before,.mmw-root *::after{box-sizing:border-box}
.mmw-root [hidden]{display:none!important}
.mmw-root p{margin:0}
.mmw-root button{margin:0;font:inherit;text-transform:none;cursor:pointer}
.mmw-root button:disabled{cursor:default;opacity:.6}
.mmw-root button:focus-visible,.mmw-root a:focus-visible{outline:3px solid #004f71;outline-offset:2px}
.mmw-root .mmw-btn{display:block;width:45px;height:36px;padding:0;border:0;border-radius:8px;background:#ffcc00;color:#000;font-size:12px;font-weight:800;letter-spacing:-.3px;box-shadow:0 1px 3px rgba(0,0,0,.3)}
.mmw-root .mmw-btn:hover{background:#ffd633}
.mmw-root .mmw-btn.mmw-done{background:#1e7d32;color:#fff}
.mmw-panel{display:flex;flex-direction:column;width:220px;height:400px;overflow:hidden;background:#fff;border:1px solid #ddd;border-radius:12px;box-shadow:0 4px 18px rgba(0,0,0,.18)}
.mmw-panel:focus{outline:none}
.mmw-head{display:flex;align-items:center;gap:6px;height:40px;padding:0 6px 0 10px;background:#ffcc00;color:#000}
.mmw-logo{padding:2px 5px;border-radius:5px;background:#000;color:#ffcc00;font-size:12px;font-weight:800}
.mmw-title{flex:1;min-width:0;overflow:hidden;font-size:13px;font-weight:600;white-space:nowrap;text-overflow:ellipsis}
.mmw-root .mmw-close{flex:none;width:26px;height:26px;padding:0;border:0;border-radius:50%;background:transparent;color:#000;font-size:20px;line-height:1}
.mmw-root .mmw-close:hover{background:rgba(0,0,0,.12)}
.mmw-body{flex:1;display:flex;flex-direction:column;align-items:center;justify-content:center;gap:5px;padding:8px 12px;overflow:auto;text-align:center}
.mmw-amount{font-size:20px;font-weight:700;line-height:1.2}
.mmw-sub,.mmw-count{color:#555;font-size:12px}
.mmw-qr-link{display:block;line-height:0}
.mmw-qr{width:140px;height:140px;border:1px solid #eee;border-radius:6px;background:#fff}
.mmw-hint{color:#666;font-size:11px}
.mmw-ussd{font-size:12px}
.mmw-ussd a{color:inherit;font-weight:700;text-decoration:none;white-space:nowrap}
.mmw-count b{font-variant-numeric:tabular-nums}
.mmw-gone .mmw-qr-link,.mmw-gone .mmw-hint,.mmw-gone .mmw-ussd,.mmw-gone .mmw-until{display:none}
.mmw-root .mmw-action{width:100%;height:32px;margin-top:4px;border:1px solid #bbb;border-radius:8px;background:#fff;color:#1a1a1a;font-weight:600}
.mmw-root .mmw-action:hover{background:#f3f3f3}
.mmw-root .mmw-primary,.mmw-root .mmw-primary:hover{border-color:#ffcc00;background:#ffcc00;color:#000}
.mmw-status{min-height:30px;padding:6px 10px;border-top:1px solid #eee;color:#444;font-size:12px;text-align:center}
.mmw-big{display:flex;align-items:center;justify-content:center;width:56px;height:56px;border-radius:50%;background:#888;color:#fff;font-size:30px;font-weight:700}
.mmw-headline{font-size:17px;font-weight:700}
.mmw-ok .mmw-big{background:#1e7d32}.mmw-ok .mmw-headline{color:#1e7d32}
.mmw-bad .mmw-big{background:#c62828}.mmw-bad .mmw-headline{color:#c62828}
.mmw-error{max-width:260px;padding:8px 10px;border:1px solid #f1b7bf;border-radius:8px;background:#fdecee;color:#a0001c;font-size:12px;text-align:left;overflow-wrap:anywhere}
.mmw-error ul{margin:4px 0 0;padding-left:16px}
.mmw-spin{width:30px;height:30px;border:3px solid #eee;border-top-color:#e6b800;border-radius:50%;animation:mmw-spin .8s linear infinite}
@keyframes mmw-spin{to{transform:rotate(360deg)}}
@media (prefers-reduced-motion:reduce){.mmw-spin{animation-duration:4s}}`;

  function injectStyle() {
    if (document.getElementById("mmw-style")) return;
    const s = document.createElement("style");
    s.id = "mmw-style";
    if (NONCE) s.nonce = NONCE;
    s.textContent = CSS;
    (document.head || document.documentElement).appendChild(s);
  }

  // ---- helpers -------------------------------------------------------------------------
  /** An element; attribute `text` sets its text. Never HTML: server data stays text. */
  function h(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children || []) if (c) e.append(c);
    return e;
  }

  function button(cls, testid, label, onClick, aria) {
    const b = h("button", { type: "button", class: cls, "data-testid": testid, "aria-label": aria, text: label });
    b.addEventListener("click", onClick);
    return b;
  }

  const sleep = (ms, signal) => new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => { clearTimeout(t); signal.removeEventListener("abort", done); resolve(); };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });

  function childOf(signal) {
    const c = new AbortController();
    if (signal.aborted) c.abort();
    else signal.addEventListener("abort", () => c.abort(), { once: true });
    return c;
  }

  /** An http(s) URL, or null (no javascript: links from a server's answer). */
  function safeUrl(value, base) {
    try {
      const u = new URL(String(value), base);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  function retryAfterMs(v) {
    if (!v) return 0;
    if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
    const d = Date.parse(v);
    return isNaN(d) ? 0 : Math.max(0, d - Date.now());
  }

  /** The invoice fields of the public contract, copied; nothing else. */
  function pick(inv) {
    const out = {};
    for (const k of FIELDS) {
      if (!(k in inv)) continue;
      const p = inv.payee && typeof inv.payee === "object" ? inv.payee : {};
      out[k] = k === "payee" ? { partyIdType: p.partyIdType, partyId: p.partyId } : inv[k];
    }
    return out;
  }

  const isInvoice = (j) => !!j && typeof j === "object" && typeof j.invoiceId === "string" && j.invoiceId !== "" && typeof j.status === "string";
  // MoMo answers some refusals that trying again cannot change with a 500 (a currency the
  // API user's market does not use, an environment it may not use): no "Try again" then.
  const FINAL_CODES = ["INVALID_CURRENCY", "NOT_ALLOWED", "NOT_ALLOWED_TARGET_ENVIRONMENT", "RESOURCE_ALREADY_EXIST"];
  const retryable = (status, code) => !FINAL_CODES.includes(code) && (status === 0 || status === 408 || status === 429 || status >= 500);
  const UNEXPECTED = { status: 502, ok: false, json: { code: "BAD_GATEWAY_RESPONSE", message: "The payment service sent an unexpected answer." }, retryAfter: 0 };

  /** One call to the widget API. Resolves with {status, ok, json, retryAfter} (status 0:
   * no answer); rejects only with ABORTED when `signal` is aborted. */
  async function api(method, path, body, signal, timeoutMs) {
    const ctl = childOf(signal);
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs);
    const init = { method, mode: "cors", credentials: "omit", cache: "no-store", headers: { Accept: "application/json" }, signal: ctl.signal };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      const r = await fetch(BASE + path, init);
      const text = await r.text();
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
      return { status: r.status, ok: r.ok, json, retryAfter: retryAfterMs(r.headers.get("Retry-After")) };
    } catch (_) {
      if (signal.aborted) throw ABORTED;
      return { status: 0, ok: false, json: null, retryAfter: 0, message: timedOut ? "The payment service did not answer in time." : "The payment service cannot be reached." };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorOf(res) {
    if (res.status === 0) return { status: 0, code: "NETWORK_ERROR", message: res.message };
    const j = res.json && typeof res.json === "object" ? res.json : {};
    return {
      status: res.status,
      code: typeof j.code === "string" && j.code ? j.code : "HTTP_" + res.status,
      message: typeof j.message === "string" && j.message ? j.message : `The payment service answered ${res.status}.`,
    };
  }

  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const two = (n) => String(n).padStart(2, "0");
    const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60);
    return (hh ? `${hh}:${two(mm)}` : two(mm)) + ":" + two(s % 60);
  }

  // ---- attributes ----------------------------------------------------------------------
  function readAttributes(el) {
    const get = (n) => (el.getAttribute(n) || "").trim();
    const a = { apiUserId: get("data-api-user-id"), amount: get("data-amount"), currency: get("data-currency"), externalId: get("data-external-id") };
    const shown = (v) => JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
    const p = [];
    if (!a.apiUserId) p.push("data-api-user-id is missing: it must be the UUID v4 of your API user.");
    else if (!UUID4.test(a.apiUserId)) p.push(`data-api-user-id ${shown(a.apiUserId)} is not a UUID v4.`);
    if (!a.amount) p.push("data-amount is missing: it must be a positive number, e.g. 10 or 10.50.");
    else if (!/^\d+(\.\d{1,4})?$/.test(a.amount) || !(Number(a.amount) > 0)) p.push(`data-amount ${shown(a.amount)} is not a positive number with at most 4 decimals.`);
    if (!a.currency) p.push("data-currency is missing: it must be an ISO 4217 code such as EUR.");
    else if (!/^[A-Z]{3}$/.test(a.currency)) p.push(`data-currency ${shown(a.currency)} is not a three-letter ISO 4217 code in capitals (e.g. EUR).`);
    if (!a.externalId) p.push("data-external-id is missing: it must be your own identifier for this payment.");
    else if (Array.from(a.externalId).length > 64) p.push("data-external-id is longer than 64 characters.");
    a.problems = p;
    return a;
  }

  /** What an element asks for: the widget set up for it serves no other payment. */
  function orderOf(el) {
    return ["data-api-user-id", "data-amount", "data-currency", "data-external-id"]
      .map((n) => (el.getAttribute(n) || "").trim()).join("\n");
  }

  function renderInvalid(el, problems) {
    el.removeAttribute("data-mmw-ready"); // so that a fixed element is set up again
    el.setAttribute("data-mmw-state", "error");
    el.replaceChildren(h("div", { class: "mmw-root mmw-invalid" }, [
      h("div", { class: "mmw-error", role: "alert", "data-testid": "mmw-error" }, [
        h("strong", { text: "MoMo payment unavailable" }),
        h("ul", null, problems.map((t) => h("li", { text: t }))),
      ]),
    ]));
  }

  // ---- one widget ----------------------------------------------------------------------
  const widgets = new WeakMap();

  function Widget(el) {
    const root = h("div", { class: "mmw-root" });
    const life = new AbortController(); // the element's life on the page
    let session = null; // one invoice: aborted on close, try again, removal
    let polling = null; // its long-poll
    let ticker = 0;
    let invoice = null;
    let paid = null; // once paid, the button shows the receipt: never pay twice
    let phase = "idle";
    let body = null, statusLine = null, closeBtn = null, countEl = null, cancelBtn = null;
    const self = { destroy, alive: () => !life.signal.aborted && el.isConnected, order: orderOf(el) };

    function destroy() {
      life.abort();
      stopTicker();
      if (widgets.get(el) === self) widgets.delete(el);
    }

    /** False once the element has left the page (which ends all its work). */
    function alive() {
      if (!el.isConnected && !life.signal.aborted) destroy();
      return !life.signal.aborted;
    }

    function setPhase(p, text) {
      phase = p;
      el.setAttribute("data-mmw-state", p);
      if (statusLine) {
        statusLine.setAttribute("data-state", p);
        if (text !== undefined) statusLine.textContent = text;
      }
      if (closeBtn) {
        closeBtn.hidden = !FINAL.includes(p);
        // The button that had the focus (Cancel) is gone: give it to Close, so that the
        // keyboard (and Escape) still reach the panel. Never taken from elsewhere.
        if (!closeBtn.hidden && document.activeElement === document.body) closeBtn.focus({ preventScroll: true });
      }
    }

    function fire(name, detail) {
      if (el.isConnected) el.dispatchEvent(new CustomEvent("mobile-money-qr-payment-" + name, { detail, bubbles: true }));
    }

    function stopTicker() {
      clearInterval(ticker);
      ticker = 0;
    }

    function stopPolling() {
      if (polling) polling.abort();
      polling = null;
    }

    function endSession() {
      if (session) session.abort();
      session = polling = null;
      stopTicker();
    }

    function collapse(focus) {
      endSession();
      body = statusLine = closeBtn = countEl = cancelBtn = invoice = null;
      phase = paid ? "successful" : "idle";
      el.setAttribute("data-mmw-state", phase);
      const b = paid
        ? button("mmw-btn mmw-done", "mmw-button", "Paid", showReceipt, "Paid with MoMo: show the receipt")
        : button("mmw-btn", "mmw-button", "MoMo", start, "Pay with MoMo");
      root.replaceChildren(b);
      if (focus) b.focus();
    }

    function expand() {
      closeBtn = button("mmw-close", "mmw-close", "\u00d7", () => collapse(true), "Close");
      closeBtn.hidden = true;
      body = h("div", { class: "mmw-body" });
      statusLine = h("p", { class: "mmw-status", "data-testid": "mmw-state", role: "status", "aria-live": "polite", "aria-atomic": "true" });
      const panel = h("section", { class: "mmw-panel", "data-testid": "mmw-panel", "aria-label": "MoMo payment", tabindex: "-1" }, [
        h("div", { class: "mmw-head" }, [h("span", { class: "mmw-logo", "aria-hidden": "true", text: "MoMo" }), h("span", { class: "mmw-title", text: "Pay with MoMo" }), closeBtn]),
        body,
        statusLine,
      ]);
      panel.addEventListener("keydown", (e) => { if (e.key === "Escape" && !closeBtn.hidden) collapse(true); });
      root.replaceChildren(panel);
      panel.focus({ preventScroll: true });
    }

    function show(cls, nodes) {
      body.className = "mmw-body " + cls;
      body.replaceChildren(...nodes.filter(Boolean));
    }

    const amountText = (inv, a) => `${inv.amount != null ? inv.amount : a.amount} ${inv.currency || a.currency}`;
    const payee = (inv) => {
      const name = [inv.payeeFirstName, inv.payeeLastName].filter((s) => typeof s === "string" && s).join(" ");
      return name ? h("p", { class: "mmw-sub" }, ["to ", h("span", { "data-testid": "mmw-payee", text: name })]) : null;
    };
    const big = (t) => h("div", { class: "mmw-big", "aria-hidden": "true", text: t });
    const headline = (t) => h("p", { class: "mmw-headline", text: t });

    // The pay button or "Try again": a new invoice.
    async function start() {
      const a = readAttributes(el);
      if (a.problems.length) {
        destroy();
        return renderInvalid(el, a.problems);
      }
      endSession();
      session = childOf(life.signal);
      const signal = session.signal;
      invoice = null;
      if (!body) expand();
      show("", [h("div", { class: "mmw-spin", "aria-hidden": "true" }), h("p", { class: "mmw-sub", text: `Preparing your payment of ${a.amount} ${a.currency}…` })]);
      setPhase("creating", "Creating the payment…");
      let res;
      try {
        res = await api("POST", "/widget/v1_0/invoice", { apiUserId: a.apiUserId, amount: a.amount, currency: a.currency, externalId: a.externalId }, signal, 30000);
      } catch (_) {
        return; // closed or removed meanwhile
      }
      if (!alive() || signal.aborted) return;
      if (res.ok && !isInvoice(res.json)) res = UNEXPECTED;
      if (!res.ok) return fail(errorOf(res), res.retryAfter);
      invoice = res.json;
      if (invoice.status !== "PENDING") {
        fire("created", pick(invoice));
        return settle(invoice);
      }
      showPending(a);
      fire("created", pick(invoice));
      poll();
    }

    function showPending(a) {
      const inv = invoice;
      const signal = session.signal;
      const src = safeUrl(inv.qrCodeUrl || `/widget/v1_0/invoice/${encodeURIComponent(inv.invoiceId)}/qr.svg`, BASE + "/");
      const link = inv.qrLink ? safeUrl(inv.qrLink, BASE + "/") : null;
      const img = h("img", { class: "mmw-qr", "data-testid": "mmw-qr", src, alt: "QR code to pay", width: 140, height: 140, decoding: "async" });
      const expiry = Date.parse(inv.expiryDateTime);
      countEl = h("b", { "data-testid": "mmw-countdown" });
      cancelBtn = button("mmw-action", "mmw-cancel", "Cancel", cancel);
      show("", [
        h("p", { class: "mmw-amount", "data-testid": "mmw-amount", text: amountText(inv, a) }),
        payee(inv),
        link ? h("a", { class: "mmw-qr-link", "data-testid": "mmw-qr-link", href: link, target: "_blank", rel: "noopener" }, [img]) : h("div", { class: "mmw-qr-link" }, [img]),
        h("p", { class: "mmw-hint", text: "Scan with the MoMo app" }),
        typeof inv.ussdCode === "string" && inv.ussdCode
          ? h("p", { class: "mmw-ussd", "data-testid": "mmw-ussd" }, ["Dial ", h("a", { href: "tel:" + inv.ussdCode.replace(/#/g, "%23"), text: inv.ussdCode })])
          : null,
        isNaN(expiry) ? null : h("p", { class: "mmw-count", "aria-hidden": "true" }, [h("span", { class: "mmw-until", text: "Expires in " }), countEl]),
        cancelBtn,
      ]);
      // The countdown is hidden from screen readers (it changes every second): the status
      // line says once when the request expires.
      const until = isNaN(expiry) ? "" : ` It expires at ${new Date(expiry).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}.`;
      setPhase("pending", "Waiting for the payment…" + until);
      stopTicker();
      if (isNaN(expiry)) return;
      const tick = () => {
        if (!alive() || signal.aborted) return stopTicker();
        const left = expiry - Date.now();
        if (left > 0) return void (countEl.textContent = clock(left));
        countEl.textContent = "Expired";
        stopTicker();
        expire();
      };
      tick();
      if (phase === "pending") ticker = setInterval(tick, 1000);
    }

    // Long-poll until the status is no longer PENDING; back off on failures.
    async function poll() {
      stopPolling();
      polling = childOf(session.signal);
      const signal = polling.signal;
      const path = `/widget/v1_0/invoice/${encodeURIComponent(invoice.invoiceId)}?wait=${WAIT_S}&known=PENDING`;
      let failures = 0;
      while (!signal.aborted && alive()) {
        const started = Date.now();
        let res;
        try {
          res = await api("GET", path, undefined, signal, (WAIT_S + 15) * 1000);
        } catch (_) {
          return;
        }
        if (signal.aborted || !alive()) return;
        if (res.ok && !isInvoice(res.json)) res = UNEXPECTED;
        if (res.ok) {
          failures = 0;
          if (res.json.status !== "PENDING") return settle(res.json);
          // Still pending (the server's wait ran out): never ask more often than every 2 s.
          await sleep(2000 - (Date.now() - started), signal);
          continue;
        }
        if (!retryable(res.status, errorOf(res).code) || ++failures >= MAX_FAILURES) return fail(errorOf(res), res.retryAfter);
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
        await sleep(Math.min(Math.max(backoff, res.retryAfter), 2 * MAX_BACKOFF_MS), signal);
      }
    }

    // A final status: SUCCESSFUL or FAILED.
    function settle(inv) {
      stopPolling();
      stopTicker();
      invoice = inv;
      if (inv.status === "SUCCESSFUL") {
        paid = inv;
        renderPaid();
        fire("successful", pick(inv));
      } else if (inv.status === "FAILED" && inv.errorReason && inv.errorReason.code === "TRANSACTION_CANCELED") {
        canceled(inv);
      } else if (inv.status === "FAILED" && (phase === "expiring" || (inv.errorReason && inv.errorReason.code === "EXPIRED"))) {
        // The server ended it at its expiry (its answer may come before the countdown's
        // last tick).
        show("mmw-bad", [big("\u2715"), headline("Payment request expired"), h("p", { class: "mmw-sub", text: amountText(inv, {}) }),
          button("mmw-action mmw-primary", "mmw-retry", "Try again", start)]);
        setPhase("expired", "This payment request has expired.");
        fire("failed", pick(inv));
      } else if (inv.status === "FAILED") {
        show("mmw-bad", [big("\u2715"), headline("Payment failed"), h("p", { class: "mmw-sub", text: amountText(inv, {}) }),
          button("mmw-action mmw-primary", "mmw-retry", "Try again", start)]);
        setPhase("failed", "Payment failed.");
        fire("failed", pick(inv));
      } else {
        poll(); // a status we do not know: wait for a final one
      }
    }

    function renderPaid() {
      show("mmw-ok", [big("\u2713"), headline("Paid"),
        h("p", { class: "mmw-amount", "data-testid": "mmw-amount", text: amountText(paid, {}) }),
        payee(paid),
        paid.paymentReference ? h("p", { class: "mmw-sub", text: "Reference " + paid.paymentReference }) : null]);
      setPhase("successful", "Payment successful.");
    }

    function showReceipt() {
      expand();
      renderPaid();
    }

    // Creating or polling failed for network or gateway reasons.
    function fail(error, retryAfter) {
      stopPolling();
      stopTicker();
      // After a polling failure the invoice may yet be paid: look at it again rather than
      // make a second one.
      const again = !!(invoice && invoice.status === "PENDING" && session);
      const retry = retryable(error.status, error.code) ? button("mmw-action mmw-primary", "mmw-retry", again ? "Check again" : "Try again", again ? resume : start) : null;
      show("mmw-bad", [big("!"), headline("Payment failed"), h("div", { class: "mmw-error", role: "alert", "data-testid": "mmw-error", text: error.message }), retry]);
      setPhase("failed", error.status === 429 ? "Too many payment attempts." : "The payment could not be completed.");
      if (retry && retryAfter > 0) {
        retry.disabled = true;
        setTimeout(() => { retry.disabled = false; }, Math.min(retryAfter, 300000));
      }
      fire("failed", { error });
    }

    function resume() {
      if (!session || session.signal.aborted) return start();
      showPending(readAttributes(el));
      if (phase === "pending") poll();
    }

    // Canceled: by this widget's button, or elsewhere (the partner's API, another tab),
    // which a FAILED status with TRANSACTION_CANCELED says.
    function canceled(inv) {
      invoice = inv;
      show("", [big("\u2013"), headline("Payment canceled"), h("p", { class: "mmw-sub", text: amountText(invoice, {}) })]);
      setPhase("canceled", "Payment canceled.");
      return fire("canceled", pick(invoice));
    }

    async function cancel() {
      if (phase !== "pending" || !invoice || !session) return;
      const signal = session.signal;
      stopPolling();
      phase = "canceling";
      cancelBtn.disabled = true;
      statusLine.textContent = "Canceling…";
      let res;
      try {
        res = await api("DELETE", "/widget/v1_0/invoice/" + encodeURIComponent(invoice.invoiceId), undefined, signal, 20000);
      } catch (_) {
        return;
      }
      if (!alive() || signal.aborted) return;
      if (res.ok && isInvoice(res.json)) {
        stopTicker();
        return canceled(res.json);
      }
      // Not canceled (perhaps paid meanwhile): say so and learn the outcome.
      phase = "pending";
      cancelBtn.disabled = false;
      statusLine.textContent = "Could not cancel: " + errorOf(res).message;
      poll();
    }

    // The countdown ran out on this page's clock. The server's clock decides: the QR and
    // USSD codes go (no one should start paying now) but the long-poll goes on until the
    // server says how the invoice ended, so a payment approved in the last seconds, or
    // while this page's clock runs ahead of the server's, still ends as paid (and "Try
    // again" never makes a second invoice for an order that may yet be paid).
    function expire() {
      if (cancelBtn) cancelBtn.hidden = true;
      body.classList.add("mmw-gone");
      setPhase("expiring", "This payment request has expired; confirming…");
      if (!polling) poll();
    }

    el.setAttribute("data-mmw-ready", "");
    el.replaceChildren(root);
    collapse(false);
    return self;
  }

  // ---- set-up --------------------------------------------------------------------------
  function initAll() {
    injectStyle();
    for (const el of document.querySelectorAll("div.mobile-money-qr-payment")) {
      const prev = widgets.get(el);
      // Set up already and working, for the payment it asks for now. An element marked
      // ready with no widget behind it was taken off the page for a while (its widget
      // ended then) or is a copy of one; one whose data changed (a single-page checkout
      // reusing it for the next order) asks for another payment, and a receipt of the last
      // one must not stand for it: set up anew.
      if (el.hasAttribute("data-mmw-ready") && prev && prev.alive() && prev.order === orderOf(el)) continue;
      if (prev) prev.destroy();
      const a = readAttributes(el);
      if (a.problems.length) renderInvalid(el, a.problems);
      else widgets.set(el, Widget(el));
    }
  }

  Object.defineProperty(window, "mobileMoneyReinitializeWidgets", {
    value: function mobileMoneyReinitializeWidgets() { initAll(); },
    enumerable: true, configurable: true, writable: false,
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initAll, { once: true });
  else initAll();
})();
