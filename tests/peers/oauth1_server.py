"""A real OAuth 1.0a provider for Bellhop's tests, built on Python's oauthlib (Debian's
python3-oauthlib; RSA-SHA1 needs python3-jwt and python3-cryptography). Listens on 127.0.0.1.

It takes Garmin's paths, so the shipped `garmin` definition is exercised with only its hosts
moved here:
  POST /oauth-service/oauth/request_token   temporary credentials (RFC 5849 2.1)
  GET  /oauthConfirm?oauth_token=...        the user's authorization page
  POST /oauthConfirm                        allow (oauth_token, allow=yes): 302 to the callback
  POST /oauth-service/oauth/access_token    token credentials (2.3)
  GET  /wellness-api/rest/user/id           a protected resource: {"userId": ...}
  POST /wellness-api/rest/readings          a protected resource with a signed form body

Settings from the environment: CLIENT_KEY, CLIENT_SECRET, RSA_PUBLIC_KEY (PEM, optional).
Prints `READY <port>`, and `SIGNED method=<m> ok=<bool>` for every request it verifies.
A request whose signature fails is answered 401 with `oauth_problem=signature_invalid` (the
OAuth problem-reporting extension providers use). Stops when stdin closes.
"""

import json
import os
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from oauthlib import oauth1
from oauthlib.common import safe_string_equals

CLIENT_KEY = os.environ["CLIENT_KEY"]
CLIENT_SECRET = os.environ.get("CLIENT_SECRET", "")
RSA_PUBLIC_KEY = os.environ.get("RSA_PUBLIC_KEY", "")

lock = threading.Lock()
request_tokens = {}  # token -> {"secret", "callback", "verifier"}
access_tokens = {}  # token -> secret
nonces = set()


class Validator(oauth1.RequestValidator):
    enforce_ssl = False

    @property
    def allowed_signature_methods(self):
        return (oauth1.SIGNATURE_HMAC_SHA1, oauth1.SIGNATURE_HMAC_SHA256,
                oauth1.SIGNATURE_RSA_SHA1, oauth1.SIGNATURE_PLAINTEXT)

    # Keys like Garmin's hold dashes; oauthlib's default takes letters and digits only.
    safe_characters = set(string.ascii_letters + string.digits + "-")
    client_key_length = (3, 64)
    request_token_length = (20, 64)
    access_token_length = (20, 64)
    nonce_length = (16, 64)
    verifier_length = (20, 64)

    @property
    def dummy_client(self):
        return "dummy-client-key"

    @property
    def dummy_request_token(self):
        return "dummyrequesttoken0000"

    @property
    def dummy_access_token(self):
        return "dummyaccesstoken00000"

    def validate_client_key(self, client_key, request):
        return safe_string_equals(client_key, CLIENT_KEY)

    def get_client_secret(self, client_key, request):
        return CLIENT_SECRET if client_key == CLIENT_KEY else "dummy-secret"

    def get_rsa_key(self, client_key, request):
        return RSA_PUBLIC_KEY

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        if abs(time.time() - int(timestamp)) > 600:
            return False
        key = (client_key, timestamp, nonce, request_token, access_token)
        with lock:
            if key in nonces:  # a replayed request
                return False
            nonces.add(key)
        return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        return redirect_uri.startswith("http://127.0.0.1:")

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def get_default_realms(self, client_key, request):
        return []

    def get_realms(self, token, request):
        return []

    def save_request_token(self, token, request):
        with lock:
            request_tokens[token["oauth_token"]] = {
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "verifier": None,
            }

    def get_redirect_uri(self, token, request):
        return request_tokens[token]["callback"]

    def verify_request_token(self, token, request):
        return token in request_tokens

    def verify_realms(self, token, realms, request):
        return True

    def save_verifier(self, token, verifier, request):
        with lock:
            request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def validate_request_token(self, client_key, token, request):
        return token in request_tokens

    def get_request_token_secret(self, client_key, token, request):
        return request_tokens.get(token, {}).get("secret", "dummy")

    def validate_verifier(self, client_key, token, verifier, request):
        stored = request_tokens.get(token, {}).get("verifier")
        return stored is not None and safe_string_equals(verifier, stored)

    def invalidate_request_token(self, client_key, request_token, request):
        with lock:
            request_tokens.pop(request_token, None)

    def save_access_token(self, token, request):
        with lock:
            access_tokens[token["oauth_token"]] = token["oauth_token_secret"]

    def validate_access_token(self, client_key, token, request):
        return token in access_tokens

    def get_access_token_secret(self, client_key, token, request):
        return access_tokens.get(token, "dummy")


validator = Validator()
request_endpoint = oauth1.RequestTokenEndpoint(validator)
authorization_endpoint = oauth1.AuthorizationEndpoint(validator)
access_endpoint = oauth1.AccessTokenEndpoint(validator)
resource_endpoint = oauth1.ResourceEndpoint(validator)

PROBLEM = "oauth_problem=signature_invalid&oauth_problem_advice=The+request+signature+does+not+match"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/x-www-form-urlencoded", headers=None):
        data = (body or "").encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def uri(self):
        host = self.headers.get("host")
        return f"http://{host}{self.path}"

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def method_used(self):
        auth = self.headers.get("authorization", "")
        for part in auth.split(","):
            if "oauth_signature_method" in part:
                return part.split("=", 1)[1].strip().strip('"')
        return "-"

    def verified(self, headers, body, status):
        ok = 200 <= status < 300
        print(f"SIGNED method={urllib.parse.unquote(self.method_used())} ok={str(ok).lower()}", flush=True)
        return ok

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/oauthConfirm":
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("oauth_token", [""])[0]
            self.reply(200, f'<!doctype html><form method="post"><input type="hidden" name="oauth_token" value="{token}"><button name="allow" value="yes" id="allow">Allow</button></form>', "text/html")
            return
        if path == "/wellness-api/rest/user/id":
            self.resource(body="")
            return
        self.reply(404, "not here", "text/plain")

    def resource(self, body):
        valid, request = resource_endpoint.validate_protected_resource_request(
            self.uri(), http_method=self.command, body=body or None, headers=dict(self.headers))
        print(f"SIGNED method={urllib.parse.unquote(self.method_used())} ok={str(valid).lower()}", flush=True)
        if not valid:
            self.reply(401, PROBLEM)
            return
        fields = dict(urllib.parse.parse_qsl(body)) if body else {}
        self.reply(200, json.dumps({"userId": "garmin-user-1", "received": fields}), "application/json")

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        body = self.body()
        headers = dict(self.headers)
        if path == "/oauth-service/oauth/request_token":
            out_headers, out_body, status = request_endpoint.create_request_token_response(
                self.uri(), http_method="POST", body=body or None, headers=headers)
            self.verified(out_headers, out_body, status)
            self.reply(status, out_body if status == 200 else (out_body or PROBLEM))
        elif path == "/oauthConfirm":
            fields = dict(urllib.parse.parse_qsl(body))
            if fields.get("allow") != "yes":
                self.reply(403, "denied", "text/plain")
                return
            uri = f"http://{self.headers.get('host')}/oauthConfirm?oauth_token={fields.get('oauth_token', '')}"
            out_headers, _, status = authorization_endpoint.create_authorization_response(
                uri, http_method="GET", credentials={})
            self.reply(status, "", "text/plain", out_headers)
        elif path == "/oauth-service/oauth/access_token":
            out_headers, out_body, status = access_endpoint.create_access_token_response(
                self.uri(), http_method="POST", body=body or None, headers=headers)
            self.verified(out_headers, out_body, status)
            if status == 200:
                out_body += "&user_id=garmin-user-1"
            self.reply(status, out_body if status == 200 else (out_body or PROBLEM))
        elif path == "/wellness-api/rest/readings":
            self.resource(body)
        else:
            self.reply(404, "not here", "text/plain")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"READY {server.server_address[1]}", flush=True)


def watch_stdin():
    sys.stdin.read()
    server.shutdown()


threading.Thread(target=watch_stdin, daemon=True).start()
server.serve_forever()
