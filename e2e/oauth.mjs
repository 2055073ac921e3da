// OAuth interop with libraries nobody here wrote: openid-client (certified relying-
// party library) obtains client-credentials tokens from a running `tessera serve`;
// jose verifies them against the published JWKS. Environment: TESSERA_URL,
// TESSERA_TOKEN (an administrator's personal access token).
import * as client from "openid-client";
import * as jose from "jose";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:http";
import { cookieJar, nextOf, csrfOf, signInOnPage } from "./lib.mjs";

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

// Security defaults (multifactor authentication for management and for
// administrators) are Conditional Access's subject, tested in
// conditional-access.mjs; these scenarios are about the protocol, with
// password-only users.
await api("PATCH", "/policies/identitySecurityDefaultsEnforcementPolicy", { isEnabled: false });

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

const app = await api("POST", "/applications", { displayName: "Interop client" });
await api("POST", "/servicePrincipals", { appId: app.appId });
const secret = await api("POST", `/applications/${app.id}/passwordCredentials`, {});
const resource = await api("POST", "/applications", { displayName: "Interop API" });
const metadata = { issuer: base, token_endpoint: `${base}/oauth2/token` };
const options = { execute: [client.allowInsecureRequests] };

for (const [name, auth] of [
  ["clientCredentialsWithBasic", client.ClientSecretBasic(secret.secretText)],
  ["clientCredentialsWithPost", client.ClientSecretPost(secret.secretText)],
]) {
  await check(name, async () => {
    const config = new client.Configuration(metadata, app.appId, undefined, auth);
    client.allowInsecureRequests(config);
    const tokens = await client.clientCredentialsGrant(config, { scope: `api://${resource.appId}/.default` });
    assert.equal(tokens.token_type.toLowerCase(), "bearer");
    assert.equal(tokens.expires_in, 3600);
    const jwks = jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
      issuer: base,
      audience: resource.appId,
      typ: "at+jwt",
      algorithms: ["ES256"],
    });
    assert.equal(protectedHeader.alg, "ES256");
    assert.equal(payload.client_id, app.appId);
  });
}

await check("wrongSecretIsInvalidClient", async () => {
  const config = new client.Configuration(metadata, app.appId, undefined, client.ClientSecretBasic("wrong"));
  client.allowInsecureRequests(config);
  await assert.rejects(
    client.clientCredentialsGrant(config, { scope: `api://${resource.appId}/.default` }),
    // A 401 with a Basic challenge (RFC 6749 5.2), surfaced by openid-client as a
    // WWW-Authenticate challenge error, or as the invalid_client error itself.
    (error) => (error.name === "WWWAuthenticateChallengeError" && error.status === 401) || error.error === "invalid_client",
  );
});

// ---------------------------------------------------------------------------------
// Authorization code + PKCE, with a user who signs in through Tessera's pages. The
// "browser" below follows redirects and keeps cookies, as a browser would.

// Follows the authorization request through sign-in; returns the URL the browser
// is finally sent to (the client's redirect URI with the response).
// A consent page is answered with `consent.decision` ("allow" unless told) and its
// scopes are collected in `consent.seen`.
async function browse(jar, startUrl, redirectUri, user, consent = {}) {
  let url = startUrl;
  for (let hop = 0; hop < 12; hop++) {
    if (url.startsWith(redirectUri)) return url;
    const response = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
    jar.take(response);
    if (response.status === 303 || response.status === 302) {
      url = new URL(response.headers.get("location"), url).href;
      continue;
    }
    const html = await response.text();
    assert.equal(response.status, 200, `${url}: ${response.status} ${html.slice(0, 300)}`);
    if (html.includes('action="/oauth2/authorize/consent"')) {
      const scopes = [...html.matchAll(/<li><code>([^<]*)<\/code><\/li>/g)].map((m) => m[1]);
      (consent.seen ??= []).push(scopes);
      const answer = await fetch(`${base}/oauth2/authorize/consent`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie: jar.header(), "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          csrf: csrfOf(html),
          decision: consent.decision ?? "allow",
          request: html.match(/name="request" value="([^"]*)"/)[1],
        }),
      });
      jar.take(answer);
      url = await nextOf(answer, url);
      continue;
    }
    assert.ok(url.startsWith(`${base}/signin`), `unexpected page ${url}`);
    url = await signInOnPage(jar, html, user);
  }
  throw new Error("too many redirects");
}

const redirectUri = "http://localhost:9/callback";
const web = await api("POST", "/applications", {
  displayName: "Interop web app",
  web: { redirectUris: [redirectUri] },
  spa: { redirectUris: ["http://localhost:9/spa"] },
});
await api("POST", "/servicePrincipals", { appId: web.appId });
const webSecret = await api("POST", `/applications/${web.id}/passwordCredentials`, {});
const person = await api("POST", "/users", {
  userPrincipalName: "interop.user@tessera.local",
  displayName: "Interop User",
  givenName: "Interop",
  mail: "interop.user@tessera.local",
});
const reset = await api("POST", `/users/${person.id}/authentication/resetPassword`, {});
const user = { upn: person.userPrincipalName, password: reset.newPassword };

const webConfig = await client.discovery(new URL(base), web.appId, undefined, client.ClientSecretBasic(webSecret.secretText), {
  execute: [client.allowInsecureRequests],
});
// Verify ID token signatures against the JWKS too (openid-client trusts TLS by default).
client.enableNonRepudiationChecks(webConfig);

async function codeFlow(config, jar, extra = {}, redirect = redirectUri) {
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope: "openid profile email offline_access",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
    nonce,
    ...extra,
  });
  const callback = await browse(jar, url.href, redirect, user);
  return { callback: new URL(callback), verifier, state, nonce };
}

const jar = cookieJar();
let first;
await check("discoveryDocument", async () => {
  const metadata = webConfig.serverMetadata();
  assert.equal(metadata.issuer, base);
  assert.deepEqual(metadata.code_challenge_methods_supported, ["S256"]);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  const other = await fetch(`${base}/.well-known/oauth-authorization-server`).then((r) => r.json());
  assert.equal(other.issuer, base);
});

await check("authorizationCodeWithPkce", async () => {
  const flow = await codeFlow(webConfig, jar);
  assert.equal(flow.callback.searchParams.get("iss"), base, "RFC 9207 iss in the response");
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.sub, person.id);
  assert.equal(claims.aud, web.appId);
  assert.deepEqual(claims.amr, ["pwd"]);
  assert.equal(claims.acr, "urn:tessera:acr:sfa");
  assert.ok(claims.auth_time > 0 && claims.sid, "auth_time and sid are present");
  assert.equal(claims.email, person.mail);
  assert.ok(tokens.refresh_token.startsWith("tsr_rt_"));
  const info = await client.fetchUserInfo(webConfig, tokens.access_token, claims.sub);
  assert.equal(info.preferred_username, person.userPrincipalName);
  // A token for userinfo is not a token for the management API (audience).
  const api401 = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(api401.status, 401);
  first = { flow, tokens };
});

await check("reusedCodeIsRefusedAndRevokesItsTokens", async () => {
  await assert.rejects(
    client.authorizationCodeGrant(webConfig, first.flow.callback, {
      pkceCodeVerifier: first.flow.verifier,
      expectedState: first.flow.state,
      expectedNonce: first.flow.nonce,
    }),
    (error) => error.error === "invalid_grant",
  );
  // The refresh token the code led to is revoked with it (RFC 6749 4.1.2).
  await assert.rejects(client.refreshTokenGrant(webConfig, first.tokens.refresh_token), (error) => error.error === "invalid_grant");
});

await check("singleSignOnThenRefreshRotationAndReuseDetection", async () => {
  // The browser still has its session: no sign-in this time.
  const flow = await codeFlow(webConfig, jar);
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
  const rotated = await client.refreshTokenGrant(webConfig, tokens.refresh_token);
  assert.notEqual(rotated.refresh_token, tokens.refresh_token, "every refresh rotates the token");
  assert.equal(rotated.claims().sub, person.id);
  const again = await client.refreshTokenGrant(webConfig, rotated.refresh_token);
  // Presenting a rotated token again revokes the whole family, the newest included.
  await assert.rejects(client.refreshTokenGrant(webConfig, tokens.refresh_token), (error) => error.error === "invalid_grant");
  await assert.rejects(client.refreshTokenGrant(webConfig, again.refresh_token), (error) => error.error === "invalid_grant");
  // Two holders of one token: a token anomaly of the user. Medium: from the
  // network of the last refresh, but a token two rotations old, so no retry
  // (from another network it is high: the service tests say so).
  const replays = (await api("GET", `/identityProtection/riskDetections?userId=${person.id}&riskEventType=anomalousToken`)).value
    .filter((d) => d.additionalInfo.token === "refreshToken" && d.additionalInfo.reason === "replayed");
  assert.equal(replays.length, 1, JSON.stringify(replays));
  assert.equal(replays[0].riskLevel, "medium");
});

await check("introspectionAndRevocation", async () => {
  const flow = await codeFlow(webConfig, jar);
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
  const access = await client.tokenIntrospection(webConfig, tokens.access_token);
  assert.equal(access.active, true);
  assert.equal(access.sub, person.id);
  assert.equal(access.client_id, web.appId);
  const refresh = await client.tokenIntrospection(webConfig, tokens.refresh_token);
  assert.equal(refresh.active, true);
  await client.tokenRevocation(webConfig, tokens.refresh_token);
  assert.equal((await client.tokenIntrospection(webConfig, tokens.refresh_token)).active, false);
  await client.tokenRevocation(webConfig, tokens.access_token);
  assert.equal((await client.tokenIntrospection(webConfig, tokens.access_token)).active, false);
  await assert.rejects(client.fetchUserInfo(webConfig, tokens.access_token, person.id));
  assert.equal((await client.tokenIntrospection(webConfig, "not-a-token")).active, false);
});

await check("publicClientCodeFlow", async () => {
  const spa = await client.discovery(new URL(base), web.appId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const flow = await codeFlow(spa, jar, {}, "http://localhost:9/spa");
  const tokens = await client.authorizationCodeGrant(spa, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
  assert.equal(tokens.claims().aud, web.appId);
  // A web redirect URI's code needs the client's secret.
  const webFlow = await codeFlow(webConfig, jar);
  await assert.rejects(
    client.authorizationCodeGrant(spa, webFlow.callback, { pkceCodeVerifier: webFlow.verifier, expectedState: webFlow.state, expectedNonce: webFlow.nonce }),
    (error) => error.error === "invalid_client",
  );
});

await check("wrongVerifierAndWrongRedirectUri", async () => {
  const flow = await codeFlow(webConfig, jar);
  await assert.rejects(
    client.authorizationCodeGrant(webConfig, flow.callback, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    }),
    (error) => error.error === "invalid_grant",
  );
  // An unregistered redirect URI is never redirected to: the user sees an error page.
  const url = client.buildAuthorizationUrl(webConfig, {
    redirect_uri: "http://localhost:9/evil",
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: "S256",
  });
  const response = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get("location"), null);
});

await check("mixUpDefenceRejectsAForeignIssuer", async () => {
  const flow = await codeFlow(webConfig, jar);
  const forged = new URL(flow.callback);
  forged.searchParams.set("iss", "https://attacker.example");
  await assert.rejects(
    client.authorizationCodeGrant(webConfig, forged, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    }),
  );
});

await check("promptNoneWithoutSessionIsLoginRequired", async () => {
  const url = client.buildAuthorizationUrl(webConfig, {
    redirect_uri: redirectUri,
    scope: "openid",
    prompt: "none",
    state: "s1",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: "S256",
  });
  const response = await fetch(url, { redirect: "manual" });
  assert.equal(response.status, 303);
  const location = new URL(response.headers.get("location"));
  assert.equal(location.searchParams.get("error"), "login_required");
  assert.equal(location.searchParams.get("state"), "s1");
  assert.equal(location.searchParams.get("iss"), base);
});

await check("formPostResponseMode", async () => {
  const url = client.buildAuthorizationUrl(webConfig, {
    redirect_uri: redirectUri,
    scope: "openid",
    response_mode: "form_post",
    state: "s2",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: "S256",
  });
  const response = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(response.status, 200);
  const html = await response.text();
  assert.match(html, /<form method="post" action="http:\/\/localhost:9\/callback"/);
  assert.match(html, /name="code" value="[^"]+"/);
  assert.match(html, /name="iss" value="/);
  assert.match(response.headers.get("content-security-policy"), /form-action http:\/\/localhost:9/);
});

// ---------------------------------------------------------------------------------
// private_key_jwt (RFC 7523) with a certificate registered on the application.

const pki = mkdtempSync(join(tmpdir(), "tessera-interop-"));
execFileSync("openssl", [
  "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
  "-keyout", join(pki, "key.pem"), "-out", join(pki, "cert.pem"), "-days", "2", "-subj", "/CN=interop workload",
], { stdio: "ignore" });
const workload = await api("POST", "/applications", { displayName: "Interop workload (certificate)" });
const workloadPrincipal = await api("POST", "/servicePrincipals", { appId: workload.appId });
const keyCredential = await api("POST", `/applications/${workload.id}/keyCredentials`, {
  key: readFileSync(join(pki, "cert.pem"), "utf8"),
});
const workloadKey = await jose.importPKCS8(readFileSync(join(pki, "key.pem"), "utf8"), "ES256");
const resourceScope = `api://${resource.appId}/.default`;

async function assertionRequest(claims) {
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new jose.SignJWT({ jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: "ES256", kid: keyCredential.keyId })
    .setIssuer(workload.appId)
    .setSubject(workload.appId)
    .setAudience(claims.aud ?? base)
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 60)
    .sign(workloadKey);
  const send = () =>
    fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        scope: resourceScope,
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: assertion,
      }),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
  return send;
}

await check("clientCredentialsWithPrivateKeyJwt", async () => {
  const config = await client.discovery(new URL(base), workload.appId, undefined,
    client.PrivateKeyJwt({ key: workloadKey, kid: keyCredential.keyId }), { execute: [client.allowInsecureRequests] });
  const tokens = await client.clientCredentialsGrant(config, { scope: resourceScope });
  const jwks = jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));
  const { payload } = await jose.jwtVerify(tokens.access_token, jwks, { issuer: base, audience: resource.appId, typ: "at+jwt" });
  assert.equal(payload.client_id, workload.appId);
  // Without a kid, the registered certificates are tried.
  const noKid = await client.discovery(new URL(base), workload.appId, undefined,
    client.PrivateKeyJwt(workloadKey), { execute: [client.allowInsecureRequests] });
  await client.clientCredentialsGrant(noKid, { scope: resourceScope });
});

await check("replayedExpiredOrForeignAssertionsAreRefused", async () => {
  const once = await assertionRequest({});
  assert.equal((await once()).status, 200);
  const replay = await once();
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error, "invalid_client");
  // Whoever replays it holds a copy: a token anomaly of the workload.
  const anomalies = (await api("GET",
    `/identityProtection/servicePrincipalRiskDetections?servicePrincipalId=${workloadPrincipal.id}&riskEventType=anomalousToken`)).value;
  assert.equal(anomalies.length, 1, JSON.stringify(anomalies));
  assert.equal(anomalies[0].additionalInfo.token, "clientAssertion");
  assert.equal(anomalies[0].appId, workload.appId);
  assert.equal(anomalies[0].riskLevel, "medium");
  const now = Math.floor(Date.now() / 1000);
  const expired = await (await assertionRequest({ exp: now - 300 }))();
  assert.equal(expired.body.error, "invalid_client");
  const foreign = await (await assertionRequest({ aud: "https://another-issuer.example" }))();
  assert.equal(foreign.body.error, "invalid_client");
  const { privateKey } = await jose.generateKeyPair("ES256");
  const unregistered = await client.discovery(new URL(base), workload.appId, undefined,
    client.PrivateKeyJwt(privateKey), { execute: [client.allowInsecureRequests] });
  await assert.rejects(client.clientCredentialsGrant(unregistered, { scope: resourceScope }));
});

// ---------------------------------------------------------------------------------
// Pushed authorization requests (RFC 9126).

await check("pushedAuthorizationRequest", async () => {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(webConfig, {
    redirect_uri: redirectUri,
    scope: "openid profile",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  assert.ok(url.searchParams.get("request_uri").startsWith("urn:ietf:params:oauth:request_uri:"));
  assert.equal(url.searchParams.get("redirect_uri"), null, "only request_uri and client_id travel through the browser");
  const callback = await browse(jar, url.href, redirectUri, user);
  const tokens = await client.authorizationCodeGrant(webConfig, new URL(callback), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  assert.equal(tokens.claims().sub, person.id);
  // A request_uri is good once.
  const again = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(again.status, 400);
});

await check("applicationsCanRequirePar", async () => {
  const strict = await api("POST", "/applications", {
    displayName: "PAR-only app",
    web: { redirectUris: [redirectUri] },
    requirePushedAuthorizationRequests: true,
  });
  await api("POST", "/servicePrincipals", { appId: strict.appId });
  const url = new URL(`${base}/oauth2/authorize`);
  url.search = new URLSearchParams({
    client_id: strict.appId, redirect_uri: redirectUri, response_type: "code", scope: "openid", state: "p",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  }).toString();
  const response = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
  const location = new URL(response.headers.get("location"));
  assert.equal(location.searchParams.get("error"), "invalid_request");
  assert.equal(location.searchParams.get("state"), "p");
});

// ---------------------------------------------------------------------------------
// DPoP (RFC 9449): sender-constrained tokens.

await check("dpopBoundTokensAndReplayedProofs", async () => {
  const dpop = client.getDPoPHandle(webConfig, await client.randomDPoPKeyPair("ES256"));
  const flow = await codeFlow(webConfig, jar, { dpop_jkt: await dpop.calculateThumbprint() });
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  }, undefined, { DPoP: dpop });
  assert.equal(tokens.token_type, "dpop");
  const { payload } = await jose.jwtVerify(tokens.access_token, jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), { issuer: base });
  assert.equal(payload.cnf.jkt, await dpop.calculateThumbprint());
  const info = await client.fetchUserInfo(webConfig, tokens.access_token, person.id, { DPoP: dpop });
  assert.equal(info.sub, person.id);
  // A DPoP-bound token presented as a bearer token is refused.
  const asBearer = await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(asBearer.status, 401);
  // Whoever sends it so does not hold its key: Identity Protection records a
  // token anomaly for the user (once an hour, however often it is tried).
  await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const anomalies = (await api("GET", `/identityProtection/riskDetections?userId=${person.id}&riskEventType=anomalousToken`)).value
    .filter((d) => d.additionalInfo.token === "accessToken");
  assert.equal(anomalies.length, 1, JSON.stringify(anomalies));
  assert.equal(anomalies[0].additionalInfo.reason, "bindingMismatch");
  assert.equal(anomalies[0].additionalInfo.binding, "dpop");
  assert.equal(anomalies[0].riskLevel, "high");
  // So is a proof replayed: capture one proof and send it twice.
  const keys = await jose.generateKeyPair("ES256", { extractable: true });
  const jwk = await jose.exportJWK(keys.publicKey);
  const url = `${base}/oauth2/token`;
  const proof = await new jose.SignJWT({ htm: "POST", htu: url, jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
    .setIssuedAt()
    .sign(keys.privateKey);
  const send = () => fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", dpop: proof, authorization: `Basic ${Buffer.from(`${app.appId}:${encodeURIComponent(secret.secretText)}`).toString("base64")}` },
    body: new URLSearchParams({ grant_type: "client_credentials", scope: `api://${resource.appId}/.default` }),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const firstUse = await send();
  assert.equal(firstUse.status, 200);
  assert.equal(firstUse.body.token_type, "DPoP");
  const replayed = await send();
  assert.equal(replayed.status, 400);
  assert.equal(replayed.body.error, "invalid_dpop_proof");
  // A code bound to one key cannot be redeemed with another.
  const other = client.getDPoPHandle(webConfig, await client.randomDPoPKeyPair("ES256"));
  const bound = await codeFlow(webConfig, jar, { dpop_jkt: await dpop.calculateThumbprint() });
  await assert.rejects(client.authorizationCodeGrant(webConfig, bound.callback, {
    pkceCodeVerifier: bound.verifier, expectedState: bound.state, expectedNonce: bound.nonce,
  }, undefined, { DPoP: other }), (error) => error.error === "invalid_grant");
});

await check("publicClientRefreshTokensAreBoundToTheDpopKey", async () => {
  const spa = await client.discovery(new URL(base), web.appId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  const dpop = client.getDPoPHandle(spa, await client.randomDPoPKeyPair("ES256"));
  const flow = await codeFlow(spa, jar, {}, "http://localhost:9/spa");
  const tokens = await client.authorizationCodeGrant(spa, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  }, undefined, { DPoP: dpop });
  const thief = client.getDPoPHandle(spa, await client.randomDPoPKeyPair("ES256"));
  await assert.rejects(client.refreshTokenGrant(spa, tokens.refresh_token, undefined, { DPoP: thief }), (error) => error.error === "invalid_grant");
  const stolen = (await api("GET", `/identityProtection/riskDetections?userId=${person.id}&riskEventType=anomalousToken`)).value
    .filter((d) => d.additionalInfo.token === "refreshToken" && d.additionalInfo.reason === "bindingMismatch");
  assert.equal(stolen.length, 1, JSON.stringify(stolen));
  assert.equal(stolen[0].additionalInfo.binding, "dpop");
  assert.equal(stolen[0].userPrincipalName, person.userPrincipalName);
  await assert.rejects(client.refreshTokenGrant(spa, tokens.refresh_token), (error) => error.error === "invalid_grant");
  const rotated = await client.refreshTokenGrant(spa, tokens.refresh_token, undefined, { DPoP: dpop });
  assert.equal(rotated.token_type, "dpop");
});

await check("dpopOnPushedAuthorizationRequests", async () => {
  const dpop = client.getDPoPHandle(webConfig, await client.randomDPoPKeyPair("ES256"));
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(webConfig, {
    redirect_uri: redirectUri, scope: "openid", state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  }, { DPoP: dpop });
  const callback = await browse(jar, url.href, redirectUri, user);
  const other = client.getDPoPHandle(webConfig, await client.randomDPoPKeyPair("ES256"));
  await assert.rejects(client.authorizationCodeGrant(webConfig, new URL(callback), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  }, undefined, { DPoP: other }), (error) => error.error === "invalid_grant");
});

// ---------------------------------------------------------------------------------
// Device authorization grant (RFC 8628), approved by the signed-in user at /device.

async function decideDevice(verificationUri, decision) {
  const page = await fetch(verificationUri, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(page.status, 200, "the signed-in user sees the code page");
  const csrf = csrfOf(await page.text());
  const userCode = new URL(verificationUri).searchParams.get("user_code");
  const post = (path, fields) => fetch(`${base}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie: jar.header(), "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrf, user_code: userCode, ...fields }),
  });
  const confirm = await post("/device", {});
  const confirmHtml = await confirm.text();
  assert.match(confirmHtml, /Interop device app/, "the user is told which application asks");
  const done = await post("/device/confirm", { decision });
  assert.equal(done.status, 200);
  return done.text();
}

await check("deviceAuthorizationGrant", async () => {
  const deviceApp = await api("POST", "/applications", { displayName: "Interop device app", isFallbackPublicClient: true });
  await api("POST", "/servicePrincipals", { appId: deviceApp.appId });
  const config = await client.discovery(new URL(base), deviceApp.appId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  const dar = await client.initiateDeviceAuthorization(config, { scope: "openid profile offline_access" });
  assert.match(dar.user_code, /^[B-Z]{4}-[B-Z]{4}$/);
  assert.equal(dar.verification_uri, `${base}/device`);
  assert.match(await decideDevice(dar.verification_uri_complete, "approve"), /signed in/);
  const tokens = await client.pollDeviceAuthorizationGrant(config, dar);
  assert.equal(tokens.claims().sub, person.id);
  assert.ok(tokens.refresh_token);
  // The device code is spent.
  await assert.rejects(client.pollDeviceAuthorizationGrant(config, dar), (error) => error.error === "invalid_grant");
  // A denied request ends in access_denied.
  const denied = await client.initiateDeviceAuthorization(config, { scope: "openid" });
  await decideDevice(denied.verification_uri_complete, "deny");
  await assert.rejects(client.pollDeviceAuthorizationGrant(config, denied), (error) => error.error === "access_denied");
  // An application that is not a public client must authenticate.
  const webPublic = await client.discovery(new URL(base), web.appId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  await assert.rejects(client.initiateDeviceAuthorization(webPublic, { scope: "openid" }), (error) => error.error === "invalid_client");
});

// ---------------------------------------------------------------------------------
// Token exchange (RFC 8693): workload identity federation with an external issuer
// played here by a small OpenID issuer (discovery + JWKS), and on-behalf-of.

const external = await jose.generateKeyPair("ES256", { extractable: true });
const externalJwk = { ...(await jose.exportJWK(external.publicKey)), kid: "ci-1", alg: "ES256", use: "sig" };
const issuerServer = createServer((request, response) => {
  const origin = `http://127.0.0.1:${issuerServer.address().port}`;
  response.setHeader("content-type", "application/json");
  if (request.url === "/.well-known/openid-configuration") {
    response.end(JSON.stringify({ issuer: origin, jwks_uri: `${origin}/jwks` }));
  } else if (request.url === "/jwks") {
    response.end(JSON.stringify({ keys: [externalJwk] }));
  } else {
    response.statusCode = 404;
    response.end("{}");
  }
});
await new Promise((resolve) => issuerServer.listen(0, "127.0.0.1", resolve));
const externalIssuer = `http://127.0.0.1:${issuerServer.address().port}`;

async function externalToken(claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ ...claims })
    .setProtectedHeader({ alg: "ES256", kid: "ci-1", typ: "JWT" })
    .setIssuer(claims.iss ?? externalIssuer)
    .setSubject(claims.sub ?? "system:serviceaccount:ci:deployer")
    .setAudience(claims.aud ?? "api://TesseraTokenExchange")
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 300)
    .sign(external.privateKey);
}

await check("workloadIdentityFederation", async () => {
  const federated = await api("POST", "/applications", {
    displayName: "Federated CI workload",
    federatedIdentityCredentials: [{
      name: "ci-deployer",
      issuer: externalIssuer,
      subject: "system:serviceaccount:ci:deployer",
      audiences: ["api://TesseraTokenExchange"],
    }],
  });
  await api("POST", "/servicePrincipals", { appId: federated.appId });
  const config = await client.discovery(new URL(base), federated.appId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  const exchangeFor = async (token) => client.genericGrantRequest(config, "urn:ietf:params:oauth:grant-type:token-exchange", {
    subject_token: token,
    subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
    scope: resourceScope,
  });
  const tokens = await exchangeFor(await externalToken());
  assert.equal(tokens.issued_token_type, "urn:ietf:params:oauth:token-type:access_token");
  const { payload } = await jose.jwtVerify(tokens.access_token, jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), {
    issuer: base, audience: resource.appId, typ: "at+jwt",
  });
  assert.equal(payload.client_id, federated.appId);
  assert.equal(payload.idtyp, "app");
  for (const [why, claims] of [
    ["another subject", { sub: "system:serviceaccount:ci:other" }],
    ["a foreign audience", { aud: "api://SomethingElse" }],
    ["an expired token", { exp: Math.floor(Date.now() / 1000) - 600 }],
    ["an untrusted issuer", { iss: "http://127.0.0.1:1" }],
  ]) {
    await assert.rejects(exchangeFor(await externalToken(claims)), (error) => error.error === "invalid_grant", why);
  }
  // A token signed by another key than the issuer's is refused.
  const forger = await jose.generateKeyPair("ES256");
  const forged = await new jose.SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "ci-1" })
    .setIssuer(externalIssuer).setSubject("system:serviceaccount:ci:deployer").setAudience("api://TesseraTokenExchange")
    .setIssuedAt().setExpirationTime("5m").sign(forger.privateKey);
  await assert.rejects(exchangeFor(forged), (error) => error.error === "invalid_grant");
});

await check("tokenExchangeOnBehalfOfAUser", async () => {
  // The user signs in to the web app for the middle-tier API ("Interop client"); an
  // administrator consented to that scope (users may consent only to low-risk ones).
  await api("POST", "/oauth2PermissionGrants", { clientId: web.appId, consentType: "AllPrincipals", scope: `api://${app.appId}/access` });
  const flow = await codeFlow(webConfig, jar, { scope: `openid api://${app.appId}/access` });
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  });
  // ...and to the API calling the downstream resource for users.
  await api("POST", "/oauth2PermissionGrants", { clientId: app.appId, consentType: "AllPrincipals", scope: `api://${resource.appId}/read` });
  const middle = new client.Configuration(webConfig.serverMetadata(), app.appId, undefined, client.ClientSecretBasic(secret.secretText));
  client.allowInsecureRequests(middle);
  const exchanged = await client.genericGrantRequest(middle, "urn:ietf:params:oauth:grant-type:token-exchange", {
    subject_token: tokens.access_token,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    scope: `api://${resource.appId}/read`,
  });
  const { payload } = await jose.jwtVerify(exchanged.access_token, jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), {
    issuer: base, audience: resource.appId,
  });
  assert.equal(payload.sub, person.id);
  assert.equal(payload.act.sub, app.appId);
  // Another client cannot exchange a token that was not issued to it.
  await assert.rejects(client.genericGrantRequest(webConfig, "urn:ietf:params:oauth:grant-type:token-exchange", {
    subject_token: tokens.access_token,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    scope: `api://${resource.appId}/read`,
  }), (error) => error.error === "invalid_grant");
});
issuerServer.close();

// ---------------------------------------------------------------------------------
// Assignment: applications that require it admit only assigned users and workloads,
// and app roles go into tokens.

await check("assignmentRequiredAndAppRoles", async () => {
  const approverRole = crypto.randomUUID();
  const workerRole = crypto.randomUUID();
  const guarded = await api("POST", "/applications", {
    displayName: "Guarded app",
    web: { redirectUris: [redirectUri] },
    appRoles: [
      { id: approverRole, value: "Invoices.Approve", displayName: "Approver", allowedMemberTypes: ["User"], isEnabled: true },
      { id: workerRole, value: "Invoices.Process", displayName: "Processor", allowedMemberTypes: ["Application"], isEnabled: true },
    ],
  });
  const guardedSp = await api("POST", "/servicePrincipals", { appId: guarded.appId, appRoleAssignmentRequired: true });
  const guardedSecret = await api("POST", `/applications/${guarded.id}/passwordCredentials`, {});
  const config = await client.discovery(new URL(base), guarded.appId, undefined, client.ClientSecretBasic(guardedSecret.secretText), { execute: [client.allowInsecureRequests] });
  // Not assigned: refused with access_denied, back at the application.
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: "openid", state: "a1",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  });
  const refused = new URL(await browse(jar, url.href, redirectUri, user));
  assert.equal(refused.searchParams.get("error"), "access_denied");
  // Assigned through a group, with a role: admitted, the role in the ID token.
  const group = await api("POST", "/groups", { displayName: `Approvers ${crypto.randomUUID()}` });
  await fetch(`${base}/api/v1/groups/${group.id}/members`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ id: person.id }),
  }).then((r) => assert.ok(r.ok, `add member: ${r.status}`));
  const assignment = await api("POST", `/servicePrincipals/${guardedSp.id}/appRoleAssignedTo`, { principalId: group.id, appRoleId: approverRole });
  const flow = await codeFlow(config, jar);
  const tokens = await client.authorizationCodeGrant(config, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  });
  assert.deepEqual(tokens.claims().roles, ["Invoices.Approve"]);
  assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, true);
  // Removing the assignment ends the refresh too, and introspection says so at once.
  await api("DELETE", `/servicePrincipals/${guardedSp.id}/appRoleAssignedTo/${assignment.id}`);
  assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
  assert.equal((await client.tokenIntrospection(config, tokens.refresh_token)).active, false);
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (error) => error.error === "invalid_grant");
  // A workload calling the guarded app as a resource needs an app role for applications.
  const scope = { scope: `api://${guarded.appId}/.default` };
  const workloadConfig = new client.Configuration(webConfig.serverMetadata(), app.appId, undefined, client.ClientSecretBasic(secret.secretText));
  client.allowInsecureRequests(workloadConfig);
  await assert.rejects(client.clientCredentialsGrant(workloadConfig, scope), (error) => error.error === "unauthorized_client");
  const workloadSp = (await api("GET", `/servicePrincipals?limit=1000`)).value.find((sp) => sp.appId === app.appId);
  await api("POST", `/servicePrincipals/${guardedSp.id}/appRoleAssignedTo`, { principalId: workloadSp.id, appRoleId: workerRole });
  // (resolved grants are reused for up to 5 seconds, successes only: a refusal is not cached)
  const granted = await client.clientCredentialsGrant(workloadConfig, scope);
  const { payload } = await jose.jwtVerify(granted.access_token, jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), { issuer: base, audience: guarded.appId });
  assert.deepEqual(payload.roles, ["Invoices.Process"]);
});

await check("idTokenAlgorithmPerApplication", async () => {
  const metadata = webConfig.serverMetadata();
  assert.ok(metadata.id_token_signing_alg_values_supported.includes("RS256"), "OIDC Discovery: RS256 is listed");
  for (const alg of ["RS256", "PS256", "EdDSA"]) {
    const rsa = await api("POST", "/applications", {
      displayName: `${alg} relying party`,
      web: { redirectUris: [redirectUri] },
      idTokenSignedResponseAlg: alg,
    });
    await api("POST", "/servicePrincipals", { appId: rsa.appId });
    const rsaSecret = await api("POST", `/applications/${rsa.id}/passwordCredentials`, {});
    const config = await client.discovery(new URL(base), rsa.appId, { id_token_signed_response_alg: alg },
      client.ClientSecretBasic(rsaSecret.secretText), { execute: [client.allowInsecureRequests] });
    client.enableNonRepudiationChecks(config);
    const flow = await codeFlow(config, jar);
    const tokens = await client.authorizationCodeGrant(config, flow.callback, {
      pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
    });
    assert.equal(jose.decodeProtectedHeader(tokens.id_token).alg, alg);
    // Access tokens stay ES256.
    assert.equal(jose.decodeProtectedHeader(tokens.access_token).alg, "ES256");
  }
});

await check("authenticationContextsForStepUp", async () => {
  // c1 needs MFA (the test user has only a password); c2 a custom strength a
  // password reaches.
  const passwordOnly = await api("POST", "/policies/authenticationStrengthPolicies", {
    displayName: `Password only ${crypto.randomUUID()}`,
    allowedCombinations: ["password"],
  });
  await assert.rejects(api("PUT", "/policies/authenticationContexts", { contexts: [{ id: "c100", displayName: "x", strengthId: passwordOnly.id }] }), /400/);
  await api("PUT", "/policies/authenticationContexts", {
    contexts: [
      { id: "c1", displayName: "Payroll approvals", strengthId: "00000000-0000-0000-0000-000000000002" },
      { id: "c2", displayName: "Reading reports", strengthId: passwordOnly.id },
    ],
  });
  // An essential c1 the user cannot reach: a new sign-in, then unmet_authentication_requirements.
  const essential = JSON.stringify({ id_token: { acr: { essential: true, values: ["c1"] } } });
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(webConfig, {
    redirect_uri: redirectUri, scope: "openid", state: "su", claims: essential,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  });
  const unmet = new URL(await browse(jar, url.href, redirectUri, user));
  assert.equal(unmet.searchParams.get("error"), "unmet_authentication_requirements");
  // c2 is reached by the password: the ID token says acr c2, the access token acrs.
  const flow = await codeFlow(webConfig, jar, { acr_values: "c2" });
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  });
  assert.equal(tokens.claims().acr, "c2");
  assert.deepEqual(jose.decodeJwt(tokens.access_token).acrs, ["c2"]);
  await api("PUT", "/policies/authenticationContexts", { contexts: [] });
});

// ---------------------------------------------------------------------------------
// Negative cases, sent as raw HTTP so that no library check stands in for the server's.

await check("negativeCasesAtTheEndpoints", async () => {
  const basic = (id, secretText) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secretText)}`).toString("base64")}`;
  const webBasic = basic(web.appId, webSecret.secretText);
  const form = (path, fields, headers = {}) => fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields),
  }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json().catch(() => ({})) }));
  const freshCode = async (extra = {}) => {
    const flow = await codeFlow(webConfig, jar, extra);
    return { code: flow.callback.searchParams.get("code"), verifier: flow.verifier };
  };
  const redeem = (code, fields = {}, headers = { authorization: webBasic }) => form("/oauth2/token", {
    grant_type: "authorization_code", code: code.code, code_verifier: code.verifier, redirect_uri: redirectUri, ...fields,
  }, headers);

  // Another redirect_uri than the authorization request's.
  let code = await freshCode();
  assert.equal((await redeem(code, { redirect_uri: "http://localhost:9/spa" })).body.error, "invalid_grant");
  // No code_verifier: PKCE cannot be skipped.
  code = await freshCode();
  const noVerifier = await form("/oauth2/token", { grant_type: "authorization_code", code: code.code, redirect_uri: redirectUri }, { authorization: webBasic });
  assert.equal(noVerifier.body.error, "invalid_request");
  // Another client redeeming the code.
  code = await freshCode();
  assert.equal((await redeem(code, {}, { authorization: basic(app.appId, secret.secretText) })).body.error, "invalid_grant");
  // A good redemption, then a refresh by another client, and scopes that only narrow.
  code = await freshCode();
  const issued = await redeem(code);
  assert.equal(issued.status, 200);
  assert.equal(issued.headers.get("cache-control"), "no-store");
  const otherClient = await form("/oauth2/token", { grant_type: "refresh_token", refresh_token: issued.body.refresh_token }, { authorization: basic(app.appId, secret.secretText) });
  assert.equal(otherClient.body.error, "invalid_grant");
  const wider = await form("/oauth2/token", { grant_type: "refresh_token", refresh_token: issued.body.refresh_token, scope: "openid email profile offline_access phone" }, { authorization: webBasic });
  assert.equal(wider.body.error, "invalid_scope");
  const narrower = await form("/oauth2/token", { grant_type: "refresh_token", refresh_token: issued.body.refresh_token, scope: "openid" }, { authorization: webBasic });
  assert.equal(narrower.status, 200);
  assert.equal(narrower.body.scope, "openid");

  // Implicit and hybrid response types are answered with unsupported_response_type.
  const implicit = new URL(`${base}/oauth2/authorize`);
  implicit.search = new URLSearchParams({
    client_id: web.appId, redirect_uri: redirectUri, response_type: "id_token token", scope: "openid", state: "i",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  }).toString();
  const implicitAnswer = await fetch(implicit, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(new URL(implicitAnswer.headers.get("location")).searchParams.get("error"), "unsupported_response_type");

  // Userinfo: POST works; a token without openid is 403 insufficient_scope with a challenge.
  const withOpenid = await fetch(`${base}/oauth2/userinfo`, { method: "POST", headers: { authorization: `Bearer ${narrower.body.access_token}` } });
  assert.equal(withOpenid.status, 200);
  const emailOnly = await redeem(await freshCode({ scope: "email" }));
  const noOpenid = await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${emailOnly.body.access_token}` } });
  assert.equal(noOpenid.status, 403);
  assert.match(noOpenid.headers.get("www-authenticate"), /insufficient_scope/);
  const garbage = await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: "Bearer not-a-token" } });
  assert.equal(garbage.status, 401);
  assert.match(garbage.headers.get("www-authenticate"), /invalid_token/);

  // Introspection needs an authenticated client.
  const anonymous = await form("/oauth2/introspect", { token: narrower.body.access_token, client_id: web.appId });
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.error, "invalid_client");

  // A pushed request_uri used by another client is refused (shown, not redirected).
  const pushed = await form("/oauth2/par", {
    redirect_uri: redirectUri, response_type: "code", scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  }, { authorization: webBasic });
  assert.equal(pushed.status, 201);
  assert.equal(pushed.body.expires_in, 60);
  const stolen = await fetch(`${base}/oauth2/authorize?client_id=${app.appId}&request_uri=${encodeURIComponent(pushed.body.request_uri)}`, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(stolen.status, 400);
  assert.equal(stolen.headers.get("location"), null);
  // PAR refuses a request_uri inside the pushed request.
  const nested = await form("/oauth2/par", { request_uri: pushed.body.request_uri, redirect_uri: redirectUri }, { authorization: webBasic });
  assert.equal(nested.body.error, "invalid_request");

  // A DPoP-bound token with a proof from another key is refused at userinfo.
  const dpop = client.getDPoPHandle(webConfig, await client.randomDPoPKeyPair("ES256"));
  const boundFlow = await codeFlow(webConfig, jar);
  const bound = await client.authorizationCodeGrant(webConfig, boundFlow.callback, {
    pkceCodeVerifier: boundFlow.verifier, expectedState: boundFlow.state, expectedNonce: boundFlow.nonce,
  }, undefined, { DPoP: dpop });
  const other = client.getDPoPHandle(webConfig, await client.randomDPoPKeyPair("ES256"));
  await assert.rejects(client.fetchUserInfo(webConfig, bound.access_token, person.id, { DPoP: other }));
  const twoProofs = await fetch(`${base}/oauth2/token`, {
    method: "POST",
    headers: [["content-type", "application/x-www-form-urlencoded"], ["dpop", "a.b.c"], ["dpop", "d.e.f"]],
    body: "grant_type=client_credentials",
  });
  assert.equal((await twoProofs.json()).error, "invalid_dpop_proof");

  // The device flow: polling before approval is authorization_pending, faster than
  // the interval slow_down; wrong user codes are told apart from nothing.
  const deviceApp = await api("POST", "/applications", { displayName: "Impatient device", isFallbackPublicClient: true });
  await api("POST", "/servicePrincipals", { appId: deviceApp.appId });
  const started = await form("/oauth2/devicecode", { client_id: deviceApp.appId, scope: "openid" });
  assert.equal(started.status, 200);
  const poll = () => form("/oauth2/token", { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: started.body.device_code, client_id: deviceApp.appId });
  assert.equal((await poll()).body.error, "authorization_pending");
  assert.equal((await poll()).body.error, "slow_down");
  const unknownDevice = await form("/oauth2/token", { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: "nope", client_id: deviceApp.appId });
  assert.equal(unknownDevice.body.error, "invalid_grant");

  // prompt=consent asks again, even for scopes already consented to.
  const consent = new URL(`${base}/oauth2/authorize`);
  consent.search = new URLSearchParams({
    client_id: web.appId, redirect_uri: redirectUri, response_type: "code", scope: "openid", prompt: "consent",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  }).toString();
  const consentAnswer = await fetch(consent, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(consentAnswer.status, 200);
  assert.match(await consentAnswer.text(), /action="\/oauth2\/authorize\/consent"/);
});

await check("consentByUsersAndAdministrators", async () => {
  const consentApp = await api("POST", "/applications", { displayName: "Consent RP", web: { redirectUris: [redirectUri] } });
  await api("POST", "/servicePrincipals", { appId: consentApp.appId });
  const consentSecret = await api("POST", `/applications/${consentApp.id}/passwordCredentials`, {});
  const config = await client.discovery(new URL(base), consentApp.appId, undefined, client.ClientSecretBasic(consentSecret.secretText), { execute: [client.allowInsecureRequests] });
  const run = async (extra, consent = {}) => {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: "openid profile", state: "c", ...extra,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    return new URL(await browse(jar, url.href, redirectUri, user, consent));
  };
  // First time: the user is asked, and allows; the second time nothing is asked.
  const first = {};
  assert.ok((await run({}, first)).searchParams.get("code"));
  assert.deepEqual(first.seen, [["openid", "profile"]]);
  const second = {};
  assert.ok((await run({}, second)).searchParams.get("code"));
  assert.equal(second.seen, undefined);
  // Declining is access_denied; prompt=none with consent missing is consent_required.
  const declined = await run({ scope: "openid email" }, { decision: "deny" });
  assert.equal(declined.searchParams.get("error"), "access_denied");
  const silent = await run({ scope: "openid email", prompt: "none" });
  assert.equal(silent.searchParams.get("error"), "consent_required");
  // A resource is access too: the management API through `resource` alone needs an
  // administrator's consent (no admin token for any application by asking).
  const sneaky = await run({ scope: "openid", resource: "urn:tessera:management" });
  assert.equal(sneaky.searchParams.get("error"), "access_denied");
  // A scope beyond the low-risk ones needs an administrator.
  const api_scope = `api://${resource.appId}/read`;
  const refused = await run({ scope: `openid ${api_scope}` });
  assert.equal(refused.searchParams.get("error"), "access_denied");
  const grant = await api("POST", "/oauth2PermissionGrants", { clientId: consentApp.appId, consentType: "AllPrincipals", scope: api_scope });
  const admitted = {};
  assert.ok((await run({ scope: `openid ${api_scope}` }, admitted)).searchParams.get("code"));
  assert.equal(admitted.seen, undefined, "admin consent covers every user");
  const listed = await api("GET", `/oauth2PermissionGrants?clientId=${consentApp.appId}`);
  assert.equal(listed.value.length, 2, "the user's own grant and the admin's");
  // Revoking the admin consent makes the application ask an administrator again.
  await api("DELETE", `/oauth2PermissionGrants/${grant.id}`);
  assert.equal((await run({ scope: `openid ${api_scope}` })).searchParams.get("error"), "access_denied");
  // A tenant that lets users consent to nothing: even openid needs an administrator.
  const policy = await api("GET", "/policies/consentPolicy");
  assert.equal(policy.userConsent, "lowRisk");
  await api("PUT", "/policies/consentPolicy", { userConsent: "none", lowRiskScopes: policy.lowRiskScopes });
  try {
    assert.equal((await run({ scope: "openid email" })).searchParams.get("error"), "access_denied");
  } finally {
    await api("PUT", "/policies/consentPolicy", policy);
  }
  const log = await api("GET", `/auditLogs/directoryAudits?action=oauth2PermissionGrant.update`);
  assert.ok(log.value.length >= 2, "consents are audited");
});

// ---------------------------------------------------------------------------------
// Mutual TLS (RFC 8705): client authentication by certificate and certificate-bound
// tokens. The certificate arrives as a trusted reverse proxy passes it on
// (X-SSL-Client-Cert, URL-encoded PEM), as in a deployment behind nginx.

await check("mutualTlsClientAuthAndCertificateBoundTokens", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-mtls-"));
  const openssl = (...args) => execFileSync("openssl", args, { stdio: "ignore", cwd: dir });
  // A self-signed client certificate, registered on the application.
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "self.key", "-out", "self.pem", "-days", "2", "-subj", "/CN=self-signed workload");
  // A CA in the tenant's trust store and a certificate it issued for a workload.
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Interop Workload CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=payroll-batch/O=Contoso");
  writeFileSync(join(dir, "leaf.ext"), "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem", "-days", "1", "-extfile", "leaf.ext");
  const pem = (name) => readFileSync(join(dir, name), "utf8");
  const header = (name) => ({ "x-ssl-client-cert": encodeURIComponent(pem(name)) });
  const thumbprint = (name) => {
    const der = Buffer.from(pem(name).replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    return createHash("sha256").update(der).digest("base64url");
  };
  const tokenRequest = (fields, headers) => fetch(`${base}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const jwks = jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));

  // self_signed_tls_client_auth
  const selfSigned = await api("POST", "/applications", { displayName: "mTLS workload (self-signed)" });
  await api("POST", "/servicePrincipals", { appId: selfSigned.appId });
  await api("POST", `/applications/${selfSigned.id}/keyCredentials`, { key: pem("self.pem") });
  const granted = await tokenRequest({ grant_type: "client_credentials", client_id: selfSigned.appId, scope: resourceScope }, header("self.pem"));
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
  const { payload } = await jose.jwtVerify(granted.body.access_token, jwks, { issuer: base, audience: resource.appId });
  assert.equal(payload.cnf["x5t#S256"], thumbprint("self.pem"), "the token is bound to the certificate");
  assert.equal((await tokenRequest({ grant_type: "client_credentials", client_id: selfSigned.appId, scope: resourceScope }, {})).body.error, "invalid_client");
  assert.equal((await tokenRequest({ grant_type: "client_credentials", client_id: selfSigned.appId, scope: resourceScope }, header("leaf.pem"))).body.error, "invalid_client");

  // tls_client_auth: a CA-issued certificate with the registered subject.
  await api("POST", "/certificateAuthorities", { certificate: pem("ca.pem"), isRootAuthority: true });
  // Subjects print in certificate order, as Tessera's certificate sign-in does.
  const pki = await api("POST", "/applications", { displayName: "mTLS workload (PKI)", tlsClientAuthSubjectDn: "CN=another-batch, O=Contoso" });
  await api("POST", "/servicePrincipals", { appId: pki.appId });
  const wrongSubject = await tokenRequest({ grant_type: "client_credentials", client_id: pki.appId, scope: resourceScope }, header("leaf.pem"));
  assert.equal(wrongSubject.body.error, "invalid_client", "a trusted certificate with another subject is not this client");
  await api("PATCH", `/applications/${pki.id}`, { tlsClientAuthSubjectDn: "CN=payroll-batch, O=Contoso" });
  const viaCa = await tokenRequest({ grant_type: "client_credentials", client_id: pki.appId, scope: resourceScope }, header("leaf.pem"));
  assert.equal(viaCa.status, 200, JSON.stringify(viaCa.body));
  // The self-signed certificate does not chain to the trust store.
  assert.equal((await tokenRequest({ grant_type: "client_credentials", client_id: pki.appId, scope: resourceScope }, header("self.pem"))).body.error, "invalid_client");

  // A user's token bound to the web client's certificate: userinfo wants that certificate.
  const mtlsWeb = await api("POST", "/applications", { displayName: "mTLS web app", web: { redirectUris: [redirectUri] } });
  await api("POST", "/servicePrincipals", { appId: mtlsWeb.appId });
  await api("POST", `/applications/${mtlsWeb.id}/keyCredentials`, { key: pem("self.pem") });
  const config = await client.discovery(new URL(base), mtlsWeb.appId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  config[client.customFetch] = (url, options) => fetch(url, { ...options, headers: { ...Object.fromEntries(new Headers(options.headers)), ...header("self.pem") } });
  const flow = await codeFlow(config, jar);
  const tokens = await client.authorizationCodeGrant(config, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  });
  const bound = jose.decodeJwt(tokens.access_token);
  assert.equal(bound.cnf["x5t#S256"], thumbprint("self.pem"));
  const without = await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(without.status, 401);
  const withCert = await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}`, ...header("self.pem") } });
  assert.equal(withCert.status, 200);

  // The tenant's application credential policy (DoD 1.9.1).
  const before = await api("GET", "/policies/appCredentialPolicy");
  assert.equal(before.allowDynamicClientRegistration, false, "dynamic registration is off by default");
  delete before.allowDynamicClientRegistration;
  // A secret made before the policy changes, and never used (resolved grants are
  // reused for 5 s, so a recently used secret would keep working that long).
  const legacy = await api("POST", "/applications", { displayName: "Secret-holding workload" });
  await api("POST", "/servicePrincipals", { appId: legacy.appId });
  const legacySecret = await api("POST", `/applications/${legacy.id}/passwordCredentials`, {});
  assert.deepEqual(before, { allowPasswordCredentials: true, requireTrustedCertificates: false });
  await api("PUT", "/policies/appCredentialPolicy", { allowPasswordCredentials: false, requireTrustedCertificates: true });
  try {
    // No new secrets, and existing ones stop working.
    await assert.rejects(api("POST", `/applications/${legacy.id}/passwordCredentials`, {}), /400/);
    const bySecret = await tokenRequest({ grant_type: "client_credentials", scope: resourceScope },
      { authorization: `Basic ${Buffer.from(`${legacy.appId}:${encodeURIComponent(legacySecret.secretText)}`).toString("base64")}` });
    assert.equal(bySecret.body.error, "invalid_client");
    // Self-signed certificates can neither be added nor used; CA-issued ones can.
    await assert.rejects(api("POST", `/applications/${mtlsWeb.id}/keyCredentials`, { key: pem("self.pem") }), /400/);
    assert.equal((await tokenRequest({ grant_type: "client_credentials", client_id: selfSigned.appId, scope: resourceScope }, header("self.pem"))).body.error, "invalid_client");
    await api("POST", `/applications/${selfSigned.id}/keyCredentials`, { key: pem("leaf.pem") });
    const trusted = await tokenRequest({ grant_type: "client_credentials", client_id: selfSigned.appId, scope: resourceScope }, header("leaf.pem"));
    assert.equal(trusted.status, 200, JSON.stringify(trusted.body));
  } finally {
    await api("PUT", "/policies/appCredentialPolicy", before);
  }
});

await check("dynamicClientRegistrationOffByDefault", async () => {
  const register = (metadata) => fetch(`${base}/oauth2/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(metadata),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const off = await register({ redirect_uris: [redirectUri] });
  assert.equal(off.status, 403);
  const policy = await api("GET", "/policies/appCredentialPolicy");
  await api("PUT", "/policies/appCredentialPolicy", { ...policy, allowDynamicClientRegistration: true });
  try {
    const bad = await register({ redirect_uris: ["https://*.example.com/cb"] });
    assert.equal(bad.body.error, "invalid_redirect_uri");
    assert.equal((await register({ redirect_uris: [redirectUri], grant_types: ["client_credentials"] })).body.error, "invalid_client_metadata");
    const registered = await register({ redirect_uris: [redirectUri], client_name: "Self-registered RP" });
    assert.equal(registered.status, 201);
    assert.ok(registered.body.client_id && registered.body.client_secret);
    // It is an ordinary client: code flow with consent (the browse helper allows it).
    const config = await client.discovery(new URL(base), registered.body.client_id, undefined,
      client.ClientSecretBasic(registered.body.client_secret), { execute: [client.allowInsecureRequests] });
    const flow = await codeFlow(config, jar, { scope: "openid" });
    const tokens = await client.authorizationCodeGrant(config, flow.callback, {
      pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
    });
    assert.equal(tokens.claims().aud, registered.body.client_id);
  } finally {
    await api("PUT", "/policies/appCredentialPolicy", policy);
  }
});

// ---------------------------------------------------------------------------------
// Logout: RP-initiated logout, and back-channel logout tokens to the application
// when its user's session ends (here: the logout itself, then an administrator's
// revocation).

await check("rpInitiatedAndBackChannelLogout", async () => {
  const received = [];
  let arrived = () => {};
  const receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => { body += chunk; });
    request.on("end", () => {
      received.push(new URLSearchParams(body).get("logout_token"));
      response.statusCode = 200;
      response.end();
      arrived();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const receiverUrl = `http://127.0.0.1:${receiver.address().port}/backchannel`;
  const nextToken = (count) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no logout token arrived")), 10000);
    const poll = () => { if (received.length >= count) { clearTimeout(timer); resolve(received[count - 1]); } };
    arrived = poll;
    poll();
  });
  const rp = await api("POST", "/applications", {
    displayName: "Logout RP",
    web: { redirectUris: [redirectUri] },
    backchannelLogoutUri: receiverUrl,
    postLogoutRedirectUris: ["http://localhost:9/signed-out"],
  });
  await api("POST", "/servicePrincipals", { appId: rp.appId });
  const rpSecret = await api("POST", `/applications/${rp.id}/passwordCredentials`, {});
  const config = await client.discovery(new URL(base), rp.appId, undefined, client.ClientSecretBasic(rpSecret.secretText), { execute: [client.allowInsecureRequests] });
  const rpJar = cookieJar();
  const signIn = async () => {
    const flow = await codeFlow(config, rpJar);
    return client.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
  };
  const jwks = jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));
  const tokens = await signIn();
  const sid = tokens.claims().sid;
  const logoutUrl = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: "http://localhost:9/signed-out",
    state: "bye",
  });
  const response = await fetch(logoutUrl, { redirect: "manual", headers: { cookie: rpJar.header() } });
  assert.equal(response.status, 303);
  assert.equal(response.headers.get("location"), "http://localhost:9/signed-out?state=bye");
  rpJar.take(response);
  const first = await nextToken(1);
  const { payload, protectedHeader } = await jose.jwtVerify(first, jwks, { issuer: base, audience: rp.appId, typ: "logout+jwt" });
  assert.equal(protectedHeader.typ, "logout+jwt");
  assert.equal(payload.sid, sid);
  assert.equal(payload.sub, person.id);
  assert.ok(payload.jti && payload.iat);
  assert.equal(payload.nonce, undefined);
  assert.deepEqual(payload.events, { "http://schemas.openid.net/event/backchannel-logout": {} });
  // The session is gone: prompt=none now answers login_required.
  const silent = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: "openid", prompt: "none",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  });
  const after = await fetch(silent, { redirect: "manual", headers: { cookie: rpJar.header() } });
  assert.equal(new URL(after.headers.get("location")).searchParams.get("error"), "login_required");
  // A logout without a valid hint asks the user first (no silent sign-out by a third party).
  const again = await signIn();
  const unhinted = await fetch(`${base}/oauth2/logout`, { redirect: "manual", headers: { cookie: rpJar.header() } });
  assert.equal(unhinted.status, 200);
  assert.match(await unhinted.text(), /Sign out\?/);
  // An administrator's revocation notifies the application too.
  await api("POST", `/users/${person.id}/revokeSignInSessions`, {});
  const second = await nextToken(2);
  const revoked = await jose.jwtVerify(second, jwks, { issuer: base, audience: rp.appId, typ: "logout+jwt" });
  assert.equal(revoked.payload.sid, again.claims().sid);
  // An unregistered post-logout redirect URI is never followed.
  const third = await signIn();
  const elsewhere = client.buildEndSessionUrl(config, { id_token_hint: third.id_token, post_logout_redirect_uri: "https://evil.example/after" });
  const stayed = await fetch(elsewhere, { redirect: "manual", headers: { cookie: rpJar.header() } });
  assert.equal(stayed.status, 200);
  assert.equal(stayed.headers.get("location"), null);
  receiver.close();
});

// Issue 11: introspection answers from the grant's own checks (a disabled user's
// tokens are inactive at once; so are those of a revoked session).
await check("introspectionFollowsTheGrant", async () => {
  const flow = await codeFlow(webConfig, jar);
  const tokens = await client.authorizationCodeGrant(webConfig, flow.callback, {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  });
  assert.equal((await client.tokenIntrospection(webConfig, tokens.access_token)).active, true);
  assert.equal((await client.tokenIntrospection(webConfig, tokens.refresh_token)).active, true);
  await api("PATCH", `/users/${person.id}`, { accountEnabled: false });
  try {
    assert.equal((await client.tokenIntrospection(webConfig, tokens.access_token)).active, false);
    assert.equal((await client.tokenIntrospection(webConfig, tokens.refresh_token)).active, false);
    await assert.rejects(client.refreshTokenGrant(webConfig, tokens.refresh_token), (error) => error.error === "invalid_grant");
  } finally {
    await api("PATCH", `/users/${person.id}`, { accountEnabled: true });
  }
  // Enabled again: a new sign-in's tokens are active until the sessions are revoked.
  const again = await codeFlow(webConfig, jar);
  const fresh = await client.authorizationCodeGrant(webConfig, again.callback, {
    pkceCodeVerifier: again.verifier, expectedState: again.state, expectedNonce: again.nonce,
  });
  assert.equal((await client.tokenIntrospection(webConfig, fresh.access_token)).active, true);
  // A replayed refresh token ends its family: the family's access tokens are
  // inactive, though the browser session they came from lives on.
  const rotated = await client.refreshTokenGrant(webConfig, fresh.refresh_token);
  assert.equal((await client.tokenIntrospection(webConfig, rotated.access_token)).active, true);
  await assert.rejects(client.refreshTokenGrant(webConfig, fresh.refresh_token), (error) => error.error === "invalid_grant");
  assert.equal((await client.tokenIntrospection(webConfig, rotated.access_token)).active, false);
  const third = await codeFlow(webConfig, jar);
  const last = await client.authorizationCodeGrant(webConfig, third.callback, {
    pkceCodeVerifier: third.verifier, expectedState: third.state, expectedNonce: third.nonce,
  });
  assert.equal((await client.tokenIntrospection(webConfig, last.access_token)).active, true);
  await api("POST", `/users/${person.id}/revokeSignInSessions`, {});
  assert.equal((await client.tokenIntrospection(webConfig, last.access_token)).active, false);
  assert.equal((await client.tokenIntrospection(webConfig, fresh.access_token)).active, false);
  assert.equal((await client.tokenIntrospection(webConfig, fresh.refresh_token)).active, false);
});

// Issue 11: max_age=0 is prompt=login (OIDC Core 3.1.2.1), even right after a sign-in.
await check("maxAgeZeroAlwaysSignsInAgain", async () => {
  const freshJar = cookieJar();
  await codeFlow(webConfig, freshJar);
  const url = client.buildAuthorizationUrl(webConfig, {
    redirect_uri: redirectUri, scope: "openid", max_age: "0", state: "m0",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
  });
  const response = await fetch(url, { redirect: "manual", headers: { cookie: freshJar.header() } });
  const location = response.headers.get("location") ?? "";
  assert.ok(!location.startsWith(redirectUri), `max_age=0 answered with a code: ${location}`);
  assert.ok(location.includes("/signin"), `max_age=0 asks for a sign-in: ${response.status} ${location}`);
});

// Issue 11: an application's logout form posts cross-site, so the browser sends no
// session cookie; the hint's sid still names the session, which ends, and the
// application hears of it on its back channel.
await check("logoutByPostWithoutTheCookie", async () => {
  const received = [];
  const receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => { body += chunk; });
    request.on("end", () => {
      received.push(new URLSearchParams(body).get("logout_token"));
      response.statusCode = 200;
      response.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const rp = await api("POST", "/applications", {
      displayName: "Posting RP",
      web: { redirectUris: [redirectUri] },
      backchannelLogoutUri: `http://127.0.0.1:${receiver.address().port}/bc`,
      postLogoutRedirectUris: ["http://localhost:9/bye"],
    });
    await api("POST", "/servicePrincipals", { appId: rp.appId });
    const rpSecret = await api("POST", `/applications/${rp.id}/passwordCredentials`, {});
    const config = await client.discovery(new URL(base), rp.appId, undefined, client.ClientSecretBasic(rpSecret.secretText), { execute: [client.allowInsecureRequests] });
    const browser = cookieJar();
    const flow = await codeFlow(config, browser);
    const tokens = await client.authorizationCodeGrant(config, flow.callback, {
      pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
    });
    const sid = tokens.claims().sid;
    // The cross-site POST: no cookie. Tessera answers by navigating to itself...
    const posted = await fetch(`${base}/oauth2/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: "http://localhost:9/bye", state: "s1" }),
    });
    assert.equal(posted.status, 200);
    const next = await nextOf(posted, base);
    assert.ok(next.startsWith(`${base}/oauth2/logout?`), next);
    // ...a request that (in a real browser) carries the cookie; here, as the worst
    // case, it still does not: the hint's sid names the session, which ends.
    const followed = await fetch(next, { redirect: "manual" });
    assert.equal(followed.status, 303);
    assert.equal(followed.headers.get("location"), "http://localhost:9/bye?state=s1");
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 1, "a back-channel logout token arrived");
    const { payload } = await jose.jwtVerify(received[0], jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), { issuer: base, audience: rp.appId, typ: "logout+jwt" });
    assert.equal(payload.sid, sid);
    // The browser's session is gone: prompt=none needs a sign-in.
    const silent = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: "openid", prompt: "none",
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256",
    });
    const after = await fetch(silent, { redirect: "manual", headers: { cookie: browser.header() } });
    assert.equal(new URL(after.headers.get("location")).searchParams.get("error"), "login_required");
  } finally {
    receiver.close();
  }
});

process.exit(failed ? 1 : 0);
