// Privileged Identity Management end to end, against a running `tessera serve`, in
// Debian's Chromium (playwright-core) with the virtual authenticator for passkeys:
//   - an eligible User Administrator signed in with a password activates the role
//     in My Account with a justification: the role asks for MFA, so the sign-in
//     steps up to her passkey first; the request waits for her approver, who
//     approves it in Approvals; she creates a user in the console; when the
//     activation ends, the next attempt is refused;
//   - a protected action in the console (deleting a Conditional Access policy
//     needs the phishing-resistant context): the confirmation page sends the
//     administrator through a step-up sign-in and back, then the deletion works.
// Environment: TESSERA_URL (http://localhost:PORT), TESSERA_TOKEN, CHROMIUM.
import { randomUUID } from "node:crypto";
import assert from "node:assert/strict";
import { api, base, checkAccessibility, run, withVirtualAuthenticator } from "./lib.mjs";

const PASSWORD = "copper-lantern-meadow-77";
const USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const CONDITIONAL_ACCESS_ADMINISTRATOR = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9";
const PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004";

async function newUser(name) {
  const upn = `${name}-${randomUUID().slice(0, 8)}@contoso.com`;
  const user = await api("POST", "/users", { userPrincipalName: upn, displayName: name });
  await api("POST", `/users/${user.id}/authentication/resetPassword`, { newPassword: PASSWORD });
  return { id: user.id, upn };
}

async function signInWithPassword(page, upn) {
  await page.goto(`${base}/signin`);
  await page.waitForSelector("#username");
  await page.fill("#username", upn);
  await Promise.all([page.waitForSelector("#password"), page.click("#next")]);
  await page.fill("#password", PASSWORD);
  await page.click("#signin");
  await page.waitForURL(`${base}/security-info**`);
}

// A password sign-in, then a passkey registered (the session stays a password one).
async function withPasskey(browser, user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withVirtualAuthenticator(context, page);
  await signInWithPassword(page, user.upn);
  await page.fill("#passkey-name", "Virtual key");
  await page.click("#passkey-register");
  await page.waitForURL(/added=passkey/);
  return { context, page };
}

await run({
  async eligibleAdministratorActivatesWithApproval(browser) {
    const alice = await newUser("Alice");
    const bob = await newUser("Bob");
    await api("PUT", `/roleManagement/directory/roleSettings/${USER_ADMINISTRATOR}`, {
      activationRequiresMfa: true,
      activationRequiresJustification: true,
      activationRequiresApproval: true,
      approvers: [{ type: "user", id: bob.id }],
    });
    await api("POST", "/roleManagement/directory/roleEligibilityScheduleRequests", {
      action: "adminAssign", principalId: alice.id, roleDefinitionId: USER_ADMINISTRATOR,
      directoryScopeId: "/", justification: "help desk lead",
      scheduleInfo: { expiration: { type: "noExpiration" } },
    });
    const { context, page } = await withPasskey(browser, alice);

    // My roles: eligible, nothing active.
    await page.goto(`${base}/myaccount/roles`);
    await page.waitForSelector("#no-active");
    await checkAccessibility(page, "my roles");
    // Activating asks for MFA: a step-up to the passkey, then back here.
    await page.fill("#justification-1", "onboarding the new hires");
    await page.fill("#minutes-1", "1");
    await page.click("#activate-1");
    await page.waitForSelector("#step-up");
    await page.click("#passkey-signin");
    await page.waitForURL(/\/myaccount\/roles\?done=stepped-up/);
    await page.fill("#justification-1", "onboarding the new hires");
    await page.fill("#minutes-1", "1");
    await page.click("#activate-1");
    await page.waitForURL(/done=requested/);
    assert.match(await page.textContent("#requests"), /PendingApproval/);

    // Bob approves it in Approvals.
    const approver = await browser.newContext();
    const bobPage = await approver.newPage();
    await signInWithPassword(bobPage, bob.upn);
    await bobPage.goto(`${base}/myaccount/approvals`);
    await checkAccessibility(bobPage, "approvals");
    const asked = await bobPage.textContent("main");
    assert.match(asked, /onboarding the new hires/);
    assert.ok(asked.includes(alice.upn), `the approver sees who asks: ${asked}`);
    assert.match(asked, /whole directory/);
    await bobPage.fill("#reason-1", "tickets checked");
    await bobPage.click("#approve-1");
    await bobPage.waitForURL(/done=approved/);
    await bobPage.waitForSelector("#no-approvals");
    const approvedAt = Date.now();
    await approver.close();

    // Active: Alice creates a user in the console.
    await page.goto(`${base}/myaccount/roles`);
    assert.match(await page.textContent("#active"), /User Administrator/);
    await page.goto(`${base}/admin/users/new`);
    await page.waitForURL(`${base}/admin/users/new`);
    const tag = randomUUID().slice(0, 8);
    await page.fill("#displayName", `Hire ${tag}`);
    await page.fill("#userPrincipalName", `hire-${tag}@contoso.com`);
    await page.click("#save");
    await page.waitForURL(/\/admin\/users\/[0-9a-f-]{36}\?done=created/);

    // A minute after the approval the activation has ended: the next attempt is
    // refused, and My roles shows nothing active.
    const left = approvedAt + 62_000 - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    await page.goto(`${base}/admin/users/new`);
    const refused = await page.textContent("body");
    if (!/not allowed|do not grant|cannot/i.test(refused)) {
      await page.fill("#displayName", `Late ${tag}`);
      await page.fill("#userPrincipalName", `late-${tag}@contoso.com`);
      await page.click("#save");
      assert.match(await page.textContent("body"), /not allowed|do not grant/i);
    }
    const users = await api("GET", `/users?search=${encodeURIComponent(`Late ${tag}`)}`);
    assert.equal(users.value.length, 0, "no user was created after the end");
    await page.goto(`${base}/myaccount/roles`);
    await page.waitForSelector("#no-active");
    await context.close();
  },

  async protectedActionStepUpInTheConsole(browser) {
    const carol = await newUser("Carol");
    await api("POST", "/roleManagement/directory/roleAssignments", {
      principalId: carol.id, roleDefinitionId: CONDITIONAL_ACCESS_ADMINISTRATOR, directoryScopeId: "/",
    });
    await api("PUT", "/policies/authenticationContexts", {
      contexts: [{ id: "c1", displayName: "Phishing-resistant", strengthId: PHISHING_RESISTANT }],
    });
    await api("PUT", "/policies/protectedActions", {
      rules: [{ action: "microsoft.directory/conditionalAccessPolicies/delete", authenticationContext: "c1" }],
    });
    const policy = await api("POST", "/identity/conditionalAccess/policies", {
      displayName: `Old policy ${randomUUID().slice(0, 6)}`, state: "disabled",
      conditions: { users: { includeUsers: ["None"] }, applications: { includeApplications: ["All"] } },
      grantControls: { operator: "OR", builtInControls: ["block"] },
    });
    // No policy asks administrators for MFA here (security defaults off), so her
    // console session is a password one until the protected action asks for more.
    await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: false });
    const { context, page } = await withPasskey(browser, carol);
    // The console with her password session; the deletion's confirmation asks
    // for the context: a step-up sign-in with the passkey, and back.
    await page.goto(`${base}/admin`);
    await page.waitForLoadState("load");
    await page.waitForURL(`${base}/admin`, { timeout: 10000 }).catch(async (error) => {
      throw new Error(`${error.message}\nat ${page.url()}:\n${(await page.textContent("body")).slice(0, 500)}`);
    });
    const visited = [];
    page.on("request", (request) => { if (request.isNavigationRequest()) visited.push(request.url()); });
    await page.goto(`${base}/admin/conditional-access/policies/${policy.id}/delete`);
    // The step-up sign-in asks for the passkey (the page may start it at once).
    await page.waitForSelector("#step-up, #confirm-delete");
    if (await page.locator("#passkey-signin").count()) await page.click("#passkey-signin");
    await page.waitForURL(`${base}/admin/conditional-access/policies/${policy.id}/delete`);
    assert.ok(visited.some((u) => u.includes("/admin/step-up?acr=c1")), `no step-up: ${visited.join("\n")}`);
    assert.ok(visited.some((u) => u.startsWith(`${base}/signin`)), `no sign-in: ${visited.join("\n")}`);
    await page.click("#confirm-delete");
    await page.waitForURL(/done=deleted/);
    await assert.rejects(api("GET", `/identity/conditionalAccess/policies/${policy.id}`), /404/);

    // The console's PIM page: her standing role shows as assigned outside PIM,
    // and "Make eligible" converts it; a role's settings are saved from a form.
    await api("POST", "/roleManagement/directory/roleAssignments", {
      principalId: carol.id, roleDefinitionId: PRIVILEGED_ROLE_ADMINISTRATOR, directoryScopeId: "/",
    });
    await page.goto(`${base}/admin/pim`);
    await checkAccessibility(page, "pim");
    assert.ok((await page.textContent("#alert-assignedOutsidePim")).includes(carol.upn));
    await page.click(`button[aria-label="Make eligible: ${carol.upn}, Conditional Access Administrator"]`);
    await page.waitForURL(/done=converted/);
    const eligible = await api("GET", `/roleManagement/directory/roleEligibilitySchedules?principalId=${carol.id}`);
    assert.deepEqual(eligible.value.map((e) => e.roleDefinitionId), [CONDITIONAL_ACCESS_ADMINISTRATOR]);
    await page.goto(`${base}/admin/pim/roles/${USER_ADMINISTRATOR}`);
    await checkAccessibility(page, "pim role settings");
    await page.fill("#max-hours", "2");
    await page.click("#save");
    await page.waitForURL(/done=saved/);
    const settings = await api("GET", `/roleManagement/directory/roleSettings/${USER_ADMINISTRATOR}`);
    assert.equal(settings.settings.maxActivationSeconds, 7200);
    await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: true });
    await context.close();
  },
});
