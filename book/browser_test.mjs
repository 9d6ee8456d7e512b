// The built book in headless Chromium, as a reader at a 1280x800 window sees it.
//
//   node book/browser_test.mjs [DIR]        (DIR defaults to build/book; `make book-check`)
//
// Loads every DIR/*.html with Debian's /usr/bin/chromium (or $CHROMIUM; playwright-core, from
// common/npm, never downloads a browser) and checks, on every page:
//   - every internal link (href to a file of the book, with or without #fragment) names a
//     file that exists, and its fragment an element id of that page;
//   - every image loaded (naturalWidth > 0) and its file exists;
//   - no listing (pre) is wider than its box (scrollWidth > clientWidth), and the page itself
//     does not scroll sideways;
//   - no page error, console error or failed request.
// Saves the first screen of every page as DIR/screenshots/NAME.png. Prints each problem, the
// counts, and last the line "N passed, N failed" (one test per page); exits 1 on any failure,
// and when Chromium or playwright-core is missing (saying so: a missing browser is a failure,
// never a silent pass).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const dir = path.resolve(process.argv[2] || path.join(root, "build", "book"));
const executable = process.env.CHROMIUM || "/usr/bin/chromium";
const viewport = { width: 1280, height: 800 };

function giveUp(message) {
  console.error(`book browser test: ${message}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

if (!fs.existsSync(executable)) {
  giveUp(`no Chromium at ${executable}: install Debian's chromium package (make deps), ` +
         "or set CHROMIUM to a Chromium binary");
}
let chromium;
try {
  const require = createRequire(path.join(root, "common", "npm", "package.json"));
  ({ chromium } = require("playwright-core"));
} catch (error) {
  giveUp("playwright-core is not installed in common/npm: run `npm ci` there " +
         `(make book-check does) (${error.message})`);
}
const pages = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".html")).sort() : [];
if (pages.length === 0) giveUp(`no HTML pages in ${dir}: run make book first`);
const shots = path.join(dir, "screenshots");
fs.mkdirSync(shots, { recursive: true });

// Runs in the page: what the checks need, measured by the browser's own layout.
function measure() {
  const text = (element) => (element.textContent || "").split("\n").find((l) => l.trim()) || "";
  const pres = [...document.querySelectorAll("pre")];
  const scroller = document.scrollingElement;
  return {
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")),
    images: [...document.querySelectorAll("img")].map((img) => ({
      src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0 })),
    listings: pres.length,
    overflowing: pres.filter((pre) => pre.scrollWidth > pre.clientWidth).map((pre) => ({
      scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth, first: text(pre).slice(0, 60) })),
    pageWidth: { scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth },
  };
}

const browser = await chromium.launch({
  executablePath: executable,
  // Chromium's sandbox needs user namespaces, which CI containers and root lack.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const results = {};
const problems = {};
try {
  const context = await browser.newContext({ viewport });
  for (const name of pages) {
    const page = await context.newPage();
    problems[name] = [];
    page.on("pageerror", (error) => problems[name].push(`page error: ${error.message}`));
    page.on("console", (entry) => {
      if (entry.type() === "error") problems[name].push(`console error: ${entry.text()}`);
    });
    page.on("requestfailed", (request) =>
      problems[name].push(`request failed: ${request.url()}: ${request.failure()?.errorText}`));
    await page.goto(pathToFileURL(path.join(dir, name)).href, { waitUntil: "load" });
    results[name] = await page.evaluate(measure);
    await page.screenshot({ path: path.join(shots, name.replace(/\.html$/, ".png")) });
    await page.close();
  }
} finally {
  await browser.close();
}

// Links are checked once every page's ids are known.
const counts = { pages: pages.length, links: 0, lineAnchors: 0, external: 0, images: 0, listings: 0,
                 overflowing: 0 };
for (const name of pages) {
  const result = results[name];
  const mine = problems[name];
  for (const href of result.links) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(href)) {  // http:, https:, mailto: ... are not the book's
      counts.external += 1;
      continue;
    }
    counts.links += 1;
    if (/^#cb\d+-\d+$/.test(href)) counts.lineAnchors += 1;  // pandoc's anchor on each code line
    const [file, fragment] = href.split("#", 2);
    const target = file === "" ? name : path.posix.normalize(path.posix.join(path.posix.dirname(name), decodeURI(file)));
    if (!fs.existsSync(path.join(dir, target))) {
      mine.push(`broken link ${href}: no file ${target}`);
    } else if (fragment && target.endsWith(".html")) {
      const ids = results[target]?.ids;
      if (!ids) mine.push(`link ${href}: ${target} was not loaded`);
      else if (!ids.includes(decodeURIComponent(fragment))) mine.push(`broken link ${href}: ${target} has no id "${fragment}"`);
    }
  }
  for (const image of result.images) {
    counts.images += 1;
    if (!image.loaded) mine.push(`image ${image.src} did not load`);
  }
  counts.listings += result.listings;
  counts.overflowing += result.overflowing.length;
  for (const pre of result.overflowing) {
    mine.push(`listing wider than its box (${pre.scrollWidth} > ${pre.clientWidth} px): ${pre.first}`);
  }
  const { scrollWidth, clientWidth } = result.pageWidth;
  if (scrollWidth > clientWidth) mine.push(`the page scrolls sideways (${scrollWidth} > ${clientWidth} px)`);
}

let passed = 0;
let failed = 0;
for (const name of pages) {
  if (problems[name].length === 0) {
    passed += 1;
    console.log(`PASS ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}`);
    for (const problem of problems[name]) console.log(`  ${problem}`);
  }
}
console.log(`${counts.pages} pages at ${viewport.width}x${viewport.height}: ${counts.links} internal links ` +
            `(${counts.links - counts.lineAnchors} besides ${counts.lineAnchors} code-line anchors) ` +
            `and ${counts.images} images checked (${counts.external} external links not followed); ` +
            `${counts.listings} listings, ${counts.overflowing} wider than their box; ` +
            `screenshots in ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
