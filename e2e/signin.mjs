// Browser tests of sign-in and security info against a running `tessera serve`.
// Driven by Debian's Chromium through playwright-core; passkeys through Chromium's
// virtual authenticator (DevTools WebAuthn domain). Environment:
//   TESSERA_URL    http://localhost:PORT (a host name: WebAuthn refuses IP addresses)
//   TESSERA_TOKEN  an administrator's personal access token
//   CHROMIUM       the browser binary (default /usr/bin/chromium)
import { chromium } from "playwright-core";
import { randomUUID } from "node:crypto";
import { totp } from "./totp.mjs";
import assert from "node:assert/strict";

const base = process.env.TESSERA_URL;
const token = process.env.TESSERA_TOKEN;
assert.ok(base && token, "TESSERA_URL and TESSERA_TOKEN are required");

async function api(method, path, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function newUser(name, password) {
  const upn = `${name}-${randomUUID().slice(0, 8)}@contoso.com`;
  const user = await api("POST", "/users", { userPrincipalName: upn, displayName: name });
  if (password) {
    await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: password });
  }
  return { id: user.id, upn };
}

const PASSWORD = "violet-harbour-engine-42";

async function signInWithPassword(page, upn, password) {
  // A fresh sign-in each time (an earlier attempt's flow would resume at its step).
  await page.context().clearCookies({ name: "__Host-tessera-signin" });
  await page.goto(`${base}/signin`);
  await page.fill("#username", upn);
  await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
  await page.fill("#password", password);
  await page.click("#signin");
  await page.waitForLoadState("load");
}

async function signOut(page) {
  await page.click("#sign-out");
  await page.waitForURL(`${base}/signin`);
}


async function withVirtualAuthenticator(context, page) {
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

async function addPasskey(page) {
  await page.fill("#passkey-name", "Virtual key");
  await page.click("#passkey-register");
  await page.waitForURL(/added=passkey/);
  assert.match(await page.textContent("#methods"), /fido2/);
}

// Username-less: the browser offers the passkey in the user-name field's autofill
// (conditional mediation), and the virtual authenticator picks it.
async function passkeyAutofillSignIn(page, expectedUpn) {
  // Loading the page again would start a second ceremony on the same sign-in, whose
  // challenge replaces the first: stay on the sign-in page signing out led to.
  if (!page.url().endsWith("/signin")) await page.goto(`${base}/signin`);
  await page.waitForURL(`${base}/security-info`, { timeout: 60000 });
  assert.equal(await page.textContent("#user"), expectedUpn);
}

// After typing the name, with the "Use a passkey" button (a modal request).
async function passkeyButtonSignIn(page, upn, authenticator) {
  // Hold the authenticator back while the name page's autofill request is pending.
  const presence = (enabled) => authenticator.cdp.send("WebAuthn.setAutomaticPresenceSimulation", {
    authenticatorId: authenticator.authenticatorId, enabled });
  await presence(false);
  await page.goto(`${base}/signin`);
  await page.fill("#username", upn);
  await page.click("#next");
  await page.waitForSelector("#signing-in-as");
  await presence(true);
  await page.click("#passkey-signin");
  await page.waitForURL(`${base}/security-info`);
  assert.equal(await page.textContent("#user"), upn);
}

const tests = {
  // Password, then an authenticator app enrolled from security info, then both.
  async passwordAndTotp(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Adele", PASSWORD);

    // A wrong password: a clear error that does not say whether the account exists.
    await signInWithPassword(page, user.upn, "not-the-password");
    const wrong = await page.textContent("#error");
    await signInWithPassword(page, `nobody-${randomUUID()}@contoso.com`, "not-the-password");
    assert.equal(await page.textContent("#error"), wrong);

    await signInWithPassword(page, user.upn, PASSWORD);
    await page.waitForURL(`${base}/security-info`);
    const response = await page.goto(`${base}/security-info`);
    const headers = response.headers();
    assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
    assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline/);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "__Host-tessera-session");
    // Lax, so that single sign-on works when an application sends the user here; every
    // state-changing form still needs its anti-forgery token.
    assert.ok(session && session.httpOnly && session.secure && session.sameSite === "Lax");

    await page.click("#add-totp");
    assert.ok(await page.locator("img[alt^='QR code']").isVisible());
    const secret = (await page.textContent("#totp-secret")).trim();
    await page.fill("#code", totp(secret));
    await page.click("#confirm-totp");
    await page.waitForURL(/added=totp/);
    assert.match(await page.textContent("#methods"), /softwareOath/);
    await signOut(page);

    // Now the password alone is not enough.
    await signInWithPassword(page, user.upn, PASSWORD);
    await page.waitForSelector("#code");
    // The code used to enrol was consumed; the app's next code is inside the window.
    await page.fill("#code", totp(secret, 1));
    await page.click("#verify");
    await page.waitForURL(`${base}/security-info`);
    assert.match(await page.textContent("main"), /Password \+ Authenticator app code/);

    const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&result=success`);
    assert.equal(log.value[0].authenticationRequirement, "multiFactorAuthentication");
    await context.close();
  },

  // A passkey registered from security info, then a sign-in without a user name.
  async passkeyUsernameless(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await withVirtualAuthenticator(context, page);
    const user = await newUser("Megan", PASSWORD);
    await signInWithPassword(page, user.upn, PASSWORD);
    await page.waitForURL(`${base}/security-info`);
    await addPasskey(page);
    await signOut(page);
    await passkeyAutofillSignIn(page, user.upn);
    assert.match(await page.textContent("main"), /Passkey or security key/);
    const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&result=success`);
    assert.deepEqual(log.value[0].authenticationMethods, ["fido2"]);
    assert.ok(log.value[0].satisfiedStrengths.includes("00000000-0000-0000-0000-000000000004"));
    await context.close();
  },

  // A new hire with nothing but a Temporary Access Pass onboards to a passkey.
  async tapOnboarding(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const authenticator = await withVirtualAuthenticator(context, page);
    const user = await newUser("Newhire", null);
    const pass = await api("POST", `/users/${user.id}/authentication/temporaryAccessPassMethods`, {
      isUsableOnce: true,
      lifetimeInMinutes: 60,
    });
    await page.goto(`${base}/signin`);
    await page.fill("#username", user.upn);
    await page.click("#next");
    await page.fill("#pass", pass.temporaryAccessPass);
    await page.click("#use-pass");
    await page.waitForURL(`${base}/security-info`);
    assert.match(await page.textContent("main"), /Temporary Access Pass/);
    await addPasskey(page);
    await page.context().clearCookies();
    await passkeyButtonSignIn(page, user.upn, authenticator);
    // The one-time pass is spent.
    await authenticator.cdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: authenticator.authenticatorId, enabled: false });
    await page.context().clearCookies();
    await page.goto(`${base}/signin`);
    await page.fill("#username", user.upn);
    await page.click("#next");
    await page.fill("#pass", pass.temporaryAccessPass);
    await page.click("#use-pass");
    assert.match(await page.textContent("#error"), /did not work/, "a spent pass does not work again");
    await context.close();
  },

  // An administrator revokes a user's sessions: the browser is signed out at once.
  async adminRevokesSessions(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Lynne", PASSWORD);
    await signInWithPassword(page, user.upn, PASSWORD);
    await page.waitForURL(`${base}/security-info`);
    const result = await api("POST", `/users/${user.id}/revokeSignInSessions`, {});
    assert.equal(result.sessionsRevoked, 1);
    await page.goto(`${base}/security-info`);
    assert.equal(page.url(), `${base}/signin`);
    await context.close();
  },
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
let failed = 0;
const only = process.argv[2];
for (const [name, test] of Object.entries(tests)) {
  if (only && name !== only) continue;
  try {
    await test(browser);
    console.log(`ok ${name}`);
  } catch (error) {
    failed++;
    console.log(`FAILED ${name}: ${error.stack || error}`);
  }
}
await browser.close();
process.exit(failed ? 1 : 0);
