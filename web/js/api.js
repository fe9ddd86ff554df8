// The REST API (/api/v1): every call answers { ok, status, data } (data is {} when the body is
// not JSON), so no caller meets an exception for an error answer.
export async function api(method, path, body) {
  const options = { method, headers: { "accept": "application/json" } };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}
