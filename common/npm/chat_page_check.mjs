// The kernel's chat page (GET /) in headless Chromium, as a person would use it.
//
//   node chat_page_check.mjs URL MESSAGE [ID=VALUE...]
//
// Loads the page with Debian's /usr/bin/chromium (playwright-core never downloads a browser),
// fills each other field ID with VALUE (the page's settings, as a person would), types MESSAGE
// into #prompt, clicks #send and waits (up to TIMEOUT_MS from the environment, default 120 s)
// until document.body.dataset.state is "done". It records what a test needs to judge the page,
// and judges nothing itself:
//   states      every value data-state took, in order, from the page's first script on
//   snapshots   #transcript's text each time it changed while the state was "streaming"
//   transcript  #transcript's text at the end
//   requests    the body of every request the page sent to /v1/chat/completions
//   errors      uncaught page errors, console errors and failed requests
// The last line printed is that report as JSON; the exit status is 0 when the page reached
// "done", else 1 (the report says how far it got).
import { chromium } from "playwright-core";

const [url, message, ...fields] = process.argv.slice(2);
if (!url || message === undefined || !fields.every((field) => field.includes("="))) {
  console.error("usage: node chat_page_check.mjs URL MESSAGE [ID=VALUE...]");
  process.exit(2);
}
const timeout = Number(process.env.TIMEOUT_MS || 120000);
const report = { states: [], snapshots: [], transcript: null, requests: [], errors: [],
                 done: false };

// Runs in the page before its own scripts: watch data-state and the transcript.
function watch() {
  window.__ringzero = { states: [], snapshots: [] };
  const record = () => {
    const state = document.body && document.body.dataset.state;
    const log = window.__ringzero.states;
    if (state !== undefined && log[log.length - 1] !== state) log.push(state);
    const transcript = document.getElementById("transcript");
    if (state === "streaming" && transcript) {
      const text = transcript.textContent;
      const snapshots = window.__ringzero.snapshots;
      if (snapshots[snapshots.length - 1] !== text) snapshots.push(text);
    }
  };
  new MutationObserver(record).observe(document, { subtree: true, childList: true,
                                                   attributes: true, characterData: true });
  document.addEventListener("DOMContentLoaded", record);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Chromium's sandbox needs user namespaces, which CI containers and root lack.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  page.on("pageerror", (error) => report.errors.push(`page error: ${error.message}`));
  page.on("console", (entry) => {
    // The browser asks for /favicon.ico by itself; the page need not have one.
    const favicon = (entry.location().url || "").endsWith("/favicon.ico");
    if (entry.type() === "error" && !favicon) report.errors.push(`console error: ${entry.text()}`);
  });
  page.on("requestfailed", (request) =>
    report.errors.push(`request failed: ${request.method()} ${request.url()}: ` +
                       `${request.failure()?.errorText}`));
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/v1/chat/completions") {
      report.requests.push(request.postData());
    }
  });
  await page.addInitScript(watch);
  const response = await page.goto(url, { waitUntil: "load" });
  report.status = response.status();
  report.contentType = response.headers()["content-type"] || null;
  for (const field of fields) {
    const at = field.indexOf("=");
    await page.fill(`#${field.slice(0, at)}`, field.slice(at + 1));
  }
  await page.fill("#prompt", message);
  await page.click("#send");
  await page.waitForFunction(() => document.body.dataset.state === "done", null,
                             { timeout, polling: 50 });
  report.done = true;
} catch (error) {
  report.errors.push(String(error && error.message ? error.message : error).split("\n")[0]);
} finally {
  try {
    const pages = browser.contexts().flatMap((context) => context.pages());
    if (pages.length) {
      Object.assign(report, await pages[0].evaluate(() => ({
        states: window.__ringzero ? window.__ringzero.states : [],
        snapshots: window.__ringzero ? window.__ringzero.snapshots : [],
        transcript: document.getElementById("transcript")?.textContent ?? null,
      })));
    }
  } catch (error) {
    report.errors.push(`reading the page: ${error.message}`);
  }
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(report.done ? 0 : 1);
