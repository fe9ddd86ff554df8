// A real OAuth2 / OpenID Connect authorization server (npm oidc-provider) for Bellhop's tests.
// Listens on 127.0.0.1 only. Settings come from the environment:
//   PORT (0 = any free port), REDIRECT_URI, CLIENT_ID, CLIENT_SECRET,
//   AUTH_METHOD (client_secret_basic | client_secret_post), ACCESS_TTL (seconds);
//   CC_CLIENT_ID and CC_CLIENT_SECRET: a client-credentials client (optional);
//   DEVICE_CLIENT_ID: a public device-flow client (optional); DEVICE_INTERVAL (seconds): the
//   polling interval its device authorization answers (RFC 8628 §3.2; without it, none is sent
//   and clients wait the default 5 s).
// Client credentials, the device flow (RFC 8628), revocation (RFC 7009), introspection
// (RFC 7662), discovery and the `iss` authorization-response parameter (RFC 9207) are on.
// Prints `READY <port>` when it listens, `TOKEN basic=<bool> grant=<type> status=<n>` for every
// token request (so a test can check which client authentication Bellhop used), `REVOKE
// status=<n> gone=<bool>` for every revocation (gone: the token no longer exists), and
// `INTROSPECT status=<n>`. Stops when stdin closes.
import http from "node:http";
import Provider from "oidc-provider";

const env = process.env;
const server = http.createServer();
await new Promise((resolve) => server.listen(Number(env.PORT || 0), "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const clients = [{
  client_id: env.CLIENT_ID,
  client_secret: env.CLIENT_SECRET,
  redirect_uris: [env.REDIRECT_URI],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: env.AUTH_METHOD || "client_secret_basic",
}];
if (env.CC_CLIENT_ID) {
  clients.push({
    client_id: env.CC_CLIENT_ID,
    client_secret: env.CC_CLIENT_SECRET,
    redirect_uris: [],
    grant_types: ["client_credentials"],
    response_types: [],
    scope: "api:read",
    token_endpoint_auth_method: "client_secret_basic",
  });
}
if (env.DEVICE_CLIENT_ID) {
  clients.push({
    client_id: env.DEVICE_CLIENT_ID,
    redirect_uris: [],
    grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
    response_types: [],
    token_endpoint_auth_method: "none",
  });
}

// Plain pages for the device flow (the defaults load web fonts from the internet).
const plain = (title, inner) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${inner}</body></html>`;

const provider = new Provider(issuer, {
  clients,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, out, err) => {
        ctx.body = plain("Enter the code", `${err ? "<p id=error>That code is not right</p>" : ""}${form}<button type="submit" form="op.deviceInputForm" id="continue">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = plain("Confirm the device", `<p>Code <code id="user-code">${userCode}</code></p>${form}<button type="submit" form="op.deviceConfirmForm" id="confirm">Continue</button><button type="submit" form="op.deviceConfirmForm" value="yes" name="abort" id="abort">Abort</button>`);
      },
      successSource: async (ctx) => {
        ctx.body = plain("Device signed in", "<p id=done>You can close this page.</p>");
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: "ann@example.com" }) }),
  claims: { email: ["email"], openid: ["sub"] },
  scopes: ["openid", "email", "offline_access", "api:read"],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  clockTolerance: 0,
  ttl: { AccessToken: Number(env.ACCESS_TTL || 3600), ClientCredentials: Number(env.ACCESS_TTL || 3600), DeviceCode: 300, AuthorizationCode: 60, RefreshToken: 86400, Grant: 86400, Session: 3600, Interaction: 600 },
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

// A protected JSON API on the same server: 401 for a missing or expired token. A user's token
// answers the user; a client-credentials token answers the client.
async function me(req, res) {
  const value = (req.headers.authorization || "").replace(/^Bearer /, "");
  const user = value ? await provider.AccessToken.find(value) : undefined;
  const machine = value && !user ? await provider.ClientCredentials.find(value) : undefined;
  const token = user || machine;
  res.setHeader("content-type", "application/json");
  if (!token || token.isExpired) {
    res.statusCode = 401;
    res.setHeader("www-authenticate", 'Bearer error="invalid_token"');
    res.end(JSON.stringify({ message: "401: Unauthorized" }));
    return;
  }
  if (machine) {
    res.end(JSON.stringify({ id: machine.clientId, scope: machine.scope }));
    return;
  }
  res.end(JSON.stringify({ id: token.accountId, username: "ann", email: "ann@example.com" }));
}

// Which client authentication each token request used, whether each revoked token is gone,
// for the tests to check.
provider.use(async (ctx, next) => {
  await next();
  const params = ctx.oidc && ctx.oidc.params ? ctx.oidc.params : {};
  if (ctx.path === "/token") {
    const basic = (ctx.headers.authorization || "").startsWith("Basic ");
    console.log(`TOKEN basic=${basic} grant=${params.grant_type || "?"} status=${ctx.status}`);
  } else if (ctx.path === "/token/revocation") {
    const token = params.token || "";
    const found = (await provider.AccessToken.find(token)) || (await provider.RefreshToken.find(token)) || (await provider.ClientCredentials.find(token));
    console.log(`REVOKE status=${ctx.status} hint=${params.token_type_hint || "-"} gone=${!found}`);
  } else if (ctx.path === "/token/introspection") {
    console.log(`INTROSPECT status=${ctx.status}`);
  } else if (ctx.path === "/device/auth" && ctx.status === 200 && env.DEVICE_INTERVAL && ctx.body) {
    ctx.body = { ...ctx.body, interval: Number(env.DEVICE_INTERVAL) };
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
