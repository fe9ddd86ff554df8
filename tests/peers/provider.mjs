// A real OAuth2 / OpenID Connect authorization server (npm oidc-provider) for Bellhop's tests.
// Listens on 127.0.0.1 only. Settings come from the environment:
//   PORT (0 = any free port), REDIRECT_URI, CLIENT_ID, CLIENT_SECRET,
//   AUTH_METHOD (client_secret_basic | client_secret_post), ACCESS_TTL (seconds).
// Prints `READY <port>` when it listens, and `TOKEN basic=<bool> grant=<type>` for every token
// request, so a test can check which client authentication Bellhop used. Stops when stdin closes.
import http from "node:http";
import Provider from "oidc-provider";

const env = process.env;
const server = http.createServer();
await new Promise((resolve) => server.listen(Number(env.PORT || 0), "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: env.CLIENT_ID,
    client_secret: env.CLIENT_SECRET,
    redirect_uris: [env.REDIRECT_URI],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: env.AUTH_METHOD || "client_secret_basic",
  }],
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: "ann@example.com" }) }),
  claims: { email: ["email"], openid: ["sub"] },
  scopes: ["openid", "email", "offline_access"],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  clockTolerance: 0,
  ttl: { AccessToken: Number(env.ACCESS_TTL || 3600), AuthorizationCode: 60, RefreshToken: 86400, Grant: 86400, Session: 3600, Interaction: 600 },
  cookies: { keys: ["bellhop-test-cookie-key"] },
});

const page = (title, body) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
const readForm = (req) => new Promise((resolve) => {
  let data = "";
  req.on("data", (chunk) => { data += chunk; });
  req.on("end", () => resolve(Object.fromEntries(new URLSearchParams(data))));
});

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const uid = details.uid;
  if (req.method === "GET") {
    res.setHeader("content-type", "text/html; charset=utf-8");
    if (details.prompt.name === "login") {
      res.end(page("Sign in", `<form method="post" action="/interaction/${uid}/login">
        <label>User <input name="username" id="username"></label>
        <label>Password <input name="password" id="password" type="password"></label>
        <button type="submit" id="sign-in">Sign in</button></form>`));
    } else {
      res.end(page("Allow access", `<p>Bellhop asks for: ${details.params.scope}</p>
        <form method="post" action="/interaction/${uid}/confirm"><button type="submit" id="allow">Allow</button></form>`));
    }
    return;
  }
  const form = await readForm(req);
  if (req.url.endsWith("/login")) {
    if (form.username !== "ann" || form.password !== "correct horse") {
      res.statusCode = 401;
      res.end(page("Sign in failed", ""));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: "ann" } }, { mergeWithLastSubmission: false });
    return;
  }
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(" "));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

// A protected JSON API on the same server: 401 for a missing or expired token.
async function me(req, res) {
  const value = (req.headers.authorization || "").replace(/^Bearer /, "");
  const token = value ? await provider.AccessToken.find(value) : undefined;
  res.setHeader("content-type", "application/json");
  if (!token || token.isExpired) {
    res.statusCode = 401;
    res.setHeader("www-authenticate", 'Bearer error="invalid_token"');
    res.end(JSON.stringify({ message: "401: Unauthorized" }));
    return;
  }
  res.end(JSON.stringify({ id: token.accountId, username: "ann", email: "ann@example.com" }));
}

// Which client authentication each token request used, for the tests to check.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === "/token") {
    const basic = (ctx.headers.authorization || "").startsWith("Basic ");
    const grant = ctx.oidc && ctx.oidc.params ? ctx.oidc.params.grant_type : "?";
    console.log(`TOKEN basic=${basic} grant=${grant} status=${ctx.status}`);
  }
});

const oidc = provider.callback();
server.on("request", async (req, res) => {
  try {
    if (req.url.startsWith("/interaction/")) return await interaction(req, res);
    if (req.url.startsWith("/me")) return await me(req, res);
    return oidc(req, res);
  } catch (error) {
    res.statusCode = 500;
    res.end(String(error && error.message));
  }
});

console.log(`READY ${port}`);
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
