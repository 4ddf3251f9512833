import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The demo's browser app: a page on an origin of its own that uses Keygate's Connect SDK
 * with the demo's public connect key, receives a scoped key (from the popup, or from the
 * redirect's `texture_scoped_key`), and lists the user's devices with it, across origins.
 * What a customer's single-page app does, in one small file and no build step.
 */
export interface DemoApp {
  readonly server: Server;
  readonly url: string;
  readonly origin: string;
  close(): Promise<void>;
}

function indexHtml(keygate: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo energy app</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<main>
<h1>Demo energy app</h1>
<p>This page lives on its own origin. It holds only a public connect key; the scoped key it gets for you can see your devices and nothing else.</p>
<p><button id="connect" type="button">Connect your devices</button> <a id="redirect-flow" href="#">or without a popup</a></p>
<p id="status" role="status"></p>
<ul id="devices"></ul>
</main>
<script src="${keygate}/connect/sdk.js"></script>
<script src="/app.js"></script>
</body>
</html>
`;
}

const CSS =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:0 auto;padding:1.5rem 1rem}button{font:inherit;font-weight:600;min-height:44px;padding:.5rem 1.2rem}#devices li{margin:.3rem 0}code{word-break:break-all}';

function appJs(keygate: string, connectKey: string): string {
  return `'use strict';
var KEYGATE = ${JSON.stringify(keygate)};
var CONNECT_KEY = ${JSON.stringify(connectKey)};
var statusLine = document.getElementById('status');
var list = document.getElementById('devices');
var options = { clientName: 'Demo energy app', redirectUrl: location.origin + '/', state: 'demo-' + Math.random().toString(36).slice(2) };

function showDevices(scopedKey) {
  statusLine.textContent = 'Connected. Reading your devices with your scoped key…';
  fetch(KEYGATE + '/v1/devices', { headers: { 'Texture-Api-Key': scopedKey } })
    .then(function (res) { return res.json().then(function (body) { return { res: res, body: body }; }); })
    .then(function (r) {
      if (!r.res.ok) { statusLine.textContent = 'Keygate said ' + r.res.status + ' ' + r.body.error.code; return; }
      statusLine.textContent = 'Your devices (' + r.body.totalItems + '):';
      list.textContent = '';
      r.body.data.forEach(function (d) {
        var li = document.createElement('li');
        li.textContent = d.name + ' — ' + d.manufacturer + ' ' + d.model + ' (' + d.id + ')';
        li.dataset.referenceId = d.referenceId;
        list.appendChild(li);
      });
      document.body.dataset.scopedKey = scopedKey;
    })
    .catch(function (e) { statusLine.textContent = 'The request failed: ' + e.message; });
}

var session = createConnectSession({
  connectApiKey: CONNECT_KEY,
  connectOptions: options,
  onSuccess: function (result) { showDevices(result.scopedKey); },
  onError: function (e) { statusLine.textContent = 'Connect did not finish: ' + e.type + (e.reason ? ' (' + e.reason + ')' : ''); document.body.dataset.error = e.type; },
});
document.getElementById('connect').addEventListener('click', function () { session.open(); });

// Without the SDK's popup: create the link, go there in this tab, come back with the key in the query.
function redirectFlow() {
  fetch(KEYGATE + '/v1/connections', { method: 'POST', headers: { 'Texture-Api-Key': CONNECT_KEY, 'Content-Type': 'application/json' }, body: JSON.stringify(options) })
    .then(function (res) { return res.json(); })
    .then(function (link) { sessionStorage.setItem('connect-state', options.state); location.href = link.linkUrl; });
}
document.getElementById('redirect-flow').addEventListener('click', function (event) { event.preventDefault(); redirectFlow(); });

// A key in the address is used only when its state is the one this tab sent: anyone can
// send a user to /?texture_scoped_key=<their own key>, which would show that user the
// sender's devices and send the sender whatever the user then does with them.
var params = new URLSearchParams(location.search);
if (params.has('texture_scoped_key')) {
  var key = params.get('texture_scoped_key');
  var expected = sessionStorage.getItem('connect-state');
  sessionStorage.removeItem('connect-state');
  history.replaceState(null, '', location.pathname);
  var state = params.get('state');
  if (expected === null || state !== expected) {
    statusLine.textContent = 'A key came back that this page did not ask for (its state does not match): ignored.';
    document.body.dataset.error = 'state_mismatch';
  } else showDevices(key);
} else if (params.has('error')) {
  statusLine.textContent = 'Connect did not finish: ' + params.get('error');
} else if (params.has('connect')) {
  // The address keygate demo prints: the redirect flow at once, its state kept in this tab.
  history.replaceState(null, '', location.pathname);
  redirectFlow();
}
`;
}

/** What the app's page is built from; set once Keygate runs and the connect key exists (they need the app's origin first). */
export interface DemoAppConfig {
  keygate: string;
  connectKey: string;
}

/** Serves the demo app on 127.0.0.1, reached as `http://localhost:PORT` (another site than Keygate's 127.0.0.1). */
export async function startDemoApp(config: DemoAppConfig, port = 0): Promise<DemoApp> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const [type, body] =
      path === '/app.js'
        ? ['text/javascript', appJs(config.keygate, config.connectKey)]
        : path === '/app.css'
          ? ['text/css', CSS]
          : path === '/'
            ? ['text/html', indexHtml(config.keygate)]
            : [null, null];
    if (type === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const origin = `http://localhost:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url: `${origin}/`,
    origin,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
