// Asks the token server for a Cartesia access token and shows what a front end would do with it.
'use strict';

const TTS_WEBSOCKET = 'wss://api.cartesia.ai/tts/websocket';

const field = (id) => document.getElementById(id);
let countdown = null;

// ?secret=... fills the field: handy for demos and tests, but a URL ends up in the
// history, so a real page gets its credentials from its own login instead.
const secretInQuery = new URLSearchParams(window.location.search).get('secret');
if (secretInQuery) field('secret').value = secretInQuery;

field('request-form').addEventListener('submit', (event) => {
  event.preventDefault();
  getToken(field('secret').value);
});

async function getToken(secret) {
  clearResult();
  field('get-token').disabled = true;
  try {
    const response = await fetch('/api/token', {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}` },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      showError(describeFailure(response, body));
    } else if (typeof body.token !== 'string') {
      showError('The token server answered without a token.');
    } else {
      showToken(body.token, body.expires_in);
    }
  } catch {
    showError('The token server cannot be reached.');
  } finally {
    field('get-token').disabled = false;
  }
}

function describeFailure(response, body) {
  const status = response.status;
  if (status === 401) return '401: wrong or missing session secret.';
  if (status === 403) return `403: not allowed by the server's policy (${body.error ?? 'forbidden'}).`;
  if (status === 429) {
    const wait = response.headers.get('Retry-After') ?? 'a few';
    return `429: too many requests; try again in ${wait} s.`;
  }
  if (status >= 500) {
    const id = body.request_id ? ` Cartesia request id: ${body.request_id}.` : '';
    return `${status}: the server could not get a token from Cartesia (${body.error ?? 'error'}).${id}`;
  }
  return `${status}: ${body.error ?? response.statusText}`;
}

function showToken(token, expiresIn) {
  const claims = jwtPayload(token);
  field('token').textContent = token;
  field('grants').textContent = claims ? grantsOf(claims) : 'unknown (the token is not a JWT)';
  // The docs do not promise a JWT: fall back on the server's expires_in.
  const expiresAt = claims?.exp ? new Date(claims.exp * 1000) : new Date(Date.now() + expiresIn * 1000);
  showExpiry(expiresAt);
  field('ws-url').textContent = `${TTS_WEBSOCKET}?access_token=${encodeURIComponent(token)}`;
  field('result').hidden = false;
}

function showExpiry(expiresAt) {
  const render = () => {
    const remaining = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    field('expires').textContent =
      `${expiresAt.toLocaleString()} (${remaining > 0 ? `${remaining} s remaining` : 'expired'})`;
  };
  render();
  countdown = setInterval(render, 1000);
}

// The middle part of a JWT, base64url-decoded and parsed; null when the token is not a JWT.
function jwtPayload(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === 'object' && claims !== null ? claims : null;
  } catch {
    return null;
  }
}

function grantsOf(claims) {
  const grants = claims.grants ?? {};
  const granted = Object.keys(grants).filter((name) => grants[name] === true);
  return granted.length > 0 ? granted.join(', ') : 'none';
}

function showError(message) {
  field('error').textContent = message;
}

function clearResult() {
  clearInterval(countdown);
  for (const id of ['error', 'token', 'grants', 'expires', 'ws-url']) field(id).textContent = '';
  field('result').hidden = true;
}
