// The console's only way to the daemon: the /v1 API with the operator's token, and the
// words for what can go wrong.

const TOKEN_KEY = "driftless.token";

/** The token this tab signed in with, if any (kept in sessionStorage: gone with the tab). */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keep (or, with null, forget) the token for this tab. */
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A refused or failed request: the HTTP status (0: no answer), the API's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * One API request. `body` may be a string, a Blob/File or FormData; `type` its content type.
 * Answers the parsed JSON (or the text); throws ApiError.
 */
export async function api(method, path, { body, type } = {}) {
  // The header the CLI sends too: in open mode (no tokens, loopback only) the daemon refuses
  // state-changing requests without it, as a web page on another site could send them.
  const headers = { "x-driftless-client": "1", accept: "application/json" };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (type) headers["content-type"] = type;
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (e) {
    throw new ApiError(
      0,
      "network",
      `The daemon at ${location.origin} did not answer (${e.message}). It may be stopped or restarting; this page tries again on its own, or reload it once the daemon is back.`,
    );
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const code = json?.error?.code ?? `http-${response.status}`;
    const message = json?.error?.message ?? (text || response.statusText);
    throw new ApiError(response.status, code, message, json);
  }
  return json ?? text;
}

/** What went wrong and what to do, in words: { title, detail }. */
export function explain(err) {
  if (!(err instanceof ApiError)) {
    return { title: "Something went wrong in the page.", detail: String(err?.message ?? err) };
  }
  switch (err.status) {
    case 0:
      return { title: "The daemon cannot be reached.", detail: err.message };
    case 401:
      return {
        title: "Your token was not accepted.",
        detail: `${err.message} Sign in again with a valid token.`,
      };
    case 403:
      return {
        title: "This token may not do that.",
        detail: err.message,
      };
    case 413:
      return { title: "Too large for this daemon.", detail: err.message };
    case 422:
      return {
        title: err.code === "rejected"
          ? "Refused: the job's imports do not fit this cluster. Nothing was stored."
          : "Refused. Nothing was stored.",
        detail: err.message,
      };
    case 503:
      return { title: "The daemon is busy or not ready; try again shortly.", detail: err.message };
    default:
      return { title: `The daemon answered ${err.status} (${err.code}).`, detail: err.message };
  }
}
