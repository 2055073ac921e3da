// SAML single sign-on in Debian's Chromium (playwright-core), with
// @node-saml/node-saml as the service provider: a loopback server is its
// consumer service and checks every Response it is posted.
//   - a user signs in with a passkey (virtual authenticator) and the SP gets the
//     assertion, stating the phishing-resistant class;
//   - a policy asking phishing-resistant MFA for the SAML application makes a
//     password-signed-in user step up to the passkey before the SP gets anything;
//   - a block policy for the SAML application shows the block page, and the SP
//     gets nothing;
//   - an administrator sets the application up in the console from the SP's
//     metadata, and My Apps opens it (IdP-initiated).
// Environment: TESSERA_URL (http://localhost:PORT), TESSERA_TOKEN, CHROMIUM.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { SAML } from "@node-saml/node-saml";
import { api, base, checkAccessibility, run, withVirtualAuthenticator } from "./lib.mjs";

const PASSWORD = "amber-quarry-lantern-58";
const PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004";

// The SP's consumer service: records each posted form, answers "signed in".
const posts = [];
const sp = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    if (req.method === "POST") posts.push(Object.fromEntries(new URLSearchParams(body)));
    res.setHeader("content-type", "text/html");
    res.end("<!doctype html><title>SP</title><p id=\"sp\">signed in at the service provider</p>");
  });
});
await new Promise((resolve) => sp.listen(0, "127.0.0.1", resolve));
const ACS = `http://127.0.0.1:${sp.address().port}/acs`;

const idpMetadata = await (await fetch(`${base}/saml2/metadata`)).text();
const idpCert = idpMetadata.match(/<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/)[1];

await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: false });

async function newUser(name) {
  const upn = `${name}-${randomUUID().slice(0, 8)}@contoso.com`;
  const user = await api("POST", "/users", { userPrincipalName: upn, displayName: name, mail: upn });
  await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
  return { id: user.id, upn };
}

async function newSamlApp(name) {
  const entityId = `https://${name.toLowerCase()}.example/saml/${randomUUID().slice(0, 6)}`;
  const app = await api("POST", "/applications", { displayName: name });
  await api("POST", "/servicePrincipals", { appId: app.appId });
  await api("PUT", `/applications/${app.id}/saml`, {
    entityId,
    consumerServices: [{ url: ACS, index: 0, isDefault: true }],
    attributes: [{ name: "email", source: { kind: "user", attribute: "mail" } }],
  });
  const saml = new SAML({
    callbackUrl: ACS,
    entryPoint: `${base}/saml2/sso`,
    issuer: entityId,
    audience: entityId,
    idpCert,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    validateInResponseTo: "never",
    disableRequestedAuthnContext: true,
    identifierFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
  });
  return { app, entityId, saml };
}

/// Goes to the SP's sign-in request and waits for the SP's page; returns the
/// profile node-saml read from the posted Response.
async function untilSignedIn(page, saml, during) {
  const before = posts.length;
  await page.goto(await saml.getAuthorizeUrlAsync("", undefined, {}));
  if (during) await during(page);
  await page.waitForSelector("#sp", { timeout: 30000 });
  assert.equal(posts.length, before + 1, "the SP was posted one Response");
  const { profile } = await saml.validatePostResponseAsync(posts[posts.length - 1]);
  return profile;
}

async function signInWithPassword(page, upn) {
  await page.waitForSelector("#username");
  await page.fill("#username", upn);
  await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
  await page.fill("#password", PASSWORD);
  await page.click("#signin");
  await page.waitForLoadState("load");
}

async function registerPasskey(page, upn) {
  await page.goto(`${base}/signin`);
  await signInWithPassword(page, upn);
  await page.waitForURL(`${base}/security-info`);
  await page.fill("#passkey-name", "Virtual key");
  await page.click("#passkey-register");
  await page.waitForURL(/added=passkey/);
}

await run({
  // Passwordless: a passkey sign-in, and the assertion says so.
  async passkeySignInToASamlApp(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await withVirtualAuthenticator(context, page);
    const user = await newUser("Amara");
    await registerPasskey(page, user.upn);
    await context.clearCookies();
    const { saml } = await newSamlApp("Wiki");
    // The sign-in page offers the passkey (autofill), and the authenticator answers.
    const profile = await untilSignedIn(page, saml);
    assert.equal(profile.email, user.upn);
    assert.equal(profile.getAssertion().Assertion.AuthnStatement[0].AuthnContext[0].AuthnContextClassRef[0]._,
      "urn:tessera:acr:phishing-resistant-mfa");
    await context.close();
  },

  // A password session meets a policy for phishing-resistant MFA on the SAML app:
  // the user steps up to the passkey before the SP gets the assertion.
  async stepUpToAPasskeyForASamlApp(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await withVirtualAuthenticator(context, page);
    const user = await newUser("Bongani");
    await registerPasskey(page, user.upn);
    const { app, saml } = await newSamlApp("Payroll");
    const policy = await api("POST", "/identity/conditionalAccess/policies", {
      displayName: `SAML Payroll needs phishing-resistant MFA ${randomUUID().slice(0, 6)}`,
      state: "enabled",
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] }, clientAppTypes: ["all"] },
      grantControls: { operator: "OR", builtInControls: [], authenticationStrength: { id: PHISHING_RESISTANT } },
    });
    const profile = await untilSignedIn(page, saml, async (page) => {
      await page.waitForSelector("#step-up");
      assert.equal(await page.textContent("#signing-in-as"), user.upn);
      await checkAccessibility(page, "SAML step-up");
      await page.click("#passkey-signin");
    });
    assert.equal(profile.email, user.upn);
    const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=20`);
    const entry = log.value.find((e) => e.appId === app.appId && e.result === "success");
    assert.equal(entry.appliedConditionalAccessPolicies.policies.find((p) => p.id === policy.id).result, "success");
    assert.ok(log.value.some((e) => e.appId === app.appId && e.result === "interrupted"), "the interruption is logged");
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // A block for the SAML app: the block page, and nothing for the SP.
  async blockedFromASamlApp(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Chen");
    const { app, saml } = await newSamlApp("Legacy Intranet");
    const policy = await api("POST", "/identity/conditionalAccess/policies", {
      displayName: `Block the SAML intranet ${randomUUID().slice(0, 6)}`,
      state: "enabled",
      conditions: { users: { includeUsers: [user.id] }, applications: { includeApplications: [app.appId] } },
      grantControls: { operator: "OR", builtInControls: ["block"] },
    });
    const before = posts.length;
    await page.goto(await saml.getAuthorizeUrlAsync("", undefined, {}));
    await signInWithPassword(page, user.upn);
    await page.waitForSelector("#blocked");
    assert.equal(posts.length, before, "nothing goes to the service provider");
    const log = await api("GET", `/auditLogs/signIns?userId=${user.id}&limit=20`);
    const entry = log.value.find((e) => e.appId === app.appId);
    assert.equal(entry.failureCode, "conditional_access_blocked");
    await api("DELETE", `/identity/conditionalAccess/policies/${policy.id}`);
    await context.close();
  },

  // My Apps opens a SAML application the user is assigned to (IdP-initiated).
  async myAppsOpensASamlApp(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const user = await newUser("Dara");
    const { app } = await newSamlApp("Timesheets");
    const principal = await api("GET", `/servicePrincipals/byAppId/${app.appId}`);
    await api("POST", `/servicePrincipals/${principal.id}/appRoleAssignedTo`, { principalId: user.id });
    await page.goto(`${base}/signin`);
    await signInWithPassword(page, user.upn);
    await page.goto(`${base}/myaccount/apps`);
    const before = posts.length;
    await page.click("text=Timesheets");
    await page.waitForSelector("#sp", { timeout: 30000 });
    assert.equal(posts.length, before + 1);
    const xml = Buffer.from(posts[posts.length - 1].SAMLResponse, "base64").toString();
    assert.ok(!xml.includes("InResponseTo"), "an IdP-initiated Response answers no request");
    await context.close();
  },
}, { after: () => sp.close() });
