// Pieces the browser tests share: the management API, Chromium with a virtual
// authenticator, the accessibility check (axe-core, run in the page through the
// DevTools protocol, so the pages' CSP stays on), screenshots, and the runner that
// prints `ok <scenario>` for the Rust side to check.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import assert from "node:assert/strict";

export const base = process.env.TESSERA_URL;
export const token = process.env.TESSERA_TOKEN;

export async function api(method, path, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function withVirtualAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// No serious or critical WCAG 2.x A/AA violation on the page as it is now.
export async function checkAccessibility(page, label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join("; ")})`),
    [],
    `accessibility violations on ${label} (${page.url()})`,
  );
}

const artifacts = process.env.TESSERA_ARTIFACTS;

// A screenshot at desktop and at phone width, for a reviewer to look at.
export async function screenshots(page, name) {
  if (!artifacts) return;
  mkdirSync(artifacts, { recursive: true });
  const size = page.viewportSize();
  await page.screenshot({ path: join(artifacts, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await checkAccessibility(page, `${name} at phone width`);
  await page.screenshot({ path: join(artifacts, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

// Runs the scenarios in order (or the one named on the command line), each with
// the state the earlier ones left, and exits non-zero if one failed.
export async function run(tests, { keepGoing = true, after = () => {} } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run"],
  });
  let failed = 0;
  const only = process.argv[2];
  const shared = {};
  for (const [name, test] of Object.entries(tests)) {
    if (only && name !== only) continue;
    try {
      await test(browser, shared);
      console.log(`ok ${name}`);
    } catch (error) {
      failed++;
      console.log(`FAILED ${name}: ${error.stack || error}`);
      if (!keepGoing) break;
    }
  }
  await browser.close();
  await after();
  process.exit(failed ? 1 : 0);
}

// A cookie jar for a "browser" made of fetch calls: keeps what the server sets.
export function cookieJar() {
  const jar = new Map();
  return {
    header: () => [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
    take(response) {
      for (const line of response.headers.getSetCookie()) {
        const [pair, ...attributes] = line.split(";");
        const [name, ...rest] = pair.split("=");
        const value = rest.join("=");
        const expired = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
        if (expired || value === "") jar.delete(name.trim());
        else jar.set(name.trim(), value);
      }
    },
  };
}

// Where a response sends the browser: a redirect, or Tessera's "returning you to
// the application" page (a refresh, after its own forms: see pages::navigate).
export async function nextOf(response, from) {
  if (response.status === 303 || response.status === 302) {
    return new URL(response.headers.get("location"), from).href;
  }
  const html = await response.text();
  const refresh = html.match(/<meta http-equiv="refresh" content="0;url=([^"]*)"/);
  assert.ok(response.status === 200 && refresh, `expected a redirect or a refresh, got ${response.status}`);
  return new URL(refresh[1].replaceAll("&amp;", "&"), from).href;
}

export function csrfOf(html) {
  const match = html.match(/<meta name="csrf" content="([^"]*)"/);
  assert.ok(match, "the page has an anti-forgery token");
  return match[1];
}

// Signs `user` ({upn, password}) in on Tessera's sign-in page (`html`, as fetched
// with `jar`); returns where the browser goes next.
export async function signInOnPage(jar, html, user) {
  assert.ok(user, "a sign-in was needed but no user was given");
  const csrf = csrfOf(html);
  const post = async (path, fields) => {
    const r = await fetch(`${base}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: jar.header(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf, ...fields }),
    });
    jar.take(r);
    return r;
  };
  const named = await post("/signin/name", { username: user.upn });
  assert.equal(named.status, 200, "the name step shows the password page");
  await named.text();
  const signedIn = await post("/signin/password", { secret: user.password });
  return nextOf(signedIn, base);
}

// Runs one named scenario and prints `ok <name>` or `FAILED <name>: …` for the
// Rust side; `failures()` counts the failed ones.
let failedScenarios = 0;
export async function check(name, body) {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (error) {
    failedScenarios++;
    console.log(`FAILED ${name}: ${error.stack || error}`);
  }
}

export function failures() {
  return failedScenarios;
}
