/*
 * Keygate Connect SDK, served by Keygate at /connect/sdk.js. No dependencies.
 * Texture's createConnectSession({connectApiKey, connectOptions, onSuccess, onError}):
 * open() creates a Connect link with the public connect key and runs it in a popup; the
 * popup hands the scoped key back by postMessage (only to the registered redirect's
 * exact origin) and closes. Call open() from a click handler, or the browser blocks the
 * popup (reported as onError({type: 'popup_blocked'}): redirect to the link instead).
 */
(function () {
  'use strict';
  var script = document.currentScript;
  var SRC = script && script.src ? new URL(script.src) : null;
  // Where Keygate is, as the page loaded this script: its origin (the popup's messages come
  // from it) and its base, the script's path without /connect/sdk.js (under an ingress
  // prefix, --public-url https://api.example.com/keygate, the API is below it too).
  var KEYGATE = SRC ? SRC.origin : window.location.origin;
  var BASE = SRC ? SRC.origin + SRC.pathname.replace(/\/connect\/sdk\.js$/, '') : window.location.origin;
  var CUSTOMER_FIELDS = ['email', 'phone', 'firstName', 'lastName'];
  var POLL_MS = 250;

  function linkBody(options) {
    var body = {};
    var customer = null;
    for (var name in options) {
      if (!Object.prototype.hasOwnProperty.call(options, name) || options[name] === undefined) continue;
      if (CUSTOMER_FIELDS.indexOf(name) !== -1) {
        customer = customer || {};
        customer[name] = options[name];
      } else body[name] = options[name];
    }
    if (customer !== null) body.customerInfo = Object.assign({}, customer, body.customerInfo || {});
    if (body.redirectUrl === undefined) body.redirectUrl = window.location.origin + window.location.pathname;
    return body;
  }

  function createConnectSession(config) {
    if (!config || typeof config.connectApiKey !== 'string' || config.connectApiKey === '') throw new TypeError('createConnectSession: connectApiKey is required');
    if (typeof config.onSuccess !== 'function') throw new TypeError('createConnectSession: onSuccess must be a function');
    var popup = null;
    var poll = null;
    var settled = true;
    var session = { url: null, open: open, close: close };

    function cleanup() {
      window.removeEventListener('message', onMessage);
      if (poll !== null) clearInterval(poll);
      poll = null;
    }

    function fail(type, reason) {
      if (settled) return;
      settled = true;
      cleanup();
      if (popup !== null && !popup.closed) popup.close();
      if (typeof config.onError === 'function') config.onError({ type: type, reason: reason });
    }

    function onMessage(event) {
      // Only Keygate's own page in the popup this session opened may answer.
      if (event.origin !== KEYGATE || event.source !== popup) return;
      var data = event.data;
      if (data === null || typeof data !== 'object' || data.type !== 'keygate-connect') return;
      if (typeof data.scopedKey === 'string') {
        settled = true;
        cleanup();
        config.onSuccess({ scopedKey: data.scopedKey, state: data.state === undefined ? null : data.state });
      } else fail(data.error || 'connect_failed', 'the Connect flow ended without a key');
    }

    function open() {
      if (!settled && popup !== null && !popup.closed) {
        popup.focus();
        return;
      }
      settled = false;
      popup = window.open('', 'keygate-connect', 'popup,width=480,height=720');
      if (popup === null) {
        fail('popup_blocked', 'the browser blocked the Connect window; open the link in this tab instead');
        return;
      }
      window.addEventListener('message', onMessage);
      poll = setInterval(function () {
        if (popup.closed) fail('popup_closed', 'the Connect window was closed before it finished');
      }, POLL_MS);
      fetch(BASE + '/v1/connections', {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        headers: { 'Texture-Api-Key': config.connectApiKey, 'Content-Type': 'application/json' },
        body: JSON.stringify(linkBody(config.connectOptions || {})),
      })
        .then(function (res) {
          return res.json().then(function (json) {
            if (!res.ok) {
              var e = json && json.error ? json.error : {};
              fail('link_error', (e.code || res.status) + ': ' + (e.message || 'the Connect link could not be created'));
              return;
            }
            if (settled) return;
            session.url = json.linkUrl;
            popup.location.href = json.linkUrl + (json.linkUrl.indexOf('?') === -1 ? '?' : '&') + 'display=popup';
          });
        })
        .catch(function (err) {
          fail('network_error', String(err && err.message ? err.message : err));
        });
    }

    function close() {
      if (!settled) {
        settled = true;
        cleanup();
      }
      if (popup !== null && !popup.closed) popup.close();
    }

    return session;
  }

  window.createConnectSession = createConnectSession;
  window.KeygateConnect = { createConnectSession: createConnectSession };
})();
