/* Shared by the STS's pages; the build inlines it where a page says so (sts/pages.cmake). Every text that comes
 * from the server or the user is set with textContent, never parsed as HTML. */
"use strict";

function b64uToBytes(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToB64u(buf) {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/* POSTs or GETs JSON; resolves to {status, body} (body null when the answer is not JSON). */
async function api(method, path, body) {
  const init = {method: method, headers: {}, credentials: "same-origin", cache: "no-store"};
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return {status: 0, body: {error: {code: "network", message: "the service did not answer (" + e.message + ")"}}};
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  return {status: res.status, body: data};
}

/* "code: message" of an error answer, or of the status alone. */
function errorText(r) {
  const e = r.body && r.body.error;
  if (e && e.code) return e.code + ": " + (e.message || "");
  return "HTTP " + r.status;
}

function creationOptions(pk) {
  const o = Object.assign({}, pk);
  o.challenge = b64uToBytes(pk.challenge);
  o.user = Object.assign({}, pk.user, {id: b64uToBytes(pk.user.id)});
  o.excludeCredentials = (pk.excludeCredentials || []).map(c => Object.assign({}, c, {id: b64uToBytes(c.id)}));
  return {publicKey: o};
}

function requestOptions(pk) {
  const o = Object.assign({}, pk);
  o.challenge = b64uToBytes(pk.challenge);
  o.allowCredentials = (pk.allowCredentials || []).map(c => Object.assign({}, c, {id: b64uToBytes(c.id)}));
  return {publicKey: o};
}

function registrationJSON(cred) {
  return {id: cred.id, type: cred.type, response: {
    clientDataJSON: bytesToB64u(cred.response.clientDataJSON),
    attestationObject: bytesToB64u(cred.response.attestationObject)}};
}

function assertionJSON(cred) {
  const r = cred.response;
  const out = {id: cred.id, type: cred.type, response: {
    clientDataJSON: bytesToB64u(r.clientDataJSON),
    authenticatorData: bytesToB64u(r.authenticatorData),
    signature: bytesToB64u(r.signature)}};
  if (r.userHandle) out.response.userHandle = bytesToB64u(r.userHandle);
  return out;
}

/* Why the browser's ceremony failed, in words (NotAllowedError: cancelled, timed out or not verified). */
function ceremonyErrorText(e) {
  if (e && e.name === "NotAllowedError")
    return "The security key did not confirm it (cancelled, timed out, or no PIN or biometric check). Nothing was sent to the service.";
  if (e && e.name === "InvalidStateError")
    return "This security key is already registered here.";
  if (e && e.name === "SecurityError")
    return "The browser refused the ceremony for this address (" + e.message + ").";
  return "The browser's security key request failed: " + (e && e.name ? e.name + ": " : "") + (e && e.message ? e.message : String(e));
}

function webauthnAvailable() {
  return window.isSecureContext && !!(navigator.credentials && window.PublicKeyCredential);
}

/* Creates an element with text (never HTML) and optional attributes. */
function el(tag, text, attrs) {
  const n = document.createElement(tag);
  if (text !== undefined && text !== null) n.textContent = String(text);
  if (attrs) for (const k of Object.keys(attrs)) n.setAttribute(k, attrs[k]);
  return n;
}

function when(unix) {
  if (typeof unix !== "number" || !isFinite(unix) || unix <= 0) return "—";
  return new Date(unix * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/* Shows a message in a live region: kind "ok", "error" or "info". */
function say(node, kind, text) {
  node.className = "msg " + kind;
  node.textContent = text;
  node.hidden = !text;
}
