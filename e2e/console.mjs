// Browser tests of the admin console at /admin, as an administrator uses it, in
// Debian's Chromium through playwright-core. Every page visited is checked with
// axe-core (no serious or critical violation) and photographed at desktop and
// phone width into TESSERA_ARTIFACTS. Environment:
//   TESSERA_URL           http://localhost:PORT
//   TESSERA_TOKEN         the bootstrap administrator's personal access token
//   TESSERA_ADMIN         the break-glass administrator's user principal name
//   TESSERA_CONSOLE_PASS  the Temporary Access Pass printed at bootstrap
//   TESSERA_ARTIFACTS     where screenshots go (optional)
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { api, base, checkAccessibility, run, screenshots, withVirtualAuthenticator } from "./lib.mjs";

const admin = process.env.TESSERA_ADMIN;
const firstPass = process.env.TESSERA_CONSOLE_PASS;
assert.ok(base && admin && firstPass, "TESSERA_URL, TESSERA_ADMIN and TESSERA_CONSOLE_PASS are required");

const USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const PASSWORD = "amber-falcon-harbour-93";

// Opens the console in a fresh browser context and signs in with a pass.
async function consoleWithPass(browser, upn, pass) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/admin`);
  await page.waitForURL(/\/signin/);
  await page.fill("#username", upn);
  await page.click("#next");
  await page.fill("#pass", pass);
  await page.click("#use-pass");
  await page.waitForURL(`${base}/admin`);
  assert.equal(await page.textContent("#who"), upn);
  return { context, page };
}

// Clicks a form's submit button and waits for the page it leads to; a refusal
// shown on the page instead is reported with its text.
async function submit(page, button, url) {
  await page.click(button);
  await Promise.race([
    page.waitForURL(url),
    page.waitForSelector("#error").then(async () => {
      throw new Error(`refused: ${await page.textContent("#error")}`);
    }),
  ]);
}

async function visit(page, path, name) {
  const response = await page.goto(`${base}${path}`);
  assert.equal(response.status(), 200, `${path} answers`);
  await checkAccessibility(page, name);
  await screenshots(page, name);
}

const tests = {
  // The break-glass administrator's first console sign-in uses the pass printed at
  // bootstrap, registers a passkey, and signs in with it from then on.
  async signInWithAPasskey(browser, shared) {
    const { context, page } = await consoleWithPass(browser, admin, firstPass);
    const authenticator = await withVirtualAuthenticator(context, page);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "__Host-tessera-console");
    assert.ok(session && session.httpOnly && session.secure && session.sameSite === "Lax");
    const response = await page.goto(`${base}/admin`);
    assert.doesNotMatch(response.headers()["content-security-policy"], /unsafe-inline/);
    await checkAccessibility(page, "home");
    await screenshots(page, "home");

    await page.goto(`${base}/security-info`);
    await page.fill("#passkey-name", "Console key");
    await page.click("#passkey-register");
    await page.waitForURL(/added=passkey/);

    await page.goto(`${base}/admin`);
    const before = (await context.cookies()).find((c) => c.name === "__Host-tessera-console");
    // Hold the authenticator back: the sign-in page's passkey autofill would
    // otherwise sign in at once.
    const presence = (enabled) => authenticator.cdp.send("WebAuthn.setAutomaticPresenceSimulation", {
      authenticatorId: authenticator.authenticatorId, enabled });
    await presence(false);
    await page.click("#sign-out");
    await page.waitForURL(`${base}/signin`);
    // Signing out revoked the console's token: a copy of the cookie opens nothing.
    await context.addCookies([before]);
    await page.goto(`${base}/admin`);
    await page.waitForURL(/\/signin/);
    await context.clearCookies({ name: "__Host-tessera-console" });
    await page.goto(`${base}/admin`);
    await page.waitForURL(/\/signin/);
    await page.fill("#username", admin);
    await page.click("#next");
    await page.waitForSelector("#signing-in-as");
    await presence(true);
    await page.click("#passkey-signin");
    await page.waitForURL(`${base}/admin`);
    assert.equal(await page.textContent("#who"), admin);
    // The console's sign-ins are in the log as the admin portal's.
    const log = await api("GET", `/auditLogs/signIns?userPrincipalName=${encodeURIComponent(admin)}`);
    assert.ok(log.value.some((e) => e.appDisplayName === "Tessera admin console" && e.result === "success"));
    shared.page = page;
  },

  // The console's client id gets the management API and nothing else: not another
  // application's API (which it would get without consent), not refresh tokens.
  async theConsoleClientAsksOnlyForTheConsole() {
    const ask = async (scope) => {
      const query = new URLSearchParams({
        client_id: "7e55a1c1-0b6f-4c1e-9a4d-3f2b8c6d5e02",
        response_type: "code",
        redirect_uri: `${base}/admin/callback`,
        scope,
        state: "s",
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method: "S256",
      });
      const response = await fetch(`${base}/oauth2/authorize?${query}`, { redirect: "manual" });
      return response.headers.get("location") || "";
    };
    assert.match(await ask("openid api://payroll/.default"), /error=invalid_scope/);
    assert.match(await ask("openid urn:tessera:management/.default offline_access"), /error=invalid_scope/);
    assert.doesNotMatch(await ask("openid profile urn:tessera:management/.default"), /error=/);
  },

  // A user, then a dynamic group whose rule picks them: the rule is checked as it
  // is typed, and the new group has the user as a member.
  async createAUserAndADynamicGroup(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/users", "users");
    await page.click("#new-user");
    await checkAccessibility(page, "new user");
    await page.fill("#displayName", `Nora ${tag}`);
    await page.fill("#userPrincipalName", `nora-${tag}@contoso.com`);
    await page.fill("#department", `Finance-${tag}`);
    await page.click("#save");
    await page.waitForURL(/\/admin\/users\/[0-9a-f-]{36}\?done=created/);
    assert.match(await page.textContent("#properties"), new RegExp(`Finance-${tag}`));
    const userUrl = page.url().split("?")[0];
    await visit(page, userUrl.slice(base.length), "user");

    // A clash is refused with a clear message and the form keeps what was typed.
    await page.goto(`${base}/admin/users/new`);
    await page.fill("#displayName", "Nora again");
    await page.fill("#userPrincipalName", `nora-${tag}@contoso.com`);
    await page.click("#save");
    assert.match(await page.textContent("#error"), /already|exists|taken|in use/i);
    assert.equal(await page.inputValue("#displayName"), "Nora again");

    await page.goto(`${base}/admin/groups/new`);
    await page.check("#membership-dynamic");
    await page.fill("#membershipRule", "user.department -eq");
    await page.waitForSelector("#rule-error");
    await page.fill("#membershipRule", `user.department -eq "Finance-${tag}"`);
    await page.waitForSelector("#rule-ok");
    assert.match(await page.textContent("#rule-ok"), /matches 1 /);
    assert.match(await page.textContent("#rule-members"), new RegExp(`Nora ${tag}`));
    await page.fill("#displayName", `Finance ${tag}`);
    await checkAccessibility(page, "new group");
    await screenshots(page, "group-form");
    await page.click("#save");
    await page.waitForURL(/\/admin\/groups\/[0-9a-f-]{36}\?done=created/);
    assert.match(await page.textContent("#members"), new RegExp(`Nora ${tag}`));
    // An owner, named by user principal name, added and removed.
    await page.fill("#owner", admin);
    await page.click("#add-owner");
    await page.waitForURL(/done=owner-added/);
    assert.match(await page.textContent("#owners"), /./);
    const groupId = page.url().split("?")[0].split("/").pop();
    const owners = await api("GET", `/groups/${groupId}/owners`);
    assert.equal(owners.value.length, 1, "one owner");
    await checkAccessibility(page, "group");
    await screenshots(page, "group");
    await page.locator("#owners button").first().click();
    await page.waitForURL(/done=owner-removed/);
    assert.equal((await api("GET", `/groups/${groupId}/owners`)).value.length, 0);
    await visit(page, "/admin/groups", "groups");

    // The list exports as CSV, with its search.
    await page.goto(`${base}/admin/users?search=${encodeURIComponent(`Nora ${tag}`)}`);
    const csv = await page.request.get(await page.locator("#csv").evaluate((a) => a.href));
    const rows = (await csv.text()).trim().split("\r\n");
    assert.equal(rows.length, 2, "a header and Nora");
    assert.match(rows[1], new RegExp(`nora-${tag}@contoso.com`));

    // Edit with If-Match: a change made elsewhere in between is not overwritten.
    await page.goto(`${userUrl}/edit`);
    const id = userUrl.split("/").pop();
    await api("PATCH", `/users/${id}`, { jobTitle: "Controller" });
    await page.fill("#jobTitle", "Analyst");
    await page.click("#save");
    assert.match(await page.textContent("#error"), /changed this user since/);
    assert.equal((await api("GET", `/users/${id}`)).jobTitle, "Controller");
    await page.goto(`${userUrl}/edit`);
    await page.fill("#jobTitle", "Analyst");
    await page.click("#save");
    await page.waitForURL(/done=saved/);
    assert.equal((await api("GET", `/users/${id}`)).jobTitle, "Analyst");

    // Delete asks first.
    await page.goto(`${userUrl}/delete`);
    await checkAccessibility(page, "confirm delete");
    await page.click("#confirm-delete");
    await page.waitForURL(/\/admin\/users\?done=deleted/);
    const gone = await page.goto(userUrl);
    assert.equal(gone.status(), 404);
  },

  // A User Administrator scoped to one unit opens the users in it, and not the
  // others.
  async aScopedAdministratorStaysInTheirUnit(browser) {
    const tag = randomUUID().slice(0, 8);
    const unit = await api("POST", "/administrativeUnits", { displayName: `Berlin ${tag}` });
    const inside = await api("POST", "/users", { userPrincipalName: `in-${tag}@contoso.com`, displayName: `Inside ${tag}` });
    const outside = await api("POST", "/users", { userPrincipalName: `out-${tag}@contoso.com`, displayName: `Outside ${tag}` });
    await api("POST", `/administrativeUnits/${unit.id}/members`, { id: inside.id });
    const helpdesk = await api("POST", "/users", { userPrincipalName: `desk-${tag}@contoso.com`, displayName: `Desk ${tag}` });
    await api("POST", "/roleManagement/directory/roleAssignments", {
      principalId: helpdesk.id,
      roleDefinitionId: USER_ADMINISTRATOR,
      directoryScopeId: `/administrativeUnits/${unit.id}`,
    });
    const pass = await api("POST", `/users/${helpdesk.id}/authentication/temporaryAccessPassMethods`, {
      isUsableOnce: false,
      lifetimeInMinutes: 60,
    });
    const { context, page } = await consoleWithPass(browser, helpdesk.userPrincipalName, pass.temporaryAccessPass);
    const allowed = await page.goto(`${base}/admin/users/${inside.id}`);
    assert.equal(allowed.status(), 200);
    assert.equal(await page.textContent("h1"), `Inside ${tag}`);
    const refused = await page.goto(`${base}/admin/users/${outside.id}`);
    assert.equal(refused.status(), 403);
    assert.doesNotMatch(await page.textContent("main"), new RegExp(`Outside ${tag}`));
    // Their list is the users of their unit.
    await page.goto(`${base}/admin/users`);
    assert.match(await page.textContent("main"), new RegExp(`Inside ${tag}`));
    assert.doesNotMatch(await page.textContent("main"), new RegExp(`Outside ${tag}`));
    await checkAccessibility(page, "scoped users");
    // And so is their export.
    const csv = await (await page.request.get(`${base}/admin/users.csv`)).text();
    assert.match(csv, new RegExp(`in-${tag}@contoso.com`));
    assert.doesNotMatch(csv, new RegExp(`out-${tag}@contoso.com`));
    await context.close();
  },

  // A user's failed sign-in, found in the log by the correlation id of the answer
  // they got, with why it failed.
  async findAFailedSignInByItsCorrelationId(browser, shared) {
    const tag = randomUUID().slice(0, 8);
    const user = await api("POST", "/users", { userPrincipalName: `kai-${tag}@contoso.com`, displayName: `Kai ${tag}` });
    await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
    const theirs = await browser.newContext();
    const theirPage = await theirs.newPage();
    await theirPage.goto(`${base}/signin`);
    await theirPage.fill("#username", user.userPrincipalName);
    await theirPage.click("#next");
    await theirPage.fill("#password", "not-the-password");
    const [answer] = await Promise.all([
      theirPage.waitForResponse((r) => r.url().endsWith("/signin/password") && r.request().method() === "POST"),
      theirPage.click("#signin"),
    ]);
    const correlation = answer.headers()["x-request-id"];
    assert.ok(correlation, "the answer names its correlation id");
    await theirs.close();

    const page = shared.page;
    await visit(page, "/admin/sign-ins", "sign-ins");
    await page.fill("#correlation_id", correlation);
    await page.click("#filter");
    await page.waitForURL(/correlation_id=/);
    assert.equal(await page.locator("#sign-ins > li").count(), 1);
    const entry = page.locator("#sign-ins > li").first();
    await entry.locator("summary").click();
    assert.match(await entry.textContent(), new RegExp(`kai-${tag}@contoso.com`));
    assert.match(await entry.textContent(), /failure/);
    assert.equal(await entry.locator("code.correlation").textContent(), correlation);
    await checkAccessibility(page, "sign-in entry");
    await screenshots(page, "sign-in-entry");
    // The filters export as CSV.
    const csv = await page.request.get(await page.locator("#csv").evaluate((a) => a.href));
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()["content-type"], /text\/csv/);
    const lines = (await csv.text()).trim().split("\r\n");
    assert.equal(lines.length, 2, "a header and the one entry");
    assert.match(lines[1], new RegExp(correlation));

    // The reports draw the day's sign-ins and who registered what; a privileged
    // role held by a role-assignable group counts its members.
    const tier0 = await api("POST", "/groups", { displayName: `Tier 0 ${tag}`, isAssignableToRole: true });
    const operator = await api("POST", "/users", { userPrincipalName: `op-${tag}@contoso.com`, displayName: `Operator ${tag}` });
    await api("POST", `/groups/${tier0.id}/members`, { id: operator.id });
    await api("POST", "/roleManagement/directory/roleAssignments", {
      principalId: tier0.id, roleDefinitionId: "62e90394-69f5-4237-9190-012177145e10" });
    await visit(page, "/admin/reports", "reports");
    assert.match(await page.textContent("#privileged"), new RegExp(`Operator ${tag}: Global Administrator, through the group Tier 0 ${tag}`));
    assert.ok(await page.locator("#sign-ins-chart rect").count() > 0, "bars for the day's sign-ins");
    assert.match(await page.textContent("#methods-numbers"), /Passkey: 1 users/);
    assert.match(await page.textContent("#privileged"), new RegExp(admin));

    await visit(page, "/admin/audit", "audit");
    await page.click("#verify");
    assert.ok(await page.locator("#intact").isVisible());
    await checkAccessibility(page, "audit verify");
  },

  // An end user in My Account: their profile, security info, a sign-in they do not
  // recognise reported, and an assigned application opened from My Apps (single
  // sign-on through its own sign-in page).
  async anEndUserUsesMyAccountAndMyApps(browser) {
    const tag = randomUUID().slice(0, 8);
    const user = await api("POST", "/users", { userPrincipalName: `mia-${tag}@contoso.com`, displayName: `Mia ${tag}`, jobTitle: "Buyer" });
    await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
    const app = await api("POST", "/applications", { displayName: `Payroll ${tag}`, web: { redirectUris: [`${rpBase}/callback`] } });
    rp.appId = app.appId;
    const sp = await api("POST", "/servicePrincipals", { appId: app.appId, appRoleAssignmentRequired: true, loginUrl: `${rpBase}/login` });
    await api("POST", "/oauth2PermissionGrants", { clientId: app.appId, consentType: "AllPrincipals", scope: "openid profile" });
    const group = await api("POST", "/groups", { displayName: `Payroll users ${tag}` });
    await api("POST", `/groups/${group.id}/members`, { id: user.id });
    await api("POST", `/servicePrincipals/${sp.id}/appRoleAssignedTo`, {
      principalId: group.id, resourceId: sp.id, appRoleId: "00000000-0000-0000-0000-000000000000" });

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/signin`);
    await page.fill("#username", user.userPrincipalName);
    await page.click("#next");
    await page.fill("#password", PASSWORD);
    await page.click("#signin");
    await page.waitForURL(`${base}/security-info`);
    await checkAccessibility(page, "security info");
    await screenshots(page, "my-security-info");

    // A second browser signs in as the same user; the first signs it out.
    const other = await browser.newContext();
    const otherPage = await other.newPage();
    await otherPage.goto(`${base}/signin`);
    await otherPage.fill("#username", user.userPrincipalName);
    await otherPage.click("#next");
    await otherPage.fill("#password", PASSWORD);
    await otherPage.click("#signin");
    await otherPage.waitForURL(`${base}/security-info`);
    await page.goto(`${base}/security-info`);
    const rows = page.locator("#sessions tr", { has: page.locator("button") });
    assert.equal(await rows.count(), 2, "two sessions listed");
    await rows.filter({ hasNotText: "this browser" }).locator("button").click();
    await page.waitForURL(`${base}/security-info`);
    assert.equal(await rows.count(), 1, "one session left");
    await otherPage.goto(`${base}/security-info`);
    await otherPage.waitForURL(/\/signin/);
    await other.close();

    await visit(page, "/myaccount", "my-profile");
    assert.match(await page.textContent("#profile"), /Buyer/);

    await visit(page, "/myaccount/sign-ins", "my-sign-ins");
    await page.locator("#sign-ins li button").first().click();
    await page.waitForURL(/done=reported/);
    assert.ok(await page.locator("#reported").isVisible());
    // Reported twice, recorded once.
    await page.locator("#sign-ins li button").first().click();
    await page.waitForURL(/done=reported/);
    const reports = await api("GET", `/auditLogs/directoryAudits?action=user.signIn.report&targetId=${user.id}`);
    assert.equal(reports.value.length, 1, "the report is in the audit trail, once");

    await visit(page, "/myaccount/apps", "my-apps");
    await page.click(`text=Payroll ${tag}`);
    await page.waitForURL(`${rpBase}/callback**`);
    assert.equal(await page.textContent("#welcome"), "Welcome to Payroll");
    await context.close();
  },

  // An application registered from the console: its secret is shown once, a user
  // is assigned, the secret is removed.
  async registerAnApplication(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/applications", "applications");
    await page.click("#new-app");
    await page.fill("#displayName", `Expenses ${tag}`);
    await page.fill("#web", "http://www.example.com/callback");
    await page.click("#save");
    assert.match(await page.textContent("#error"), /web\.redirectUris/);
    await page.fill("#web", `https://expenses-${tag}.example.com/callback`);
    await page.click("#save");
    await page.waitForURL(/\/admin\/applications\/[0-9a-f-]{36}\?done=created/);
    const appUrl = page.url().split("?")[0];
    await page.fill("#secret-name", "CI");
    await page.click("#add-secret");
    const secret = (await page.textContent("#new-secret")).trim();
    assert.ok(secret.length >= 32, "a long secret");
    const hint = (await page.textContent("#secrets tbody tr td:nth-child(2)")).trim();
    assert.ok(secret.includes(hint), "the list names the secret by its hint");
    await checkAccessibility(page, "application");
    await screenshots(page, "application");
    // Reloading the page that showed it neither shows it again nor makes another.
    await page.reload();
    assert.equal(await page.locator("#new-secret").count(), 0, "the secret is not shown again");
    assert.equal(await page.locator("#secrets tbody tr").count(), 1, "one secret");
    await page.goto(appUrl);
    assert.equal(await page.locator("#new-secret").count(), 0, "the secret is not shown again");
    assert.doesNotMatch(await page.content(), new RegExp(secret));
    await page.fill("#principal", admin);
    await page.click("#assign");
    await page.waitForURL(/done=assigned/);
    assert.match(await page.textContent("#assignments"), /breakglass|Global|admin/i);
    await page.locator("#secrets button").first().click();
    await page.waitForURL(/done=removed/);
    assert.equal(await page.locator("#secrets").count(), 0);

    // The registration as JSON: a federated credential added, shown on the page.
    await page.click("#edit-json");
    await checkAccessibility(page, "application json");
    const registration = JSON.parse(await page.inputValue("#json"));
    registration.federatedIdentityCredentials = [{
      name: "ci", issuer: "https://token.actions.githubusercontent.com",
      subject: `repo:contoso/expenses-${tag}:ref:refs/heads/main`, audiences: ["api://TesseraTokenExchange"],
    }];
    await page.fill("#json", JSON.stringify(registration, null, 2));
    await page.click("#save");
    await page.waitForURL(/done=saved/);
    assert.match(await page.textContent("#federated"), new RegExp(`expenses-${tag}`));
    // Consent given through the API, revoked in the console.
    const clientId = (await page.textContent("#client-id")).trim();
    await api("POST", "/oauth2PermissionGrants", { clientId, consentType: "AllPrincipals", scope: "openid profile" });
    await page.goto(appUrl);
    assert.match(await page.textContent("#consents"), /openid profile/);
    await page.locator("#consents button").first().click();
    await page.waitForURL(/done=revoked/);
    assert.equal(await page.locator("#consents").count(), 0);
    const grants = await api("GET", `/oauth2PermissionGrants?clientId=${clientId}`);
    assert.equal((grants.value || grants).length, 0);
  },

  // A device registered through the API, seen and deleted in the console.
  async devices(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    const device = await api("POST", "/devices", { displayName: `Laptop ${tag}`, operatingSystem: "Windows", isCompliant: true });
    await visit(page, "/admin/devices", "devices");
    await page.click(`text=Laptop ${tag}`);
    assert.match(await page.textContent("#properties"), /Compliant\s*Yes/);
    await checkAccessibility(page, "device");
    await page.uncheck("#isCompliant");
    await page.fill("#displayName", `Laptop ${tag} (lost)`);
    await page.click("#save");
    await page.waitForURL(/done=saved/);
    const changed = await api("GET", `/devices/${device.id}`);
    assert.equal(changed.isCompliant, false);
    assert.equal(changed.displayName, `Laptop ${tag} (lost)`);
    assert.match(await page.textContent("#properties"), /Compliant\s*No/);
    // A device manager's report with a grace period and its reason shows.
    const until = new Date(Date.now() + 3 * 86400 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    const reported = await api("POST", "/devices/compliance", { value: [{ deviceId: device.id, isCompliant: false,
      complianceGracePeriodExpirationDateTime: until, complianceReason: "disk <encryption> pending" }] });
    assert.equal(reported.changed, 1, JSON.stringify(reported));
    await page.reload();
    assert.equal(await page.textContent("#grace-period"), `until ${until} (counts as compliant until then)`);
    assert.equal(await page.textContent("#compliance-reason"), "disk <encryption> pending");
    await page.click("#delete");
    await page.click("#confirm-delete");
    await page.waitForURL(/done=deleted/);
    const gone = await fetch(`${base}/api/v1/devices/${device.id}`, { headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}` } });
    assert.equal(gone.status, 404);
  },

  // A unit made in the console, a user put in it, and a role given in its scope.
  async rolesAndUnits(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    const user = await api("POST", "/users", { userPrincipalName: `ana-${tag}@contoso.com`, displayName: `Ana ${tag}` });
    await visit(page, "/admin/units", "units");
    await page.fill("#unit-name", `Paris ${tag}`);
    await page.click("#create-unit");
    await page.waitForURL(/\/admin\/units\/[0-9a-f-]{36}$/);
    await page.fill("#member", user.userPrincipalName);
    await page.click("#add-member");
    await page.waitForSelector("#members");
    assert.match(await page.textContent("#members"), new RegExp(`Ana ${tag}`));
    await checkAccessibility(page, "unit");
    await visit(page, "/admin/roles", "roles");
    await page.click("text=User Administrator");
    await page.fill("#principal", user.userPrincipalName);
    await page.selectOption("#scope", { label: `Unit Paris ${tag}` });
    await page.click("#assign");
    await page.waitForURL(/done=assigned/);
    assert.match(await page.textContent("#holders"), new RegExp(`ana-${tag}@contoso.com \\(Unit Paris ${tag}\\)`));
    await checkAccessibility(page, "role");
    await screenshots(page, "role");
    await page.locator("#holders li", { hasText: `ana-${tag}` }).locator("button").click();
    await page.waitForURL(/done=removed/);
    assert.doesNotMatch(await page.textContent("main"), new RegExp(`ana-${tag}`));
  },

  // The shared corpus (an Entra baseline export) imported from its folder, as
  // report-only, and What-If on it.
  async importTheCorpusAndRunWhatIf(browser, shared) {
    const corpus = fileURLToPath(new URL("../testdata/entra-ca-baseline/", import.meta.url));
    const files = (dir) => readdirSync(`${corpus}${dir}`).filter((f) => f.endsWith(".json")).map((f) => `${corpus}${dir}/${f}`);
    // The export's groups exist here under the same names (imports match by name).
    const read = (file) => {
      const bytes = readFileSync(file);
      const text = bytes[0] === 0xff && bytes[1] === 0xfe ? bytes.subarray(2).toString("utf16le") : bytes.toString("utf8").replace(/^\uFEFF/, "");
      return JSON.parse(text);
    };
    const names = new Set(files("Groups").map((file) => read(file).displayName));
    for (const object of read(`${corpus}MigrationTable.json`).Objects) {
      if (object.Type === "Group") names.add(object.DisplayName);
    }
    for (const displayName of names) await api("POST", "/groups", { displayName });
    const page = shared.page;
    await visit(page, "/admin/conditional-access", "conditional-access");
    await page.click("#import");
    await checkAccessibility(page, "import");
    await page.setInputFiles("#export", [
      ...files("ConditionalAccess"), ...files("NamedLocations"), ...files("Groups"), `${corpus}MigrationTable.json`,
    ]);
    await page.uncheck("#dryRun");
    // Some baseline policies use what Tessera does not support: they stay out.
    await page.check("#skipErrors");
    await page.click("#upload");
    // The page's script shows the upload's progress and puts the answer in place.
    await page.waitForSelector("#outcome, #error", { timeout: 120000 });
    if (!(await page.locator("#outcome").count())) throw new Error(`no report: ${await page.textContent("body")}`);
    assert.match(await page.textContent("#outcome"), /Imported \d+ policies/);
    assert.ok(await page.locator("#report tbody tr").count() > 10);
    await checkAccessibility(page, "import report");
    await screenshots(page, "import-report");

    await page.goto(`${base}/admin/conditional-access`);
    const listed = await page.locator("#policies tbody tr").count();
    assert.ok(listed > 10, `policies listed: ${listed}`);
    assert.match(await page.textContent("#policies"), /Report-only/);
    await page.locator("#policies a").first().click();
    assert.match(await page.inputValue("#json"), /"conditions"/);
    await checkAccessibility(page, "policy");

    await page.goto(`${base}/admin/conditional-access/what-if`);
    await page.fill("#user", admin);
    await page.fill("#app", "MicrosoftAdminPortals");
    await page.check("#method-password");
    await page.click("#ask");
    await page.waitForSelector("#answer");
    const answer = await page.textContent("#answer");
    assert.match(answer, /Conditional Access: /);
    assert.match(answer, /CA100-Admins-IdentityProtection-AdminPortals/);
    await checkAccessibility(page, "what-if");
    await screenshots(page, "what-if");
  },

  // An administrator revokes a user's sessions from the user's page: the user's
  // browser is signed out at once.
  // Identity Protection: a user signs in through Tor (the address the trusted
  // proxy gives); the administrator finds her among the risky users with the
  // detection and its evidence, confirms her compromised, then dismisses it.
  async identityProtection(browser, shared) {
    const tag = randomUUID().slice(0, 8);
    const user = await api("POST", "/users", { userPrincipalName: `tor-${tag}@contoso.com`, displayName: `Tor ${tag}` });
    await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
    const theirs = await browser.newContext({ extraHTTPHeaders: { "x-forwarded-for": "185.220.101.9" } });
    const theirPage = await theirs.newPage();
    await theirPage.goto(`${base}/signin`);
    await theirPage.fill("#username", user.userPrincipalName);
    await theirPage.click("#next");
    await theirPage.fill("#password", PASSWORD);
    await theirPage.click("#signin");
    await theirPage.waitForURL(`${base}/security-info`);
    await theirs.close();

    const page = shared.page;
    await visit(page, "/admin/risk", "risky users");
    assert.ok((await page.textContent("#risky-users")).includes(user.userPrincipalName));
    await visit(page, `/admin/risk/users/${user.id}`, "risky user");
    assert.equal((await page.textContent("#risk-level")).trim(), "medium");
    assert.match(await page.textContent("#detections"), /anonymizedIPAddress/);
    assert.match(await page.textContent("#detections"), /185\.220\.101\.9/);
    await submit(page, "#confirm", /done=confirmed/);
    assert.equal((await page.textContent("#risk-state")).trim(), "confirmedCompromised");
    await checkAccessibility(page, "risky user confirmed");
    await submit(page, "#dismiss", /done=dismissed/);
    assert.equal((await page.textContent("#risk-state")).trim(), "dismissed");
    assert.equal(await page.locator("#history tbody tr").count(), 3);
    await visit(page, "/admin/risk/detections?kind=anonymizedIPAddress", "risk detections");
    assert.ok((await page.textContent("#detections")).includes(user.userPrincipalName));
    await visit(page, "/admin/risk/workloads", "risky workloads");
    // A filter the API refuses is said on the page.
    const refused = await page.goto(`${base}/admin/risk?level=severe`);
    assert.equal(refused.status(), 400);
  },

  // The SIEM export: an administrator adds an HTTPS sink with the form (a bad
  // URL is refused and what was typed stays, but not the secret), sees it with
  // its streams, turns it off and removes it.
  async siemExport(browser, shared) {
    const page = shared.page;
    await visit(page, "/admin/siem", "siem sinks");
    await page.goto(`${base}/admin/siem/new/https`);
    await page.fill("#displayName", "Data lake");
    await page.fill("#url", "http://lake.example.com/in");
    await page.fill("#secret", "s".repeat(40));
    await page.click("#create");
    await page.waitForSelector("#error");
    assert.match(await page.textContent("#error"), /url/);
    assert.equal(await page.inputValue("#displayName"), "Data lake");
    assert.equal(await page.inputValue("#secret"), "", "a secret is not sent back");
    await checkAccessibility(page, "siem sink refused");
    await page.fill("#url", "https://lake.example.com/in");
    await page.fill("#secret", "s".repeat(40));
    await page.uncheck("#stream-signIns");
    await submit(page, "#create", /\/admin\/siem\/[0-9a-f-]{36}$/);
    assert.match(await page.textContent("#destination"), /lake\.example\.com/);
    assert.equal(await page.locator("#streams tbody tr").count(), 2);
    assert.match(await page.textContent("#secret-hint"), /One is set/);
    assert.equal(await page.inputValue("#secret"), "");
    await checkAccessibility(page, "siem sink");
    await screenshots(page, "siem sink");
    await page.uncheck("#enabled");
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.click("#save"),
    ]);
    await visit(page, "/admin/siem", "siem sinks with one");
    assert.match(await page.textContent("#sinks"), /Data lake\s*https\s*https:\/\/lake\.example\.com\/in\s*no/);
    await page.click("#sinks a");
    await submit(page, "#remove", /\/admin\/siem$/);
    assert.ok(await page.locator("#no-sinks").isVisible());
  },

  // Shared Signals: an administrator lets an application receive and a
  // device manager report compliance, and reads a user's revocation
  // timeline after their sessions were revoked.
  async sharedSignals(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/signals", "shared signals");
    const app = await api("POST", "/applications", { displayName: `Mail ${tag}` });
    await page.fill("#receiver-app", app.appId);
    await submit(page, "#allow", /\/admin\/signals$/);
    assert.match(await page.textContent("#receivers"), new RegExp(app.appId));
    const mdm = await api("POST", "/applications", { displayName: `MDM ${tag}` });
    await page.fill("#manager-app", mdm.appId);
    await submit(page, "#add-manager-button", /\/admin\/signals$/);
    assert.match(await page.textContent("#managers"), new RegExp(mdm.appId));
    await checkAccessibility(page, "shared signals");
    await screenshots(page, "shared signals");
    const user = await api("POST", "/users", { userPrincipalName: `nora-${tag}@contoso.com`, displayName: `Nora ${tag}` });
    await api("POST", `/users/${user.id}/revokeSignInSessions`);
    await page.fill("#timeline-user", user.userPrincipalName);
    await submit(page, "#show-timeline", /\/admin\/signals\/timeline/);
    assert.match(await page.textContent("#timeline"), /session-revoked/);
    await checkAccessibility(page, "revocation timeline");
  },

  async revokeAUsersSessions(browser, shared) {
    const tag = randomUUID().slice(0, 8);
    const user = await api("POST", "/users", { userPrincipalName: `lynne-${tag}@contoso.com`, displayName: `Lynne ${tag}` });
    await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
    const theirs = await browser.newContext();
    const theirPage = await theirs.newPage();
    await theirPage.goto(`${base}/signin`);
    await theirPage.fill("#username", user.userPrincipalName);
    await theirPage.click("#next");
    await theirPage.fill("#password", PASSWORD);
    await theirPage.click("#signin");
    await theirPage.waitForURL(`${base}/security-info`);

    const page = shared.page;
    await page.goto(`${base}/admin/users/${user.id}`);
    assert.equal(await page.locator("#sessions tbody tr").count(), 1);
    await page.click("#revoke-sessions");
    await page.waitForURL(/done=revoked/);
    assert.ok(await page.locator("#no-sessions").isVisible());
    await theirPage.goto(`${base}/security-info`);
    assert.equal(theirPage.url(), `${base}/signin`);
    await theirs.close();

    // A Temporary Access Pass, shown once, signs the user in.
    await page.goto(`${base}/admin/users/${user.id}`);
    await page.click("#issue-pass");
    const pass = (await page.textContent("#secret")).trim();
    await checkAccessibility(page, "pass shown once");
    const again = await browser.newContext();
    const againPage = await again.newPage();
    await againPage.goto(`${base}/signin`);
    await againPage.fill("#username", user.userPrincipalName);
    await againPage.click("#next");
    await againPage.fill("#pass", pass);
    await againPage.click("#use-pass");
    await againPage.waitForURL(`${base}/security-info`);
    await again.close();
    // A reset password, shown once, works too.
    await page.goto(`${base}/admin/users/${user.id}`);
    await page.click("#reset-password");
    const password = (await page.textContent("#secret")).trim();
    const third = await browser.newContext();
    const thirdPage = await third.newPage();
    await thirdPage.goto(`${base}/signin`);
    await thirdPage.fill("#username", user.userPrincipalName);
    await thirdPage.click("#next");
    await thirdPage.fill("#password", password);
    await thirdPage.click("#signin");
    await thirdPage.waitForLoadState("load");
    assert.doesNotMatch(thirdPage.url(), /\/signin$/);
    await third.close();
  },

  // A policy made with the form (every field by its label), changed, and deleted;
  // a named location made as JSON is offered by the form.
  async aPolicyFromTheForm(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/conditional-access/named-locations", "named-locations");
    await page.click("#new");
    await checkAccessibility(page, "new named location");
    await page.fill("#json", JSON.stringify({
      "@odata.type": "#microsoft.graph.ipNamedLocation", displayName: `Office ${tag}`, isTrusted: true,
      ipRanges: [{ cidrAddress: "198.51.100.0/24" }],
    }));
    await page.click("#create");
    await page.waitForURL(/named-locations\/[0-9a-f-]{36}\?done=created/);
    const locationId = page.url().split("?")[0].split("/").pop();
    await page.fill("#json", "[]");
    await page.click("#save");
    assert.match(await page.textContent("#error"), /one JSON object/);

    await visit(page, "/admin/conditional-access/policies/new", "new-policy");
    await page.fill("#displayName", `Office MFA ${tag}`);
    await page.fill("#include-users", "All");
    await page.fill("#exclude-users", (await api("GET", `/users/byPrincipalName/${admin}`)).id);
    await page.fill("#include-apps", "All");
    await page.getByLabel("Browser", { exact: true }).check();
    await page.locator("#exclude-locations").getByLabel(`Office ${tag}`).check();
    await page.getByLabel("High", { exact: true }).first().check();
    await page.getByLabel("Require multifactor authentication").check();
    await page.check("#frequency");
    await page.fill("#frequency-value", "4");
    await page.selectOption("#frequency-unit", "hours");
    await screenshots(page, "policy-form");
    await submit(page, "#save", /policies\/[0-9a-f-]{36}$/);
    const policyId = page.url().split("/").pop();
    const made = await api("GET", `/identity/conditionalAccess/policies/${policyId}`);
    assert.equal(made.state, "enabledForReportingButNotEnforced");
    assert.deepEqual(made.conditions.users.includeUsers, ["All"]);
    assert.deepEqual(made.conditions.clientAppTypes, ["browser"]);
    assert.deepEqual(made.conditions.locations.excludeLocations, [locationId]);
    assert.deepEqual(made.conditions.userRiskLevels, ["high"]);
    assert.deepEqual(made.grantControls.builtInControls, ["mfa"]);
    assert.equal(made.sessionControls.signInFrequency.value, 4);
    await checkAccessibility(page, "policy form");

    // Changed: the location no longer excluded, a block instead of MFA; what the
    // form kept is as it was.
    assert.ok(await page.locator("#exclude-locations").getByLabel(`Office ${tag}`).isChecked());
    await page.locator("#exclude-locations").getByLabel(`Office ${tag}`).uncheck();
    await page.getByLabel("Require multifactor authentication").uncheck();
    await page.getByLabel("Block access").check();
    await submit(page, "#save", /policies\/[0-9a-f-]{36}$/);
    const changed = await api("GET", `/identity/conditionalAccess/policies/${policyId}`);
    assert.deepEqual(changed.grantControls.builtInControls, ["block"]);
    assert.deepEqual(changed.conditions.locations?.excludeLocations ?? [], []);
    assert.deepEqual(changed.conditions.clientAppTypes, ["browser"]);

    // A number out of range is refused with the reason, and the form keeps what
    // was chosen.
    await page.fill("#frequency-value", "99999999999");
    await page.click("#save");
    assert.match(await page.textContent("#error"), /whole number/);
    assert.ok(await page.getByLabel("Block access").isChecked());

    // The location is free again, and goes; then the policy.
    await page.goto(`${base}/admin/conditional-access/named-locations/${locationId}/delete`);
    await page.click("#confirm-delete");
    await page.waitForURL(/done=deleted/);
    await page.goto(`${base}/admin/conditional-access/policies/${policyId}`);
    await page.click("#delete");
    await page.click("#confirm-delete");
    await page.waitForURL(/done=deleted/);
    const gone = await fetch(`${base}/api/v1/identity/conditionalAccess/policies/${policyId}`, { headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}` } });
    assert.equal(gone.status, 404);
  },

  // Terms of use, a custom authentication strength and a custom security attribute
  // made from the console; the certificate authorities page.
  async authenticationAndAttributes(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/conditional-access/terms-of-use", "terms-of-use");
    await page.click("#new");
    await page.fill("#json", JSON.stringify({ displayName: `Rules ${tag}`, content: "Be kind." }));
    await page.click("#create");
    await page.waitForURL(/done=created/);
    await checkAccessibility(page, "terms");

    await visit(page, "/admin/authentication", "authentication");
    await visit(page, "/admin/authentication/strengths", "strengths");
    assert.match(await page.textContent("#records"), /built in/);
    await page.click("#new");
    await page.fill("#json", JSON.stringify({ displayName: `Keys ${tag}`, allowedCombinations: ["fido2"] }));
    await page.click("#create");
    await page.waitForURL(/done=created/);
    assert.match(await page.textContent("#json"), /fido2/);
    assert.equal(await page.locator("#save").count(), 0, "a strength is not edited");
    await page.click("#delete");
    await page.click("#confirm-delete");
    await page.waitForURL(/done=deleted/);
    await visit(page, "/admin/authentication/certificate-authorities", "certificate-authorities");

    // Custom security attributes are for their own administrators (as in Entra,
    // a Global Administrator is not one): the section shows once the role is held.
    assert.equal(await page.locator('nav a[href="/admin/attributes"]').count(), 0);
    const me = await api("GET", `/users/byPrincipalName/${admin}`);
    const definer = await api("POST", "/roleManagement/directory/roleAssignments", {
      principalId: me.id, roleDefinitionId: "8424c6f0-a189-499e-bbd0-26c1753c96d4", directoryScopeId: "/" });
    await visit(page, "/admin/attributes", "attributes");
    await page.click("#new");
    await page.fill("#json", JSON.stringify({
      attributeSet: "Engineering", name: `Project${tag}`, type: "String", isCollection: false,
      usePreDefinedValuesOnly: false, status: "Available",
    }));
    await page.click("#create");
    await page.waitForURL(/done=created/);
    const definition = JSON.parse(await page.inputValue("#json"));
    await page.fill("#json", JSON.stringify({ ...definition, description: "Which project" }));
    await page.click("#save");
    await page.waitForURL(/done=saved/);
    const stored = await api("GET", `/directory/customSecurityAttributeDefinitions/Engineering_Project${tag}`);
    assert.equal(stored.description, "Which project");
    await checkAccessibility(page, "attribute");
    await api("DELETE", `/roleManagement/directory/roleAssignments/${definer.id}`);
  },

  // Users created in bulk from a CSV file in Entra's template: a file with a bad
  // line creates nobody; a good one creates everyone, with the progress shown.
  async bulkCreateUsers(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/users", "users");
    await page.click("#bulk-create");
    await checkAccessibility(page, "bulk create");
    const template = await (await page.request.get(`${base}/admin/users/import/template.csv`)).text();
    const [version, header] = template.split("\r\n");
    const row = (n, enabled = "No", usage = "") => `Bulk ${tag} ${n},bulk-${tag}-${n}@contoso.com,${enabled},,,,Bulk-${tag},${usage},,`;
    const file = (rows) => ({ name: "users.csv", mimeType: "text/csv", buffer: Buffer.from([version, header, ...rows].join("\r\n")) });

    // Problems past the first batch of 1,000 still create nobody: the whole file is
    // checked first, as the directory would check it.
    const bad = Array.from({ length: 1003 }, (_, n) => row(n + 1));
    bad.push(row(1004, "maybe"), row(1005, "No", "gbr"), row(1));
    await page.setInputFiles("#file", file(bad));
    await page.click("#upload");
    await page.waitForSelector("#problems");
    const problems = await page.textContent("#problems");
    assert.match(problems, /Line 1006: .*Yes or No/);
    assert.match(problems, /Line 1007: usageLocation/);
    assert.match(problems, /Line 1008: .*twice/);
    const none = await api("GET", `/users?search=${encodeURIComponent(`Bulk ${tag}`)}`);
    assert.equal(none.value.length, 0, "a file with a problem creates nobody");

    const rows = Array.from({ length: 1205 }, (_, n) => row(n + 1, n === 0 ? "Yes" : "No"));
    await page.setInputFiles("#file", file(rows));
    await page.click("#upload");
    await page.waitForSelector("#outcome", { timeout: 120000 });
    assert.match(await page.textContent("#outcome"), /Created all 1205 users/);
    assert.match(await page.textContent("#steps"), /Created 1205 of 1205/);
    await checkAccessibility(page, "bulk create done");
    await screenshots(page, "bulk-create");
    const blocked = await api("GET", `/users/byPrincipalName/bulk-${tag}-1@contoso.com`);
    assert.equal(blocked.accountEnabled, false, "Block sign in: Yes");
    assert.equal(blocked.department, `Bulk-${tag}`);

    // Names already in the directory are found before anything is created.
    await page.goto(`${base}/admin/users/import`);
    await page.setInputFiles("#file", file([row(5000), ...rows.slice(0, 2)]));
    await page.click("#upload");
    await page.waitForSelector("#problems");
    assert.match(await page.textContent("#problems"), new RegExp(`Line 4: bulk-${tag}-1@contoso.com is already a user`));
    assert.equal((await fetch(`${base}/api/v1/users/byPrincipalName/bulk-${tag}-5000@contoso.com`, {
      headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}` } })).status, 404);
  },

  // An application's SAML single sign-on: set from the service provider's
  // metadata, its own signing certificate rolled over (the next one published in
  // its metadata before it signs), and the configuration removed after a
  // confirmation.
  async samlApplication(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    const app = await api("POST", "/applications", { displayName: `Wiki ${tag}` });
    const entity = `https://wiki-${tag}.example.com/saml`;
    await visit(page, `/admin/applications/${app.id}/saml`, "saml");
    await page.fill("#metadata", `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${entity}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${entity}/slo"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${entity}/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>`);
    await submit(page, "#import", /done=imported/);
    const configured = JSON.parse(await page.inputValue("#json"));
    assert.equal(configured.entityId, entity);
    assert.equal(configured.logoutBinding, "post", "the metadata's only logout service is POST");
    assert.ok(await page.locator("#no-certificates").count(), "the tenant's certificate signs at first");
    await submit(page, "#add-certificate", /done=added/);
    const rows = page.locator("#certificate-list tbody tr");
    assert.match(await rows.nth(0).textContent(), /Next/, "a new certificate waits");
    await submit(page, "#activate-1", /done=activated/);
    assert.match(await rows.nth(0).textContent(), /Signing/);
    await submit(page, "#add-certificate", /done=added/);
    assert.equal(await rows.count(), 2);
    assert.match(await rows.nth(0).textContent(), /Signing/);
    assert.match(await rows.nth(1).textContent(), /Next/);
    await checkAccessibility(page, "saml certificates");
    await screenshots(page, "saml certificates");
    const next = (await rows.nth(1).locator("code").textContent()).trim();
    const listed = await api("GET", `/applications/${app.id}/saml/certificates`);
    const published = await (await fetch(`${base}/saml2/apps/${app.appId}/metadata`)).text();
    for (const certificate of listed.value) {
      assert.ok(published.includes(certificate.certificate), "both certificates are in the application's metadata");
    }
    await submit(page, "#activate-2", /done=activated/);
    assert.equal(await rows.count(), 1, "the replaced certificate is gone");
    assert.equal((await rows.nth(0).locator("code").textContent()).trim(), next);
    await page.click("#remove-saml");
    await page.waitForURL(/\/saml\/delete$/);
    await checkAccessibility(page, "confirm saml removal");
    await submit(page, "#confirm-delete", new RegExp(`/admin/applications/${app.id}$`));
    const gone = await fetch(`${base}/api/v1/applications/${app.id}/saml`, {
      headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}` },
    });
    assert.equal(gone.status, 404);
  },

    // Provisioning: an HR export previewed and run, a lifecycle workflow from its
  // example, and an application provisioned to scim2-server (python-scim) with a
  // cycle, a user on demand and the log.
  async provisioning(browser, shared) {
    const page = shared.page;
    const tag = randomUUID().slice(0, 8);
    await visit(page, "/admin/provisioning", "provisioning");
    // The HR import settings, in the provisioning setting's JSON.
    await page.click("#provisioning-settings");
    const settings = JSON.parse(await page.inputValue("#json"));
    settings.hrImport = {
      format: "csv", anchor: "employeeId", maxChangedPercent: 100,
      mapping: { attributes: [
        { target: "employeeId", expression: "[Employee ID]" },
        { target: "userPrincipalName", expression: "Join(\".\", ToLower([First]), ToLower([Last]))@contoso.com" },
        { target: "displayName", expression: "Join(\" \", [First], [Last])" },
        { target: "department", expression: "[Department]" },
      ] },
    };
    await page.fill("#json", JSON.stringify(settings, null, 2));
    await page.click("#save");
    await page.waitForSelector("#saved");
    await page.goto(`${base}/admin/provisioning`);
    const csv = `Employee ID,First,Last,Department\nHR-${tag},Grace,Hopper${tag},Navy\n`;
    await page.fill("#content", csv);
    await page.click("#preview");
    await page.waitForSelector("#preview-result");
    assert.match(await page.textContent("#plan"), new RegExp(`grace.hopper${tag}@contoso.com`));
    assert.match(await page.textContent("#preview-counts"), /^1 to create/);
    await checkAccessibility(page, "hr preview");
    await screenshots(page, "hr-preview");
    await page.click("#run");
    await page.waitForURL(/\/admin\/provisioning\/hr\/runs\/[0-9a-f-]{36}$/);
    assert.equal((await page.textContent("#state")).trim(), "completed");
    await checkAccessibility(page, "hr run");
        const grace = await api("GET", `/users/byPrincipalName/grace.hopper${tag}@contoso.com`);
    assert.equal(grace.department, "Navy");
    // Past the threshold a run is held: its rows' changes shown, then approved.
    const putSettings = async (body) => {
      const current = await fetch(`${base}/api/v1/provisioning/settings`, { headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}` } });
      const saved = await fetch(`${base}/api/v1/provisioning/settings`, {
        method: "PUT",
        headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}`, "content-type": "application/json", "if-match": current.headers.get("etag") },
        body: JSON.stringify(body),
      });
      assert.equal(saved.status, 200, await saved.text());
    };
    await putSettings({ ...settings, hrImport: { ...settings.hrImport, maxChangedPercent: 0 } });
    await page.goto(`${base}/admin/provisioning`);
    await page.fill("#content", csv.replace("Navy", "Army"));
    await page.click("#run");
    await page.waitForURL(/\/admin\/provisioning\/hr\/runs\/[0-9a-f-]{36}$/);
    assert.equal((await page.textContent("#state")).trim(), "held");
    assert.match(await page.textContent("#results"), /department: Navy → Army/);
    await checkAccessibility(page, "held hr run");
    await page.click("#approve");
    await page.waitForURL(/done=approved/);
    assert.equal((await page.textContent("#state")).trim(), "completed");
    assert.equal((await api("GET", `/users/${grace.id}`)).department, "Army");
    // Another held run rejected: nothing applied, its rows dropped.
    await page.goto(`${base}/admin/provisioning`);
    await page.fill("#content", csv.replace("Navy", "Marines"));
    await page.click("#run");
    await page.waitForURL(/\/admin\/provisioning\/hr\/runs\/[0-9a-f-]{36}$/);
    assert.equal((await page.textContent("#state")).trim(), "held");
    await page.click("#reject");
    await page.waitForURL(/done=rejected/);
    assert.equal((await page.textContent("#state")).trim(), "rejected");
    assert.equal(await page.$("#approve"), null);
    await checkAccessibility(page, "rejected hr run");
    assert.equal((await api("GET", `/users/${grace.id}`)).department, "Army");
    await page.goto(`${base}/admin/provisioning`);
    await page.fill("#content", "Employee ID,First\n");
    await page.click("#run");
    assert.match(await page.textContent("#error"), /userPrincipalName|Last|column/i);

    // A lifecycle workflow from the example, with its (empty) runs.
    await visit(page, "/admin/provisioning/workflows", "workflows");
    await page.click("#new");
    await page.click("#create");
    await page.waitForURL(/\/admin\/provisioning\/workflows\/[0-9a-f-]{36}\?done=created/);
    await page.click("#runs");
    await page.waitForSelector("#no-runs");
    await checkAccessibility(page, "workflow runs");

    // Outbound provisioning to scim2-server.
    const venv = process.env.TESSERA_VENV || `${process.env.HOME}/.cache/tessera/venv`;
    const port = 20000 + Math.floor(Math.random() * 20000);
    const scimToken = `scim-${tag}`;
        const target = spawn(`${venv}/bin/scim2-server`, ["--port", String(port), "--bearer-token", scimToken], { stdio: "ignore" });
    const spawned = new Promise((resolve, reject) => {
      target.on("spawn", resolve);
      target.on("error", (error) => reject(new Error(`scim2-server did not start: ${error.message}`)));
    });
    try {
      await spawned;
      const targetBase = `http://localhost:${port}/v2`;
      const targetUsers = async () => {
        const r = await fetch(`${targetBase}/Users`, { headers: { authorization: `Bearer ${scimToken}` } });
        return (await r.json()).Resources || [];
      };
      for (let i = 0; ; i++) {
        try { await targetUsers(); break; } catch (e) { if (i > 50) throw e; await new Promise((r) => setTimeout(r, 100)); }
      }
      const app = await api("POST", "/applications", { displayName: `Wiki ${tag}` });
      const sp = await api("POST", "/servicePrincipals", { appId: app.appId });
      await api("POST", `/servicePrincipals/${sp.id}/appRoleAssignedTo`, { principalId: grace.id });
      await visit(page, `/admin/applications/${app.id}/provisioning`, "outbound provisioning");
      const starting = JSON.parse(await page.inputValue("#json"));
      assert.equal(starting.userMapping.attributes[0].target, "userName");
      await page.fill("#json", JSON.stringify({ ...starting, enabled: true, endpoint: targetBase }, null, 2));
      await page.click("#save");
      assert.match(await page.textContent("#error"), /bearer token/);
      await page.fill("#token", scimToken);
      await page.click("#save");
      await page.waitForURL(/done=saved/);
      assert.doesNotMatch(await page.content(), new RegExp(scimToken));
      await page.click("#run-now");
      await page.waitForSelector("#cycle");
      // The background job (every 20 s) may have run the cycle just before:
      // then this one found nothing new. Either way the user arrived once.
      const cycle = await page.textContent("#cycle");
      assert.match(cycle, /(1 created|0 examined)/, cycle);
      assert.match(cycle, /0 failed/, cycle);
      let held = await targetUsers();
      for (let i = 0; held.length === 0 && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100));
        held = await targetUsers();
      }
      assert.deepEqual(held.map((u) => u.userName), [`grace.hopper${tag}@contoso.com`]);
            assert.equal(held[0]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].department, "Army");
      await page.fill("#user", `grace.hopper${tag}@contoso.com`);
      await page.click("#provision-user");
      await page.waitForSelector("#on-demand-result");
      assert.match(await page.textContent("#on-demand-action"), /none \(skipped\)/);
      assert.match(await page.textContent("#log"), /create/);
      await page.fill("#user", "nobody@contoso.com");
      await page.click("#provision-user");
      assert.match(await page.textContent("#error"), /no user/);
      await checkAccessibility(page, "outbound provisioning after a cycle");
      await screenshots(page, "outbound-provisioning");
            await visit(page, "/admin/provisioning", "provisioning with an application");
      assert.match(await page.textContent("#outbound"), new RegExp(`Wiki ${tag}`));
    } finally {
      target.kill();
            // The tenant's provisioning settings as they were.
      delete settings.hrImport;
      await putSettings(settings);
    }
  },

    // Tenant settings as JSON: security defaults turned off and on again; the methods
  // policy shown with its version.
  async tenantSettings(browser, shared) {
    const page = shared.page;
    await visit(page, "/admin/settings", "settings");
    await page.click("text=Security defaults");
    const before = JSON.parse(await page.inputValue("#json"));
    assert.equal(before.isEnabled, true);
    await page.fill("#json", JSON.stringify({ ...before, isEnabled: false }));
    await page.click("#save");
    await page.waitForSelector("#saved");
    assert.equal((await api("GET", "/policies/identitySecurityDefaultsEnforcementPolicy")).isEnabled, false);
    await page.fill("#json", "not json");
    await page.click("#save");
    assert.match(await page.textContent("#error"), /one JSON object/);
    // Changed elsewhere after the page was read: the save is refused, not applied
    // over that change.
    await page.goto(`${base}/admin/settings/security-defaults`);
    await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: true });
    await page.fill("#json", JSON.stringify({ ...before, isEnabled: true }));
    await page.click("#save");
    assert.match(await page.textContent("#error"), /changed this setting since/);
    await page.goto(`${base}/admin/settings/security-defaults`);
    await page.fill("#json", JSON.stringify({ ...before, isEnabled: true }));
    await page.click("#save");
    await page.waitForSelector("#saved");
    assert.equal((await api("GET", "/policies/identitySecurityDefaultsEnforcementPolicy")).isEnabled, true);
    await visit(page, "/admin/settings/authentication-methods", "methods-policy");
    assert.match(await page.inputValue("#json"), /fido2/);
  },
};

// An application for My Apps: its sign-in page starts an authorization request, and
// its callback says who arrived.
const rp = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/login") {
    const verifier = randomBytes(32).toString("base64url");
    const query = new URLSearchParams({
      response_type: "code", client_id: rp.appId, redirect_uri: `${rpBase}/callback`, scope: "openid",
      state: "launched", code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    });
    res.writeHead(302, { location: `${base}/oauth2/authorize?${query}` }).end();
  } else if (url.pathname === "/callback" && url.searchParams.get("code")) {
    res.end(`<!doctype html><title>Payroll</title><h1 id="welcome">Welcome to Payroll</h1>`);
  } else {
    res.writeHead(400).end("unexpected");
  }
});
await new Promise((resolve) => rp.listen(0, "127.0.0.1", resolve));
const rpBase = `http://127.0.0.1:${rp.address().port}`;

await run(tests, { after: () => rp.close() });
