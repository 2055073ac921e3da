// The peer for the token endpoint benchmark (BENCHMARKS.md): npm `oidc-provider` with
// one confidential client, the client-credentials grant and one resource server whose
// access tokens are ES256-signed RFC 9068 JWTs (typ at+jwt), like Tessera's.
//
//   cd bench/oidc-provider && npm ci
//   NODE_ENV=production PORT=3000 node server.mjs
//
// Token request: POST /token, client_secret_basic (bench:bench-secret-...),
// body grant_type=client_credentials&scope=api. JWT access tokens are not stored
// (no adapter write per token); nothing is logged per request.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT ?? 3000);
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;
const audience = 'urn:bench:api';

// A fresh ES256 signing key per start, exported as a private JWK.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const resourceServer = {
  scope: 'api',
  audience,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'ES256' } },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret-bench-secret-bench-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      // The keystore holds only the ES256 key; the default (RS256) would be rejected.
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey] },
  // One hour, as Tessera's ACCESS_TOKEN_SECONDS (and silences the default-ttl notice).
  ttl: { ClientCredentials: 3600 },
  // Only to silence the development-keys notice; no cookies are set by this benchmark.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) {
          throw new errors.InvalidTarget();
        }
        return resourceServer;
      },
    },
  },
});

const server = provider.listen(port, host, () => {
  console.log(`Listening on ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
