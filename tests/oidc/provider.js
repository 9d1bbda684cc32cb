// The OpenID provider of the single sign-on tests (crates/server/tests/it/oidc.rs): the
// certified oidc-provider on a loopback port, one confidential client (Latchkey), accounts whose
// claims the test gives, and a sign-in step a plain HTTP client completes. Configured by the
// environment:
//
//   OIDC_PORT           the loopback port to listen on (the issuer is http://127.0.0.1:PORT)
//   OIDC_CLIENT_ID      the client Latchkey is registered as
//   OIDC_CLIENT_SECRET  its secret
//   OIDC_REDIRECT_URI   Latchkey's callback, the client's only redirect_uri
//   OIDC_ACCOUNTS       JSON {"<account id>": {"email", "email_verified", "name"?}, ...}
//   OIDC_MODE           honest (default); wrong-nonce: the ID token carries another nonce than
//                       the one Latchkey sent; foreign-key: the JWKS publishes another key (same
//                       kid) than the one that signs; userinfo: the email is in the UserInfo
//                       answer only, as OpenID Connect Core reads strictly
//
// GET /interaction/<uid>?account=<id> signs that account in and grants the client what it
// asked for; the account picks the claims. Prints "ready" once it listens.

import crypto from 'node:crypto';
import Provider from 'oidc-provider';

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
}

const port = Number(required('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(required('OIDC_ACCOUNTS'));
const mode = process.env.OIDC_MODE || 'honest';
const modes = ['honest', 'wrong-nonce', 'foreign-key', 'userinfo'];
if (!modes.includes(mode)) {
  console.error(`OIDC_MODE must be one of ${modes.join(', ')}`);
  process.exit(2);
}

function signingKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}
const publicPart = ({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use });

const key = signingKey('test-key');
// Same kid, other key: a token signed by `key` must fail against it.
const foreign = signingKey('test-key');

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: required('OIDC_CLIENT_ID'),
      client_secret: required('OIDC_CLIENT_SECRET'),
      redirect_uris: [required('OIDC_REDIRECT_URI')],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [key] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Most providers put the scope's claims in the ID token; the strict reading puts them only
  // in the UserInfo answer when an access token is issued.
  conformIdTokenClaims: mode === 'userinfo',
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
  // A first-party client: what it asks for is granted without a consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  renderError(ctx, out) {
    ctx.type = 'text/plain';
    ctx.body = `${out.error}: ${out.error_description || ''}`;
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const accountId = ctx.query.account;
    if (!accounts[accountId]) {
      ctx.status = 400;
      ctx.body = `no account ${accountId}`;
      return;
    }
    let result;
    if (details.prompt.name === 'login') {
      result = { login: { accountId } };
    } else {
      const grant = new provider.Grant({ clientId: details.params.client_id, accountId });
      grant.addOIDCScope(details.params.scope);
      result = { consent: { grantId: await grant.save() } };
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: false,
    });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  if (mode === 'wrong-nonce' && ctx.path === '/auth' && ctx.query.nonce) {
    ctx.query = { ...ctx.query, nonce: 'not-the-nonce-latchkey-sent' };
  }
  await next();
  if (mode === 'foreign-key' && ctx.path === '/jwks') {
    ctx.body = { keys: [publicPart(foreign)] };
  }
});

provider.listen(port, '127.0.0.1', () => {
  console.log('ready');
});
