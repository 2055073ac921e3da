// Conditional Access end to end, against a running `tessera serve`, in Debian's
// Chromium (playwright-core) with the virtual authenticator for passkeys:
//   - a policy asking for phishing-resistant MFA makes a password-only user step up
//     to a passkey before the application gets its code;
//   - a report-only block is recorded in the sign-in log and lets the user in;
//   - a block shows a page with a correlation id and sends nothing to the app;
//   - terms of use are accepted on the way;
//   - a block for legacy clients refuses the password grant (and security
//     defaults do too, until turned off).
// Environment: TESSERA_URL (http://localhost:PORT), TESSERA_TOKEN, CHROMIUM.
import { chromium } from "playwright-core";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import assert from "node:assert/strict";
import { totp } from "./totp.mjs";

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

const PASSWORD = "copper-lantern-meadow-77";
// The application's callback: a loopback server that records what arrives.
const callbacks = [];
const rp = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/callback") callbacks.push(url);
  res.end("callback");
});
await new Promise((resolve) => rp.listen(0, "127.0.0.1", resolve));
const REDIRECT = `http://127.0.0.1:${rp.address().port}/callback`;

async function newUser(name) {
  const upn = `${name}-${randomUUID().slice(0, 8)}@contoso.com`;
  const user = await api("POST", "/users", { userPrincipalName: upn, displayName: name });
  await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
  return { id: user.id, upn };
}

/// An application users sign in to, with admin consent for the OpenID scopes.
async function newApp(name, extra = {}) {
  const app = await api("POST", "/applications", { displayName: name, web: { redirectUris: [REDIRECT] }, ...extra });
  await api("POST", "/servicePrincipals", { appId: app.appId });
  await api("POST", "/oauth2PermissionGrants", { clientId: app.appId, consentType: "AllPrincipals", scope: "openid profile" });
  return app;
}

async function newPolicy(policy) {
  return api("POST", "/identity/conditionalAccess/policies", {
    "@odata.type": "#microsoft.graph.conditionalAccessPolicy",
    state: "enabled",
    ...policy,
  });
}

function authorizeUrl(app) {
  return authorization(app).url;
}

/// An authorization request (PKCE) with its verifier; `extra` parameters too.
function authorization(app, extra = {}) {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const url = new URL(`${base}/oauth2/authorize`);
  url.search = new URLSearchParams({
    response_type: "code", client_id: app.appId, redirect_uri: REDIRECT, scope: "openid profile",
    state: "s1", code_challenge: challenge, code_challenge_method: "S256", ...extra,
  }).toString();
  return { url: url.href, verifier };
}

/// Opens the authorization URL and waits for the application's callback,
/// returning the URL it was called with.
async function untilCallback(page, start, during) {
  const before = callbacks.length;
  await page.goto(start);
  if (during) await during(page);
  await page.waitForURL(`${REDIRECT}**`, { timeout: 30000 });
  assert.equal(callbacks.length, before + 1, "the application was called once");
  return callbacks[callbacks.length - 1];
}

async function signInWithPassword(page, upn) {
  await page.waitForSelector("#username");
  await page.fill("#username", upn);
  await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
  await page.fill("#password", PASSWORD);
  await page.click("#signin");
  await page.waitForLoadState("load");
}

async function withVirtualAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticatorId };
}

async function lastSignIn(user, appId) {
  const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=20`);
  return log.value.find((e) => e.appId === appId);
}

function policyResult(entry, id) {
  return entry.appliedConditionalAccessPolicies.policies.find((p) => p.id === id);
}

const PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004";

const tests = {
  // A password-only session meets a policy for phishing-resistant MFA: the user is
  // asked to sign in again, is offered only a passkey, and then gets in.
  async stepUpToAPasskey(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await withVirtualAuthenticator(context, page);
    const user = await newUser("Pradeep");
    const app = await newApp("Payroll");
    // The user signs in with a password and registers a passkey (no policy yet).
    await page.goto(`${base}/signin`);
    await signInWithPassword(page, user.upn);
    await page.waitForURL(`${base}/security-info`);
    await page.fill("#passkey-name", "Virtual key");
    await page.click("#passkey-register");
    await page.waitForURL(/added=passkey/);
    const policy = await newPolicy({
      displayName: `Payroll needs phishing-resistant MFA ${randomUUID().slice(0, 6)}`,
      conditions: {
        users: { includeUsers: [user.id] },
        applications: { includeApplications: [app.appId] },
        clientAppTypes: ["all"],
      },
      grantControls: { operator: "OR", builtInControls: [], authenticationStrength: { id: PHISHING_RESISTANT } },
    });
    const callback = await untilCallback(page, authorizeUrl(app), async (page) => {
      // The step-up page: for this user, with a notice, and no password offered.
      await page.waitForSelector("#step-up");
      assert.equal(await page.textContent("#signing-in-as"), user.upn);
      assert.equal(await page.locator("#password").count(), 0, "a password cannot reach the strength");
      await page.click("#passkey-signin");
    });
    assert.ok(callback.searchParams.get("code"), `no code: ${callback}`);
    assert.equal(callback.searchParams.get("state"), "s1");
    // The sign-in log has the decision: the policy applied and was met.
    const entry = await lastSignIn(user, app.appId);
    assert.equal(entry.result, "success");
    assert.equal(entry.conditionalAccessStatus, "success");
    const result = policyResult(entry, policy.id);
    assert.equal(result.result, "success");
    assert.deepEqual(result.controls, [{ control: "authenticationStrength", id: PHISHING_RESISTANT, satisfied: true }]);
    // The interruption before it is logged too, with the unmet requirement.
    const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=20`);
    const interrupted = log.value.find((e) => e.appId === app.appId && e.result === "interrupted");
    assert.equal(policyResult(interrupted, policy.id).controls[0].satisfied, false);
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // Report-only: the block is evaluated and recorded, and the user gets in.
  async reportOnlyBlockIsRecorded(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Isaiah");
    const app = await newApp("Expenses");
    const policy = await newPolicy({
      displayName: `Block Expenses (report-only) ${randomUUID().slice(0, 6)}`,
      state: "enabledForReportingButNotEnforced",
      conditions: { users: { includeUsers: ["All"] }, applications: { includeApplications: [app.appId] } },
      grantControls: { operator: "OR", builtInControls: ["block"] },
    });
    const callback = await untilCallback(page, authorizeUrl(app), (page) => signInWithPassword(page, user.upn));
    assert.ok(callback.searchParams.get("code"), `no code: ${callback}`);
    const entry = await lastSignIn(user, app.appId);
    assert.equal(entry.result, "success");
    assert.equal(policyResult(entry, policy.id).result, "reportOnlyFailure");
    assert.equal(policyResult(entry, policy.id).block, true);
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // An enforced block: a clear page with a correlation id; the app gets nothing.
  async blockShowsAPageWithACorrelationId(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Lidia");
    const app = await newApp("Legacy HR");
    const policy = await newPolicy({
      displayName: `Block Legacy HR ${randomUUID().slice(0, 6)}`,
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] } },
      grantControls: { operator: "OR", builtInControls: ["block"] },
    });
    const before = callbacks.length;
    await page.goto(authorizeUrl(app));
    await signInWithPassword(page, user.upn);
    await page.waitForSelector("#blocked");
    const reference = (await page.textContent("#correlation-id")).trim();
    assert.ok(reference.length > 8);
    assert.equal(callbacks.length, before, "nothing goes to the application");
    const entry = await lastSignIn(user, app.appId);
    assert.equal(entry.result, "failure");
    assert.equal(entry.failureCode, "conditional_access_blocked");
    assert.equal(entry.correlationId, reference, "the page's reference finds the log entry");
    assert.equal(policyResult(entry, policy.id).result, "failure");
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // Terms of use, accepted once on the way to the application.
  async termsOfUseAreAcceptedOnce(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Nestor");
    const app = await newApp("Research portal");
    const terms = await api("POST", "/identity/conditionalAccess/termsOfUse", {
      displayName: "Acceptable use", content: "Be nice to the research data.",
    });
    const policy = await newPolicy({
      displayName: `Research terms ${randomUUID().slice(0, 6)}`,
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] } },
      grantControls: { operator: "OR", builtInControls: [], termsOfUse: [terms.id] },
    });
    const first = await untilCallback(page, authorizeUrl(app), async (page) => {
      await signInWithPassword(page, user.upn);
      await page.waitForSelector("#accept-terms");
      assert.match(await page.textContent("main"), /Be nice to the research data/);
      // The waiting request asks for terms, not a password change: a crafted
      // password-change answer for it is refused (and changes nothing).
      const crafted = await page.evaluate(async () => {
        const form = new URLSearchParams({
          csrf: document.querySelector("input[name=csrf]").value,
          request: document.querySelector("input[name=request]").value,
          current: "x", new: "a-new-password-nobody-asked-for-1",
        });
        const r = await fetch("/oauth2/authorize/password", { method: "POST", body: form });
        return { status: r.status, text: await r.text() };
      });
      assert.equal(crafted.status, 400);
      assert.match(crafted.text, /no password change is asked/);
      // A refused answer ends that request; the application's next one asks again.
      await page.goto(authorizeUrl(app));
      await page.waitForSelector("#accept-terms");
      await page.click("#accept-terms");
    });
    assert.ok(first.searchParams.get("code"));
    // Accepted: the next sign-in goes straight through (single sign-on).
    const second = await untilCallback(page, authorizeUrl(app));
    assert.ok(second.searchParams.get("code"));
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // A risky user: the policy asks for MFA and a password change. The user steps up
  // with an authenticator app, changes the password on the way, and gets in; the
  // change remediates the risk.
  async riskyUserChangesPassword(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Riya");
    const app = await newApp("Treasury");
    await page.goto(`${base}/signin`);
    await signInWithPassword(page, user.upn);
    await page.waitForURL(`${base}/security-info`);
    await page.click("#add-totp");
    const secret = (await page.textContent("#totp-secret")).trim();
    await page.fill("#code", totp(secret));
    await page.click("#confirm-totp");
    await page.waitForURL(/added=totp/);
    await api("PUT", `/identityProtection/risk/${user.id}`, { riskLevel: "high" });
    const policy = await newPolicy({
      displayName: `Risky users change their password ${randomUUID().slice(0, 6)}`,
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] },
        userRiskLevels: ["high"] },
      grantControls: { operator: "AND", builtInControls: ["mfa", "passwordChange"] },
    });
    const callback = await untilCallback(page, authorizeUrl(app), async (page) => {
      // First the step-up to MFA (the session had a password only)...
      await page.waitForSelector("#step-up");
      await page.fill("#password", PASSWORD);
      await page.click("#signin");
      await page.waitForSelector("#code");
      await page.fill("#code", totp(secret, 1));
      await page.click("#verify");
      // ...then the password change.
      await page.waitForSelector("#change-password");
      await page.fill("#current", PASSWORD);
      await page.fill("#new", "granite-willow-harbor-93");
      await page.click("#change-password");
    });
    assert.ok(callback.searchParams.get("code"), `no code: ${callback}`);
    const risk = await api("GET", `/identityProtection/risk/${user.id}`);
    assert.equal(risk.riskLevel, "none", "a password change remediates the user's risk");
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // Identity Protection end to end: a sign-in through an anonymizer (the
  // browser's address as the trusted proxy says it) is medium sign-in and user
  // risk; risk policies ask for phishing-resistant MFA and a password change;
  // the change remediates, and the next sign-in from an ordinary address is
  // not risky and not interrupted.
  async anonymizerSignInIsRemediated(browser) {
    const user = await newUser("Anya");
    const app = await newApp("Ledger");
    // One browser (it keeps the passkey); its address is what the trusted
    // proxy in front of Tessera says.
    const context = await browser.newContext();
    const from = (address) => context.setExtraHTTPHeaders({ "x-forwarded-for": address });
    const page = await context.newPage();
    const { cdp, authenticatorId } = await withVirtualAuthenticator(context, page);
    // The passkey answers only when the test says (not the sign-in page's
    // autofill, which would sign in without the password).
    const presence = (enabled) => cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled });
    // From an ordinary address, the user registers a passkey.
    await from("192.0.2.44");
    await page.goto(`${base}/signin`);
    await signInWithPassword(page, user.upn);
    await page.waitForURL(`${base}/security-info`);
    await page.fill("#passkey-name", "Virtual key");
    await page.click("#passkey-register");
    await page.waitForURL(/added=passkey/);
    const risky = await newPolicy({
      displayName: `Risky sign-ins need phishing-resistant MFA ${randomUUID().slice(0, 6)}`,
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] },
        signInRiskLevels: ["medium", "high"] },
      grantControls: { operator: "OR", builtInControls: [], authenticationStrength: { id: PHISHING_RESISTANT } },
    });
    const riskyUser = await newPolicy({
      displayName: `Risky users change their password ${randomUUID().slice(0, 6)}`,
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] },
        userRiskLevels: ["medium", "high"] },
      grantControls: { operator: "AND", builtInControls: ["passwordChange"], authenticationStrength: { id: PHISHING_RESISTANT } },
    });
    // Signed out, then through Tor to the application: the password, the
    // passkey the risky sign-in needs, and the password change the risky user
    // needs.
    await presence(false);
    await context.clearCookies();
    await from("185.220.101.7");
    const callback = await untilCallback(page, authorizeUrl(app), async (page) => {
      await page.waitForSelector("#username");
      await page.fill("#username", user.upn);
      await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
      await page.fill("#password", PASSWORD);
      await page.click("#signin");
      await page.waitForSelector("#passkey-signin");
      assert.equal(await page.locator("#password").count(), 0, "a password cannot reach the strength");
      await presence(true);
      await page.click("#passkey-signin");
      await page.waitForSelector("#change-password");
      await presence(false);
      const detections = await api("GET", `/identityProtection/riskDetections?userId=${user.id}`);
      assert.equal(detections.value[0].riskEventType, "anonymizedIPAddress");
      assert.equal((await api("GET", `/identityProtection/riskyUsers/${user.id}`)).riskLevel, "medium");
      await page.fill("#current", PASSWORD);
      await page.fill("#new", "granite-willow-harbor-93");
      await page.click("#change-password");
    });
    assert.ok(callback.searchParams.get("code"), `no code: ${callback}`);
    const decided = await lastSignIn(user, app.appId);
    assert.equal(policyResult(decided, risky.id).result, "success");
    // The user-risk policy asked for the password change before it (the
    // change remediated the risk, so the last decision no longer applies it).
    const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=20`);
    const asked = log.value.find((e) => e.appId === app.appId && e.result === "interrupted"
      && e.appliedConditionalAccessPolicies.policies.some((p) => p.id === riskyUser.id));
    assert.ok(asked, JSON.stringify(log.value.map((e) => [e.result, e.appId])));
    assert.ok(policyResult(asked, riskyUser.id).controls.some((c) => c.control === "passwordChange" && !c.satisfied),
      JSON.stringify(policyResult(asked, riskyUser.id)));
    const remediated = await api("GET", `/identityProtection/riskyUsers/${user.id}`);
    assert.equal(remediated.riskLevel, "none");
    assert.equal(remediated.riskState, "remediated");
    assert.equal(remediated.riskDetail, "userPerformedSecuredPasswordChange");
    // The next sign-in, from an ordinary address: no risk, no interruption.
    await context.clearCookies();
    await from("192.0.2.44");
    const again = await untilCallback(page, authorizeUrl(app), async (page) => {
      await page.waitForSelector("#username");
      await page.fill("#username", user.upn);
      await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
      await page.fill("#password", "granite-willow-harbor-93");
      await page.click("#signin");
      // The account's second step, as for every sign-in; no policy asks more.
      await page.waitForSelector("#passkey-signin");
      await presence(true);
      await page.click("#passkey-signin");
    });
    assert.ok(again.searchParams.get("code"), `no code: ${again}`);
    const last = await lastSignIn(user, app.appId);
    assert.equal(last.result, "success");
    for (const p of [risky, riskyUser]) assert.equal(policyResult(last, p.id), undefined, "no risk policy applies");
    const own = (await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=20`)).value
      .find((e) => !e.appId && e.result === "success");
    assert.ok(own && (!own.riskLevelDuringSignIn || own.riskLevelDuringSignIn === "none"), JSON.stringify(own));
    assert.equal((await api("GET", `/identityProtection/riskyUsers/${user.id}`)).riskLevel, "none");
    for (const p of [risky, riskyUser]) await api("DELETE", `/identity/conditionalAccess/policies/${p.id}`);
    await context.close();
  },

  // Strict location enforcement (continuous access evaluation): a policy
  // blocks sign-ins from outside the office and strictly enforces locations.
  // The token the application got at the office works at userinfo from there
  // and is refused from anywhere else, with a claims challenge for a client
  // that handles them; following the challenge from outside ends at the block
  // page. The refusal is in the audit trail.
  async strictLocationRefusesTokensOutside(browser) {
    const user = await newUser("Noor");
    const app = await newApp("Field reports");
    const secret = await api("POST", `/applications/${app.id}/passwordCredentials`, {});
    const office = await api("POST", "/identity/conditionalAccess/namedLocations", {
      "@odata.type": "#microsoft.graph.ipNamedLocation", displayName: `Office ${randomUUID().slice(0, 6)}`,
      isTrusted: false, ipRanges: [{ cidrAddress: "198.51.100.0/24" }],
    });
    const policy = await newPolicy({
      displayName: `Block outside the office ${randomUUID().slice(0, 6)}`,
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: ["All"] },
        locations: { includeLocations: ["All"], excludeLocations: [office.id] } },
      grantControls: { operator: "OR", builtInControls: ["block"] },
      sessionControls: { continuousAccessEvaluation: { mode: "strictLocation" } },
    });
    const context = await browser.newContext();
    const from = (address) => context.setExtraHTTPHeaders({ "x-forwarded-for": address });
    const page = await context.newPage();
    const tokensFor = async (request, during) => {
      const callback = await untilCallback(page, request.url, during);
      const response = await fetch(`${base}/oauth2/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "authorization_code", code: callback.searchParams.get("code"),
          redirect_uri: REDIRECT, code_verifier: request.verifier, client_id: app.appId,
          client_secret: secret.secretText }),
      });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      return body;
    };
    const userinfo = (token, address) => fetch(`${base}/oauth2/userinfo`, {
      headers: { authorization: `Bearer ${token}`, "x-forwarded-for": address },
    });
    await from("198.51.100.20");
    const tokens = await tokensFor(authorization(app), (page) => signInWithPassword(page, user.upn));
    assert.equal((await userinfo(tokens.access_token, "198.51.100.20")).status, 200);
    let response = await userinfo(tokens.access_token, "203.0.113.50");
    assert.equal(response.status, 401);
    assert.match(response.headers.get("www-authenticate"), /error="invalid_token"/);
    // A client that handles claims challenges (single sign-on in the same
    // browser) is told to come back with the claims.
    const capable = await tokensFor(authorization(app, {
      claims: JSON.stringify({ access_token: { xms_cc: { values: ["cp1"] } } }),
    }));
    assert.equal((await userinfo(capable.access_token, "198.51.100.21")).status, 200);
    response = await userinfo(capable.access_token, "203.0.113.50");
    assert.equal(response.status, 401);
    const challenge = response.headers.get("www-authenticate");
    assert.match(challenge, /error="insufficient_claims"/);
    const claims = Buffer.from(/claims="([^"]+)"/.exec(challenge)[1], "base64").toString();
    // The client follows it from where it is now: a new sign-in, and the
    // policy blocks it there.
    await from("203.0.113.50");
    const before = callbacks.length;
    await page.goto(authorization(app, { claims }).url);
    for (let step = 0; step < 3; step++) {
      const shown = await page.waitForSelector("#username, #password, #blocked");
      const id = await shown.getAttribute("id");
      if (id === "blocked") break;
      if (id === "username") {
        await page.fill("#username", user.upn);
        await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
      }
      await page.fill("#password", PASSWORD);
      await page.click("#signin");
      await page.waitForLoadState("load");
    }
    await page.waitForSelector("#blocked");
    assert.equal(callbacks.length, before, "nothing goes to the application");
    const audits = await api("GET", `/auditLogs/directoryAudits?action=accessToken.refuse&targetId=${user.id}`);
    assert.equal(audits.value.length, 2, JSON.stringify(audits.value));
    assert.ok(audits.value.every((e) => e.event.details.policyId === policy.id && e.event.details.address === "203.0.113.50"),
      JSON.stringify(audits.value));
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await api("DELETE", `/identity/conditionalAccess/namedLocations/${office.id}`);
    await context.close();
  },

  // The legacy password grant: security defaults block it; with them off it works
  // until a policy blocks legacy clients.
  async legacyClientsAreBlocked() {
    const user = await newUser("Oldtimer");
    const app = await newApp("Old mail client", { allowPasswordGrant: true, isFallbackPublicClient: true });
    const grant = () => fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", client_id: app.appId, username: user.upn,
        password: PASSWORD, scope: "openid profile" }),
    });
    let response = await grant();
    let body = await response.json();
    assert.equal(response.status, 400);
    assert.equal(body.error, "invalid_grant");
    assert.match(body.error_description, /Conditional Access blocked/);
    let log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=5`);
    assert.ok(log.value[0].appliedConditionalAccessPolicies.policies.some(
      (p) => p.displayName.startsWith("Security defaults: block legacy") && p.result === "failure"));
    await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: false });
    try {
      response = await grant();
      body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.ok(body.access_token && body.id_token && !body.refresh_token);
      const policy = await newPolicy({
        displayName: `Block legacy authentication ${randomUUID().slice(0, 6)}`,
        conditions: { users: { includeUsers: ["All"] }, applications: { includeApplications: ["All"] },
          clientAppTypes: ["exchangeActiveSync", "other"] },
        grantControls: { operator: "OR", builtInControls: ["block"] },
      });
      response = await grant();
      body = await response.json();
      assert.equal(body.error, "invalid_grant");
      log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=5`);
      const entry = log.value.find((e) => e.failureCode === "conditional_access_blocked");
      assert.equal(entry.appliedConditionalAccessPolicies.policies.find((p) => p.id === policy.id).result, "failure");
      await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    } finally {
      await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: true });
    }
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
rp.close();
process.exit(failed ? 1 : 0);
