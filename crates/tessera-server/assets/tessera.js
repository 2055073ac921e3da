// Passkey ceremonies: the only script the pages need. No external assets.
"use strict";
(function () {
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf() { var m = document.querySelector("meta[name=csrf]"); return m ? m.content : ""; }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { j._status = r.status; return j; });
    });
  }
  function show(message) {
    var e = document.getElementById("passkey-error");
    if (e) { e.textContent = message; e.hidden = false; }
  }
  function credentialJson(c) {
    var r = c.response, json = { id: c.id, rawId: bufToB64url(c.rawId), type: c.type, extensions: c.getClientExtensionResults() };
    if (r.attestationObject) {
      json.response = { clientDataJSON: bufToB64url(r.clientDataJSON), attestationObject: bufToB64url(r.attestationObject) };
      if (r.getTransports) json.response.transports = r.getTransports();
    } else {
      json.response = { clientDataJSON: bufToB64url(r.clientDataJSON), authenticatorData: bufToB64url(r.authenticatorData),
        signature: bufToB64url(r.signature), userHandle: r.userHandle ? bufToB64url(r.userHandle) : null };
    }
    return json;
  }
  var pendingAbort = null;
  function signIn(conditional) {
    if (!window.PublicKeyCredential) { if (!conditional) show("This browser does not support passkeys."); return; }
    if (pendingAbort) pendingAbort.abort();
    post("/signin/passkey/options").then(function (o) {
      if (o._status !== 200) { if (!conditional) show(o.detail || "Passkey sign-in is not available."); return; }
      var pk = o.publicKey;
      pk.challenge = b64urlToBuf(pk.challenge);
      (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      var request = { publicKey: pk };
      if (conditional) { pendingAbort = new AbortController(); request.mediation = "conditional"; request.signal = pendingAbort.signal; }
      return navigator.credentials.get(request).then(function (c) {
        return post("/signin/passkey", credentialJson(c));
      }).then(function (r) {
        if (r && r.redirect) { window.location = r.redirect; }
        else if (r) { show(r.error || "That passkey could not be used to sign in here."); }
      });
    }).catch(function (e) { if (!conditional && e && e.name !== "AbortError") show("The passkey request was cancelled or failed."); });
  }
  function register() {
    var name = document.getElementById("passkey-name");
    post("/security-info/passkey/options").then(function (o) {
      if (o._status !== 200) { show(o.detail || "Cannot add a passkey now."); return; }
      var pk = o.publicKey;
      pk.challenge = b64urlToBuf(pk.challenge);
      pk.user.id = b64urlToBuf(pk.user.id);
      (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      return navigator.credentials.create({ publicKey: pk }).then(function (c) {
        var body = credentialJson(c);
        return post("/security-info/passkey?name=" + encodeURIComponent(name ? name.value : ""), body);
      }).then(function (r) {
        if (r._status === 200) { window.location = "/security-info?added=passkey"; }
        else { show(r.detail || "The passkey was not added."); }
      });
    }).catch(function () { show("The passkey request was cancelled or failed."); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var post = document.querySelector("form[data-autosubmit]");
    if (post) { post.submit(); return; }
    var b = document.getElementById("passkey-signin");
    if (b) b.addEventListener("click", function (e) { e.preventDefault(); signIn(false); });
    var r = document.getElementById("passkey-register");
    if (r) r.addEventListener("click", function (e) { e.preventDefault(); register(); });
    var auto = document.querySelector("input[autocomplete~=webauthn]");
    if (auto && window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) { if (ok) signIn(true); });
    }
  });
})();
