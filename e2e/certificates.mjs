// Certificate sign-in in Chromium over mutual TLS, against a running
// `tessera serve` with `tls.client_certificates = true`. The test PKI comes from the
// Rust test (crates/tessera/tests/browser.rs) as PEM files in TESSERA_PKI:
//   root.pem, issuing.pem, issuing-crl.pem, stranger-root.pem (not trusted),
//   cac.pem/cac-key.pem (CAC policy OID), revoked.pem/revoked-key.pem,
//   stranger.pem/stranger-key.pem, plain.pem/plain-key.pem (no policy OID).
// Playwright presents the client certificate (clientCertificates).
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const base = process.env.TESSERA_URL;
const token = process.env.TESSERA_TOKEN;
const pki = process.env.TESSERA_PKI;
assert.ok(base && token && pki, "TESSERA_URL, TESSERA_TOKEN and TESSERA_PKI are required");
const file = (name) => readFileSync(join(pki, name), "utf8");

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

const CAC_POLICY = "2.16.840.1.101.2.1.11.42";

async function setUp() {
  await api("POST", "/certificateAuthorities", { certificate: file("root.pem"), isRootAuthority: true });
  const issuing = await api("POST", "/certificateAuthorities", {
    certificate: file("issuing.pem"), isRootAuthority: false, requireRevocationData: true });
  await api("PUT", `/certificateAuthorities/${issuing.id}/revocationList`, { crl: file("issuing-crl.pem") });
  const policy = await api("GET", "/policies/authenticationMethodsPolicy");
  policy.x509Certificate.state = "enabled";
  policy.x509Certificate.settings.authenticationModeConfiguration.rules = [{
    x509CertificateRuleType: "policyOID", identifier: CAC_POLICY,
    x509CertificateAuthenticationMode: "x509CertificateMultiFactor" }];
  await api("PUT", "/policies/authenticationMethodsPolicy", policy);
  // Certificates of the second issuing CA are checked with OCSP only.
  await api("POST", "/certificateAuthorities", {
    certificate: file("ocsp-issuing.pem"), isRootAuthority: false, requireRevocationData: true,
    ocspResponder: process.env.OCSP_URL });
  const user = await api("POST", "/users", { userPrincipalName: "cac.user@contoso.com", displayName: "CAC User" });
  return user.id;
}

async function signInWith(browser, cert) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: base, certPath: join(pki, `${cert}.pem`), keyPath: join(pki, `${cert}-key.pem`) }],
  });
  const page = await context.newPage();
  await page.goto(`${base}/signin`);
  await page.click("#certificate-signin");
  await page.waitForLoadState("load");
  const result = { url: page.url(), text: await page.textContent("main") };
  await context.close();
  return result;
}

async function lastFailure(userFilter) {
  const log = await api("GET", `/auditLogs/signIns?result=failure${userFilter}`);
  return log.value[0];
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
let failed = 0;
async function check(name, body) {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (error) {
    failed++;
    console.log(`FAILED ${name}: ${error.stack || error}`);
  }
}

const userId = await setUp();

await check("cacCertificateReachesPhishingResistantMfa", async () => {
  const result = await signInWith(browser, "cac");
  assert.equal(result.url, `${base}/security-info`, result.text);
  assert.match(result.text, /cac\.user@contoso\.com/);
  const log = await api("GET", `/auditLogs/signIns?userId=${userId}&result=success`);
  assert.deepEqual(log.value[0].authenticationMethods, ["x509CertificateMultiFactor"]);
  assert.equal(log.value[0].authenticationRequirement, "multiFactorAuthentication");
  assert.ok(log.value[0].satisfiedStrengths.includes("00000000-0000-0000-0000-000000000004"));
});

await check("revokedCertificateRefused", async () => {
  const result = await signInWith(browser, "revoked");
  assert.equal(result.url, `${base}/signin/certificate`);
  assert.match(result.text, /could not be used/);
  assert.equal((await lastFailure("")).failureCode, "certificate_revoked");
});

await check("untrustedCertificateRefused", async () => {
  const result = await signInWith(browser, "stranger");
  assert.match(result.text, /could not be used/);
  assert.equal((await lastFailure("")).failureCode, "certificate_untrusted");
});

await check("certificateWithoutPolicyIsSingleFactor", async () => {
  const result = await signInWith(browser, "plain");
  assert.equal(result.url, `${base}/security-info`, result.text);
  const log = await api("GET", `/auditLogs/signIns?userId=${userId}&result=success`);
  assert.deepEqual(log.value[0].authenticationMethods, ["x509CertificateSingleFactor"]);
  assert.equal(log.value[0].authenticationRequirement, "singleFactorAuthentication");
});

await check("ocspGoodCertificateSignsIn", async () => {
  const result = await signInWith(browser, "ocsp-good");
  assert.equal(result.url, `${base}/security-info`, result.text);
});

await check("ocspRevokedCertificateRefused", async () => {
  const result = await signInWith(browser, "ocsp-revoked");
  assert.match(result.text, /could not be used/);
  assert.equal((await lastFailure("")).failureCode, "certificate_revoked");
});

await browser.close();
process.exit(failed ? 1 : 0);
