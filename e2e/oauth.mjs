// OAuth interop with libraries nobody here wrote: openid-client (certified relying-
// party library) obtains client-credentials tokens from a running `tessera serve`;
// jose verifies them against the published JWKS. Environment: TESSERA_URL,
// TESSERA_TOKEN (an administrator's personal access token).
import * as client from "openid-client";
import * as jose from "jose";
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

process.exit(failed ? 1 : 0);
