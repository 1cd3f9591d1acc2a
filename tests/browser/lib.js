// What every browser flow shares: the settings it is given, Debian's Chromium, the tally
// of checks, the screenshots, and the closing line the Rust test reads
// ("<flow> browser flow: N passed, M failed"). `run.sh <flow>` runs `<flow>/flow.js`.
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const FLOW = path.basename(path.dirname(require.main.filename));
const OUT = process.env.ARTIFACTS || path.join(__dirname, "../../artifacts", FLOW);
fs.mkdirSync(OUT, { recursive: true });

let passed = 0;
let failed = 0;

function finish() {
  console.log(`\n${FLOW} browser flow: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

/// An environment variable the flow cannot go without; its absence fails the run at once.
function need(name, meaning) {
  const value = process.env[name];
  if (!value) {
    failed += 1;
    console.log(`FAIL environment: ${name} must be set${meaning ? ` (${meaning})` : ""}`);
    finish();
  }
  return value;
}

/// One check: printed as `ok   name` or `FAIL name: detail`; returns `ok`.
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    const said = detail === undefined || detail === "" ? ""
      : `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`;
    console.log(`FAIL ${name}${said}`);
  }
  return ok;
}

/// Debian's Chromium, headless, with the flags this machine needs.
function launch(options) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    ...options,
  });
}

/// A screenshot into the artifacts: the whole page, or one element when `selector` is given.
async function shot(page, name, selector) {
  const file = path.join(OUT, `${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: true });
}

/// Runs the flow's `main`, counts an exception as a failure, and ends with the closing line;
/// a flow still running after `limitMs` fails.
function run(main, limitMs = 5 * 60000) {
  const watchdog = setTimeout(() => {
    failed += 1;
    console.log(`FAIL the whole flow took longer than ${limitMs / 60000} minutes`);
    finish();
  }, limitMs);
  main()
    .catch((e) => {
      failed += 1;
      console.log(`FAIL ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e}`);
    })
    .finally(() => {
      clearTimeout(watchdog);
      finish();
    });
}

module.exports = { need, check, launch, shot, run };
