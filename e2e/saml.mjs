// SAML interop with service-provider libraries nobody here wrote: pysaml2 and
// python3-saml (through saml_sp.py, in the pinned virtual environment) and
// @node-saml/node-saml, against a running `tessera serve`. Each library makes its
// AuthnRequest (redirect and POST bindings, signed where it has a key), a
// "browser" of fetch calls carries it to Tessera, signs in and takes the form
// Tessera posts back, and the library checks the Response with its own rules
// (signatures, audience, recipient, times, InResponseTo, decryption).
// Environment: TESSERA_URL, TESSERA_TOKEN, TESSERA_PYTHON (the venv's python).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SAML } from "@node-saml/node-saml";
import { api, base, check, cookieJar, csrfOf, failures, signInOnPage } from "./lib.mjs";

const python = process.env.TESSERA_PYTHON;
assert.ok(base && python, "TESSERA_URL, TESSERA_TOKEN and TESSERA_PYTHON are required");

// Protocol scenarios with a password-only user (Conditional Access is the
// browser test's subject).
await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: false });

// A key pair for a service provider, by openssl.
function keyPair(name) {
  const dir = mkdtempSync(join(tmpdir(), "saml-sp-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", `/CN=${name}`,
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  const cert = readFileSync(join(dir, "cert.pem"), "utf8");
  return {
    key: readFileSync(join(dir, "key.pem"), "utf8"),
    cert,
    der: cert.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""),
  };
}

const idpMetadata = await (await fetch(`${base}/saml2/metadata`)).text();
assert.ok(idpMetadata.includes("IDPSSODescriptor"), "the IdP metadata is served");
const idpCert = idpMetadata.match(/<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/)[1];

const person = await api("POST", "/users", {
  userPrincipalName: "saml.user@tessera.local",
  displayName: "Saml User",
  givenName: "Saml",
  mail: "saml.user@tessera.local",
});
const reset = await api("POST", `/users/${person.id}/authentication/resetPassword`, {});
const user = { upn: person.userPrincipalName, password: reset.newPassword };
const group = await api("POST", "/groups", { displayName: "SAML Readers", mailNickname: "samlreaders" });
await api("POST", `/groups/${group.id}/members`, { id: person.id });

// An application with its SAML configuration.
async function samlApp(name, settings) {
  const app = await api("POST", "/applications", { displayName: name });
  await api("POST", "/servicePrincipals", { appId: app.appId });
  const response = await fetch(`${base}/api/v1/applications/${app.id}/saml`, {
    method: "PUT",
    headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(settings),
  });
  assert.equal(response.status, 200, `configure ${name}: ${await response.clone().text()}`);
  return app;
}

const attributes = [
  { name: "email", nameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", source: { kind: "user", attribute: "mail" } },
  { name: "groups", nameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", source: { kind: "groups", name: "displayName" } },
  // A claim transformation: the mail address's local part, upper-cased.
  { name: "short", nameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
    source: { kind: "expression", expression: { op: "uppercase", of: { op: "mailPrefix", of: { op: "attribute", attribute: "mail" } } } } },
];

// The "browser": carries a request to Tessera, signs in when asked, and returns
// the form Tessera posts to the application ({action, fields}).
const jar = cookieJar();
async function browse(start, browser = jar) {
  let response = start.form
    ? await fetch(start.action, {
        method: "POST",
        redirect: "manual",
        headers: { cookie: browser.header(), "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(start.form),
      })
    : await fetch(start.url, { redirect: "manual", headers: { cookie: browser.header() } });
  let url = start.url ?? start.action;
  for (let hop = 0; hop < 12; hop++) {
    browser.take(response);
    if (response.status === 303 || response.status === 302) {
      url = new URL(response.headers.get("location"), url).href;
      response = await fetch(url, { redirect: "manual", headers: { cookie: browser.header() } });
      continue;
    }
    const html = await response.text();
    const form = html.match(/<form method="post" action="([^"]+)" data-autosubmit>(.*?)<\/form>/s);
    if (form) {
      const fields = Object.fromEntries(
        [...form[2].matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], unescape(m[2])]),
      );
      return { status: response.status, action: unescape(form[1]), fields };
    }
    if (!url.startsWith(`${base}/signin`)) return { status: response.status, html };
    url = await signInOnPage(browser, html, user);
    response = await fetch(url, { redirect: "manual", headers: { cookie: browser.header() } });
  }
  throw new Error("too many redirects");
}

// What an error page says.
function refusal(answer) {
  const html = answer.html ?? "";
  const message = html.match(/<main[^>]*>(.*?)<\/main>/s);
  return (message ? message[1] : html).replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 400);
}

function unescape(text) {
  return text.replaceAll("&quot;", '"').replaceAll("&#x27;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

function sp(command, job) {
  const out = execFileSync(python, ["saml_sp.py", command], { input: JSON.stringify(job), encoding: "utf8" });
  return JSON.parse(out);
}

// One SP-initiated sign-on by a Python library; returns what the library read.
async function pythonSignOn(lib, binding, spConfig, extra = {}, browser = jar) {
  const job = { lib, binding, sp: spConfig, idpMetadata, relayState: "r-123", ...extra };
  const request = sp("request", job);
  const start = request.url ? { url: request.url } : { action: request.action, form: request.fields };
  const answer = await browse(start, browser);
  assert.ok(answer.fields, `Tessera answered with a form: ${answer.status} ${refusal(answer)}`);
  assert.equal(answer.action, spConfig.acs, "the Response goes to the registered consumer service");
  assert.equal(answer.fields.RelayState, "r-123", "RelayState comes back as sent");
  return sp("validate", { ...job, response: answer.fields.SAMLResponse, requestId: request.requestId });
}

function expectUser(read) {
  assert.ok(read.nameId && read.nameId.length >= 20, `a pairwise persistent NameID: ${read.nameId}`);
  assert.equal(read.nameIdFormat, "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
  assert.deepEqual(read.attributes.email, ["saml.user@tessera.local"]);
  assert.deepEqual(read.attributes.groups, ["SAML Readers"]);
  assert.deepEqual(read.attributes.short, ["SAML.USER"]);
}

// --- pysaml2 -------------------------------------------------------------------

const pyKeys = keyPair("pysaml2 SP");
const pySp = { entityId: "https://pysaml2.example/sp", acs: "http://localhost:9/pysaml2/acs", slo: "http://localhost:9/pysaml2/slo", key: pyKeys.key, cert: pyKeys.cert };
const pyApp = await samlApp("pysaml2 SP", {
  entityId: pySp.entityId,
  consumerServices: [{ url: pySp.acs, index: 0, isDefault: true }],
  logoutUrl: pySp.slo,
  certificates: [{ use: "signing", certificate: pyKeys.der }],
  requireSignedRequests: true,
  attributes,
});

let pyNameId;
await check("pysaml2RedirectBindingWithSignedRequest", async () => {
  const read = await pythonSignOn("pysaml2", "redirect", pySp);
  expectUser(read);
  pyNameId = read.nameId;
});

await check("pysaml2PostBindingWithSignedRequest", async () => {
  const read = await pythonSignOn("pysaml2", "post", pySp);
  expectUser(read);
  assert.equal(read.nameId, pyNameId, "the persistent NameID is stable");
});

await check("pysaml2IdpInitiated", async () => {
  const answer = await browse({ url: `${base}/saml2/apps/${pyApp.appId}/sso` });
  assert.ok(answer.fields, "an IdP-initiated Response is posted");
  const read = sp("validate", { lib: "pysaml2", sp: pySp, idpMetadata, unsolicited: true, response: answer.fields.SAMLResponse });
  assert.equal(read.nameId, pyNameId);
});

await check("applicationMetadataSaysRequestsMustBeSigned", async () => {
  const response = await fetch(`${base}/saml2/apps/${pyApp.appId}/metadata`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/samlmetadata+xml");
  const xml = await response.text();
  assert.ok(xml.includes('WantAuthnRequestsSigned="true"'), xml.slice(0, 400));
  assert.ok(idpMetadata.includes('WantAuthnRequestsSigned="false"'));
  const unknown = await fetch(`${base}/saml2/apps/00000000-0000-0000-0000-000000000001/metadata`);
  assert.equal(unknown.status, 404);
});

// --- python3-saml (OneLogin) ------------------------------------------------------

const olKeys = keyPair("python3-saml SP");
const olSp = { entityId: "https://onelogin.example/sp", acs: "http://localhost:9/onelogin/acs", slo: "http://localhost:9/onelogin/slo", key: olKeys.key, cert: olKeys.cert, wantResponseSigned: true };
await samlApp("python3-saml SP", {
  entityId: olSp.entityId,
  consumerServices: [{ url: olSp.acs, index: 1, isDefault: true }],
  logoutUrl: olSp.slo,
  certificates: [{ use: "both", certificate: olKeys.der }],
  requireSignedRequests: true,
  signing: { assertion: true, response: true },
  attributes,
});

let olNameId;
await check("python3SamlRedirectBindingWithSignedRequest", async () => {
  const read = await pythonSignOn("onelogin", "redirect", olSp);
  expectUser(read);
  olNameId = read.nameId;
  assert.notEqual(olNameId, pyNameId, "persistent NameIDs differ per application");
});

await check("python3SamlPostBindingWithSignedRequest", async () => {
  const read = await pythonSignOn("onelogin", "post", olSp);
  expectUser(read);
});

// Encrypted assertions (AES-256-GCM, RSA-OAEP) to an SP that wants them.
const encKeys = keyPair("python3-saml encrypting SP");
const encSp = { entityId: "https://encrypted.example/sp", acs: "http://localhost:9/encrypted/acs", encryptionKey: encKeys.key, encryptionCert: encKeys.cert };
await samlApp("Encrypted SP", {
  entityId: encSp.entityId,
  consumerServices: [{ url: encSp.acs, index: 0 }],
  certificates: [{ use: "encryption", certificate: encKeys.der }],
  encryptAssertions: true,
  attributes,
});
await check("python3SamlEncryptedAssertion", async () => {
  const read = await pythonSignOn("onelogin", "redirect", encSp);
  expectUser(read);
});
await check("pysaml2EncryptedAssertion", async () => {
  const read = await pythonSignOn("pysaml2", "redirect", encSp);
  expectUser(read);
});

// --- @node-saml/node-saml ------------------------------------------------------------

const nodeKeys = keyPair("node-saml SP");
const nodeSp = { entityId: "https://node-saml.example/sp", acs: "http://localhost:9/node/acs", slo: "http://localhost:9/node/slo" };
const nodeApp = await samlApp("node-saml SP", {
  entityId: nodeSp.entityId,
  consumerServices: [{ url: nodeSp.acs, index: 0 }],
  certificates: [{ use: "signing", certificate: nodeKeys.der }],
  logoutUrl: nodeSp.slo,
  signing: { assertion: true, response: true },
  attributes,
});
function nodeSaml(extra = {}) {
  return new SAML({
    callbackUrl: nodeSp.acs,
    entryPoint: `${base}/saml2/sso`,
    logoutUrl: `${base}/saml2/slo`,
    idpIssuer: idpMetadata.match(/entityID="([^"]+)"/)[1],
    issuer: nodeSp.entityId,
    audience: nodeSp.entityId,
    idpCert: idpCert,
    identifierFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    signatureAlgorithm: "sha256",
    digestAlgorithm: "sha256",
    privateKey: nodeKeys.key,
    validateInResponseTo: "always",
    disableRequestedAuthnContext: true,
    ...extra,
  });
}
async function nodeSignOn(saml, binding, browser = jar) {
  let start;
  if (binding === "redirect") {
    start = { url: await saml.getAuthorizeUrlAsync("r-123", undefined, {}) };
  } else {
    const html = await saml.getAuthorizeFormAsync("r-123", undefined, {});
    const action = html.match(/action="([^"]+)"/)[1];
    const form = Object.fromEntries([...html.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], unescape(m[2])]));
    start = { action: unescape(action), form };
  }
  const answer = await browse(start, browser);
  assert.ok(answer.fields, `Tessera answered with a form: ${answer.status} ${refusal(answer)}`);
  assert.equal(answer.fields.RelayState, "r-123");
  const { profile } = await saml.validatePostResponseAsync(answer.fields);
  return profile;
}
for (const binding of ["redirect", "post"]) {
  await check(`nodeSaml${binding === "redirect" ? "Redirect" : "Post"}Binding`, async () => {
    const profile = await nodeSignOn(nodeSaml({ authnRequestBinding: binding === "post" ? "HTTP-POST" : undefined }), binding);
    assert.ok(profile.nameID);
    assert.equal(profile.email, "saml.user@tessera.local");
  });
}
// node-saml decrypting an encrypted assertion (AES-256-GCM, RSA-OAEP).
const nodeEncKeys = keyPair("node-saml encrypting SP");
const nodeEncSp = { entityId: "https://node-encrypted.example/sp", acs: "http://localhost:9/node-encrypted/acs" };
await samlApp("node-saml encrypting SP", {
  entityId: nodeEncSp.entityId,
  consumerServices: [{ url: nodeEncSp.acs, index: 0 }],
  certificates: [{ use: "encryption", certificate: nodeEncKeys.der }],
  encryptAssertions: true,
  signing: { assertion: true, response: true },
  attributes,
});
await check("nodeSamlEncryptedAssertion", async () => {
  const saml = nodeSaml({
    issuer: nodeEncSp.entityId,
    audience: nodeEncSp.entityId,
    callbackUrl: nodeEncSp.acs,
    privateKey: undefined,
    decryptionPvk: nodeEncKeys.key,
  });
  const url = await saml.getAuthorizeUrlAsync("r-123", undefined, {});
  const answer = await browse({ url });
  assert.ok(answer.fields, `Tessera answered with a form: ${answer.status} ${refusal(answer)}`);
  const xml = Buffer.from(answer.fields.SAMLResponse, "base64").toString();
  assert.ok(xml.includes("EncryptedAssertion") && !xml.includes("saml:Assertion "), "the assertion is encrypted");
  const { profile } = await saml.validatePostResponseAsync(answer.fields);
  assert.equal(profile.email, "saml.user@tessera.local");
  assert.deepEqual(profile.short, "SAML.USER");
});

await check("nodeSamlIdpInitiated", async () => {
  const answer = await browse({ url: `${base}/saml2/apps/${nodeApp.appId}/sso` });
  const { profile } = await nodeSaml({ validateInResponseTo: "never" }).validatePostResponseAsync(answer.fields);
  assert.equal(profile.email, "saml.user@tessera.local");
});

// --- Single Logout --------------------------------------------------------------------
//
// One browser signs in to the three libraries' SPs; a logout started by one SP (or
// at Tessera) ends the Tessera session and goes through the browser to each other
// SP's logout service, where the library checks Tessera's signed LogoutRequest and
// answers; the SP that started gets Tessera's signed LogoutResponse, which its
// library checks (InResponseTo included).

const nodeLogout = nodeSaml();
async function signInEverywhere(browser) {
  const pysaml2 = await pythonSignOn("pysaml2", "redirect", pySp, {}, browser);
  const onelogin = await pythonSignOn("onelogin", "redirect", olSp, {}, browser);
  const node = await nodeSignOn(nodeLogout, "redirect", browser);
  const indexes = new Set([pysaml2.sessionIndex, onelogin.sessionIndex, node.sessionIndex]);
  assert.equal(indexes.size, 3, "one SessionIndex per application: they cannot correlate the user by it");
  return { pysaml2, onelogin, node };
}

function nameJob(read) {
  return {
    nameId: read.nameId,
    nameIdFormat: read.nameIdFormat,
    nameQualifier: read.nameQualifier,
    spNameQualifier: read.spNameQualifier,
    sessionIndex: read.sessionIndex,
  };
}

// Where a response sends the browser: {url}, {action, fields}, or null (a page).
async function destination(response, from) {
  if (response.status === 303 || response.status === 302) {
    return { url: new URL(response.headers.get("location"), from).href };
  }
  const html = await response.text();
  const form = html.match(/<form method="post" action="([^"]+)" data-autosubmit>(.*?)<\/form>/s);
  if (form) {
    const fields = Object.fromEntries([...form[2].matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], unescape(m[2])]));
    return { action: unescape(form[1]), fields };
  }
  const refresh = html.match(/<meta http-equiv="refresh" content="0;url=([^"]*)"/);
  if (refresh) return { url: new URL(unescape(refresh[1]), from).href };
  return { page: html, status: response.status };
}

// Carries a logout through the browser: Tessera's answers are followed, each SP's
// logout service is played by its library (`services`: {prefix: handler}), until
// a handler says it is done or Tessera shows a page. Returns {done, visited} or
// {page, status, visited}.
async function walkLogout(start, browser, services) {
  let step = start;
  const visited = [];
  for (let hop = 0; hop < 24; hop++) {
    const at = step.url ?? step.action;
    if (!at.startsWith(base)) {
      const [prefix, handler] = Object.entries(services).find(([p]) => at.startsWith(p)) ?? [];
      assert.ok(handler, `the browser was sent to ${at}`);
      visited.push(prefix);
      const next = await handler(step);
      if (next.done) return { done: next.done, visited };
      step = next;
      continue;
    }
    // A form an SP posts to Tessera is cross-site: the Lax session cookie stays
    // behind (Tessera's own forms are same-site).
    const response = step.fields
      ? await fetch(at, {
          method: "POST",
          redirect: "manual",
          headers: { cookie: step.sameSite ? browser.header() : "", "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(step.fields),
        })
      : await fetch(at, { redirect: "manual", headers: { cookie: browser.header() } });
    browser.take(response);
    const next = await destination(response, at);
    if (next.page !== undefined) return { ...next, visited };
    step = next;
  }
  throw new Error("too many hops");
}

// The logout services of the three SPs. `started` names the SP whose request is
// outstanding ({lib, requestId}); its service checks the final LogoutResponse.
function services(reads, started) {
  const python = (lib, spConfig, read) => async (step) => {
    const message = step.fields ?? Object.fromEntries(new URL(step.url).searchParams);
    const job = { lib, sp: spConfig, idpMetadata, ...nameJob(read), ...(step.fields ? { form: step.fields } : { url: step.url }) };
    if (message.SAMLResponse) {
      assert.equal(started.lib, lib, `${lib} got a LogoutResponse it did not ask for`);
      sp("slo", { ...job, requestId: started.requestId });
      return { done: lib };
    }
    const answer = sp("slo", job);
    return { url: answer.url };
  };
  return {
    [pySp.slo]: python("pysaml2", pySp, reads.pysaml2),
    [olSp.slo]: python("onelogin", olSp, reads.onelogin),
    [nodeSp.slo]: async (step) => {
      const url = new URL(step.url);
      const query = Object.fromEntries(url.searchParams);
      const read = await nodeLogout.validateRedirectAsync(query, url.search.slice(1));
      if (query.SAMLResponse) {
        assert.equal(started.lib, "node", "node-saml got a LogoutResponse it did not ask for");
        assert.equal(read.loggedOut, true);
        return { done: "node" };
      }
      assert.equal(read.profile.nameID, reads.node.nameID, "the LogoutRequest names node-saml's user");
      assert.equal(read.profile.sessionIndex, reads.node.sessionIndex);
      return { url: await nodeLogout.getLogoutResponseUrlAsync(read.profile, query.RelayState, {}, true) };
    },
  };
}

async function signedIn(browser) {
  const response = await fetch(`${base}/myaccount`, { redirect: "manual", headers: { cookie: browser.header() } });
  return response.status === 200;
}

await check("singleLogoutStartedByPython3SamlReachesTheOthers", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  const request = sp("logout", { lib: "onelogin", sp: olSp, idpMetadata, relayState: "http://localhost:9/after", ...nameJob(reads.onelogin) });
  const result = await walkLogout({ url: request.url }, browser, services(reads, { lib: "onelogin", requestId: request.requestId }));
  assert.equal(result.done, "onelogin", `the logout came back to python3-saml: ${JSON.stringify(result).slice(0, 400)}`);
  assert.deepEqual([...result.visited].sort(), [nodeSp.slo, olSp.slo, pySp.slo].sort());
  assert.equal(await signedIn(browser), false, "the Tessera session ended");
});

await check("singleLogoutStartedByPysaml2OverPost", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  const request = sp("logout", { lib: "pysaml2", binding: "post", sp: pySp, idpMetadata, ...nameJob(reads.pysaml2) });
  const result = await walkLogout({ action: request.action, fields: request.fields }, browser, services(reads, { lib: "pysaml2", requestId: request.requestId }));
  assert.equal(result.done, "pysaml2", `the logout came back to pysaml2: ${JSON.stringify(result).slice(0, 400)}`);
  assert.deepEqual([...result.visited].sort(), [nodeSp.slo, olSp.slo, pySp.slo].sort());
  assert.equal(await signedIn(browser), false, "the Tessera session ended");
});

await check("singleLogoutStartedByNodeSaml", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  const url = await nodeLogout.getLogoutUrlAsync(reads.node, "r-node", {});
  // node-saml keeps its request's ID and checks InResponseTo itself.
  const result = await walkLogout({ url }, browser, services(reads, { lib: "node" }));
  assert.equal(result.done, "node", `the logout came back to node-saml: ${JSON.stringify(result).slice(0, 400)}`);
  assert.equal(await signedIn(browser), false);
});

await check("signingOutAtTesseraLogsOutOfTheSamlApplications", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  const page = await fetch(`${base}/myaccount`, { headers: { cookie: browser.header() } });
  const csrf = csrfOf(await page.text());
  const result = await walkLogout({ action: `${base}/signout`, fields: { csrf }, sameSite: true }, browser, services(reads, { lib: "none" }));
  assert.ok(result.page !== undefined && result.page.includes("Sign in"), `the chain ends at the sign-in page: ${JSON.stringify(result).slice(0, 300)}`);
  assert.deepEqual([...result.visited].sort(), [nodeSp.slo, olSp.slo, pySp.slo].sort());
  assert.equal(await signedIn(browser), false);
});

await check("unsignedLogoutRequestRefusedWhereTheApplicationHasACertificate", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  const request = sp("logout", { lib: "pysaml2", binding: "redirect", sp: { ...pySp, key: undefined, cert: undefined }, idpMetadata, ...nameJob(reads.pysaml2) });
  const response = await fetch(request.url, { redirect: "manual", headers: { cookie: browser.header() } });
  assert.equal(response.status, 400);
  assert.ok((await response.text()).includes("must be signed"));
  assert.equal(await signedIn(browser), true, "nothing ended");
});

await check("logoutRequestForAnotherSessionEndsNothing", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  const url = await nodeLogout.getLogoutUrlAsync({ ...reads.node, sessionIndex: "not-this-session" }, "r-node", {});
  const response = await fetch(url, { redirect: "manual", headers: { cookie: browser.header() } });
  assert.equal(response.status, 303, "answered: that session is not here");
  assert.ok(response.headers.get("location").startsWith(nodeSp.slo));
  assert.equal(await signedIn(browser), true, "the browser's own session goes on");
  const again = await fetch(url, { redirect: "manual", headers: { cookie: browser.header() } });
  assert.equal(again.status, 400, "a LogoutRequest is answered once");
});

await check("logoutRequestFromAnApplicationWithoutASigningCertificateRefused", async () => {
  const browser = cookieJar();
  await signInEverywhere(browser);
  const request = sp("logout", { lib: "onelogin", sp: { ...encSp, slo: "http://localhost:9/encrypted/slo" }, idpMetadata, nameId: "x", sessionIndex: "y" });
  const response = await fetch(request.url, { redirect: "manual", headers: { cookie: browser.header() } });
  assert.equal(response.status, 400);
  assert.ok((await response.text()).includes("no signing certificate"));
  assert.equal(await signedIn(browser), true);
});

await check("singleLogoutReachesApplicationsSignedInBeforeASignInAgain", async () => {
  const browser = cookieJar();
  const reads = await signInEverywhere(browser);
  // ForceAuthn: the user signs in again, and Tessera's session is a new one.
  const again = await pythonSignOn("onelogin", "redirect", olSp, { forceAuthn: true }, browser);
  assert.equal(again.sessionIndex, reads.onelogin.sessionIndex, "the application's SessionIndex stays");
  const request = sp("logout", { lib: "pysaml2", binding: "redirect", sp: pySp, idpMetadata, ...nameJob(reads.pysaml2) });
  const result = await walkLogout({ url: request.url }, browser, services(reads, { lib: "pysaml2", requestId: request.requestId }));
  assert.equal(result.done, "pysaml2", `the logout came back to pysaml2: ${JSON.stringify(result).slice(0, 400)}`);
  assert.deepEqual([...result.visited].sort(), [nodeSp.slo, olSp.slo, pySp.slo].sort());
  assert.equal(await signedIn(browser), false, "the session signed in again ended");
});

// --- Configuration from metadata by URL ------------------------------------------------

await check("configurationFromMetadataByUrl", async () => {
  const { createServer } = await import("node:http");
  const entity = "https://by-url.example/sp";
  const served = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${entity}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://by-url.example/soap"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://by-url.example/slo"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://by-url.example/acs" index="3"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>`;
  const server = createServer((req, res) => {
    if (req.url === "/metadata") res.writeHead(200, { "content-type": "application/samlmetadata+xml" }).end(served);
    else if (req.url === "/moved") res.writeHead(302, { location: "/metadata" }).end();
    else if (req.url === "/internal") res.writeHead(200, { "content-type": "text/xml" }).end("<status secret=\"s3cr3t-token\">internal &undeclared;</status>");
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const at = `http://127.0.0.1:${server.address().port}`;
  try {
    const app = await api("POST", "/applications", { displayName: "By URL" });
    const post = (body) => fetch(`${base}/api/v1/applications/${app.id}/saml/metadata`, {
      method: "POST",
      headers: { authorization: `Bearer ${process.env.TESSERA_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const configured = await post({ metadataUrl: `${at}/metadata` });
    assert.equal(configured.status, 200, await configured.clone().text());
    const settings = await configured.json();
    assert.equal(settings.entityId, entity);
    assert.equal(settings.logoutUrl, "https://by-url.example/slo", "the redirect-binding logout service, not SOAP");
    assert.equal(settings.logoutBinding, "redirect");
    assert.equal(settings.consumerServices[0].index, 3);
    for (const [body, why] of [
      [{ metadataUrl: "http://example.com/metadata" }, "https only (http to loopback)"],
      [{ metadataUrl: `${at}/moved` }, "a redirect is not followed"],
      [{ metadataUrl: `${at}/missing` }, "a 404 is refused"],
      [{ metadata: served, metadataUrl: `${at}/metadata` }, "one source"],
      [{ metadataUrl: `${at}/internal` }, "not metadata"],
    ]) {
      const refused = await post(body);
      const text = await refused.text();
      assert.equal(refused.status, 400, `${why}: ${text}`);
      // The correlation id is random (it may hold "404"): only what is said counts.
      const said = text.replace(/"correlationId":"[^"]*"/, "");
      assert.ok(!/s3cr3t|undeclared|404|302/.test(said), `${why}: nothing of what answered is told: ${text}`);
    }
  } finally {
    server.close();
  }
});

// --- What Tessera refuses ------------------------------------------------------------

await check("unsignedRequestRefusedWhereSigningIsRequired", async () => {
  const request = sp("request", { lib: "pysaml2", binding: "redirect", sp: { ...pySp, key: undefined, cert: undefined }, idpMetadata });
  const answer = await browse({ url: request.url });
  assert.equal(answer.status, 400);
  assert.ok(answer.html.includes("must be signed"), answer.html.slice(0, 500));
});

await check("replayedRequestRefused", async () => {
  const request = sp("request", { lib: "pysaml2", binding: "redirect", sp: pySp, idpMetadata });
  const first = await browse({ url: request.url });
  assert.ok(first.fields);
  const again = await browse({ url: request.url });
  assert.equal(again.status, 400);
  assert.ok(again.html.includes("already answered"));
});

await check("unregisteredConsumerServiceRefused", async () => {
  const request = sp("request", { lib: "pysaml2", binding: "redirect", sp: { ...pySp, acs: "http://localhost:9/elsewhere" }, idpMetadata });
  const answer = await browse({ url: request.url });
  assert.equal(answer.status, 400);
  assert.ok(answer.html.includes("did not register"));
});

await check("isPassiveWithoutSessionAnswersNoPassive", async () => {
  const saml = nodeSaml({ passive: true });
  const fresh = cookieJar();
  const url = await saml.getAuthorizeUrlAsync("r-123", undefined, {});
  const answer = await browse({ url }, fresh);
  assert.ok(answer.fields, "a Response, not a sign-in page");
  const xml = Buffer.from(answer.fields.SAMLResponse, "base64").toString();
  assert.ok(xml.includes("urn:oasis:names:tc:SAML:2.0:status:NoPassive"), xml);
});

await check("forceAuthnSignsInAgain", async () => {
  const request = sp("request", { lib: "pysaml2", binding: "redirect", sp: pySp, idpMetadata, forceAuthn: true });
  const response = await fetch(request.url, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(response.status, 303);
  assert.ok(response.headers.get("location").includes("/signin"), "a signed-in user is asked to sign in again");
});

if (failures()) process.exit(1);
