// A real OpenID provider for the tests (npm oidc-provider), posing as Pro Santé Connect or FranceConnect.
//
// Started by tests/oidc_fixtures.py: `node oidc_provider.mjs <config.json>`. It listens on 127.0.0.1 (the port
// from the config, or a free one), prints `ready <issuer>` on stdout, and serves until killed. The config gives
// the signing keys (private JWKs, the first one signs: put a new key first to rotate), the clients, the acr
// values, the claims by scope, the accounts (login -> claims) and the resource servers (JWT access tokens).
//
// The sign-in page (/interaction/<uid>) is a plain form: an identifier, a level of assurance, "Se connecter" and
// "Annuler". Consent is implied (each sign-in gets a grant for what the client asked).
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const server = http.createServer();
await new Promise((resolve) => { server.listen(config.port || 0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

function accountClaims(login) {
  const known = config.accounts[login];
  if (known) return { ...known };
  if (config.profile === 'psc' && /^\d{11}$/.test(login)) {
    // Any RPPS number signs in at PSC (the directory check is Carnet's): national id = "8" + RPPS.
    return { SubjectNameID: `8${login}`, preferred_username: `8${login}`, given_name: 'Inconnu', family_name: 'INCONNU' };
  }
  return undefined;
}

const escape = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  acrValues: config.acrValues,
  claims: config.claims,
  scopes: config.scopes,
  pkce: { required: () => true },
  cookies: { keys: ['carnet-test-provider-cookie-key'] },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  conformIdTokenClaims: true,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        const server = config.resources[indicator];
        if (!server) throw new Provider.errors.InvalidTarget();
        return {
          scope: server.scope,
          audience: server.audience,
          accessTokenTTL: server.ttl || 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Access tokens carry the national identifier and the level of assurance, as PSC's do.
  extraTokenClaims: async (ctx, token) => {
    if (!token.accountId) return undefined;
    const claims = accountClaims(token.accountId) || {};
    const extra = {};
    for (const name of config.accessTokenClaims || []) if (claims[name]) extra[name] = claims[name];
    const acr = token.acr || ctx?.oidc?.entities?.AuthorizationCode?.acr;
    if (acr) extra.acr = acr;
    return extra;
  },
  findAccount: async (ctx, sub) => {
    const claims = accountClaims(sub);
    if (!claims) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...claims }) };
  },
  loadExistingGrant: async (ctx) => {
    // Consent is implied: a grant for exactly what this request asks.
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
    for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers || {})) {
      grant.addResourceScope(indicator, server.scope);
    }
    await grant.save();
    return grant;
  },
});

function signInPage(uid, error) {
  const options = config.acrValues.map((acr) => `<option value="${escape(acr)}">${escape(acr)}</option>`).join('');
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${escape(config.title)}</title></head>
<body><main><h1>${escape(config.title)}</h1>${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">Identifiant</label> <input id="login" name="login" autocomplete="off" required>
<label for="acr">Niveau</label> <select id="acr" name="acr">${options}</select>
<button type="submit">Se connecter</button></form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit">Annuler</button></form>
</main></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(ctx.path);
  if (!match) return next();
  const [, uid, step] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  if (!step && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = signInPage(uid);
    return undefined;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  ctx.respond = false;
  if (step === 'abort') {
    const result = { error: 'access_denied', error_description: 'The user cancelled the sign-in.' };
    return provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  }
  const form = await readForm(ctx.req);
  const login = (form.get('login') || '').trim();
  const acr = form.get('acr') || config.acrValues[0];
  if (!accountClaims(login)) {
    ctx.respond = true;
    ctx.type = 'html';
    ctx.body = signInPage(uid, 'Identifiant inconnu.');
    return undefined;
  }
  return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: login, acr } }, {
    mergeWithLastSubmission: false,
  });
});

server.on('request', provider.callback());
process.stdout.write(`ready ${issuer}\n`);
