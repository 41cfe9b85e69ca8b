// Test harness for ctw.js: a real node:http server emulating the widget API, and a minimal fake
// browser (document, location, localStorage, navigator) in which the SDK's file text is evaluated.
import http from 'node:http';
import fs from 'node:fs';

export const CTW_PATH = new URL('../../src/perezvon/sdk/ctw.js', import.meta.url);
export const SNIPPET_PATH = new URL('../../src/perezvon/sdk/snippet.html', import.meta.url);
export const CTW = fs.readFileSync(CTW_PATH, 'utf8');

export function json(res, status, body, headers = {}) {
  res.writeHead(status, {'Content-Type': 'application/json', ...headers});
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

// The default emulation of the server's endpoints.
export const defaultRoutes = {
  session: (req, res) => json(res, 200, {sessionId: 42}),
  ui: (req, res) => json(res, 200, {widgets: []}),
  'route-key-data': (req, res) => {
    const rk = req.body && req.body.routeKey;
    if (typeof rk !== 'string' || !rk) {
      return json(res, 400, {type: 'validation_error', message: 'Invalid request',
        details: {fields: [{name: 'routeKey', errors: [{message: 'Required'}]}]}});
    }
    if (rk !== 'my_form_1') return json(res, 200, {widgetFound: false, widgetData: null});
    json(res, 200, {widgetFound: true, widgetData: {widgetId: 7, callCenterWorkingMode: 'working_hours',
      collectNonWorkingRequests: true, collectRequests: true,
      workingSchedule: {utcTimezone: 'UTC+03:00', hours: [{hour: 9, dayOfWeek: 1}]}}});
  },
  requests: (() => {
    let next = 1000;
    return (req, res) => json(res, 200, {callbackRequestId: next++});
  })(),
};

// Starts a server on port 0. `routes` maps the last path segment to (req, res) handlers.
// Every request is recorded in `log` as {method, path, route, headers, text, body}.
export async function startServer(routes = {}) {
  const all = {...defaultRoutes, ...routes};
  const log = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body;
      try { body = JSON.parse(text); } catch { body = undefined; }
      const m = /^\/api\/widget\/v1\/([a-z-]+)$/.exec(req.url);
      const entry = {method: req.method, path: req.url, route: m && m[1], headers: req.headers, text, body};
      log.push(entry);
      const h = m && all[m[1]];
      if (!h) return json(res, 404, 'not found');
      h(entry, res, req);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base, log, server,
    calls: (route) => log.filter((e) => e.route === route),
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

// A port nothing listens on (connection refused).
export async function closedPort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

// The inline stub of snippet.html (the <script> without src).
export function snippetStub() {
  const html = fs.readFileSync(SNIPPET_PATH, 'utf8');
  const m = /<script>([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no inline <script> in snippet.html');
  return m[1];
}

// Loads ctw.js into a fresh fake browser. Options:
//   src: script src (full URL); timeout: data-timeout attribute; cookie: initial document.cookie
//   (or 'throw' for a document.cookie that throws);
//   storage: initial localStorage object, or 'throw' for a localStorage that throws;
//   currentScript: false makes document.currentScript null (fallback to querySelectorAll);
//   href: page URL; referrer; preload(window): called after the snippet stub is installed
//   (the stub is installed only when preload is given); fetch: a fetch implementation;
//   dom: extra document members (createElement, querySelector, head, body).
export function loadCtw(opts = {}) {
  const href = opts.href || 'https://shop.example/catalog?utm_source=ya&utm_medium=cpc&utm_campaign=spring&x=1';
  const jar = new Map();
  const cookieWrites = [];
  for (const part of (opts.cookie || '').split(/; */)) {
    const i = part.indexOf('=');
    if (i > 0) jar.set(part.slice(0, i), part.slice(i + 1));
  }
  const script = {
    src: opts.src,
    getAttribute: (n) => (n === 'data-timeout' && opts.timeout != null ? String(opts.timeout) : null),
  };
  const other = {src: 'https://cdn.example/other.js', getAttribute: () => null};
  const noCookies = opts.cookie === 'throw';
  const document = {
    get cookie() {
      if (noCookies) throw new Error('SecurityError');
      return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    },
    set cookie(v) {
      if (noCookies) throw new Error('SecurityError');
      cookieWrites.push(v);
      const kv = v.split(';')[0];
      const i = kv.indexOf('=');
      jar.set(kv.slice(0, i).trim(), kv.slice(i + 1));
    },
    referrer: opts.referrer === undefined ? 'https://search.example/?q=shop' : opts.referrer,
    currentScript: opts.currentScript === false ? null : script,
    querySelectorAll: (sel) => (sel === 'script[src*="ctw.js"]' ? [other, script].filter((s) => s.src.includes('ctw.js')) : []),
    ...(opts.dom || {}),  // createElement, querySelector, head, body: for the widget loader
  };
  const store = opts.storage === 'throw' ? null : {...(opts.storage || {})};
  const localStorage = store ? {
    getItem: (k) => (Object.prototype.hasOwnProperty.call(store, k) ? store[k] : null),
    setItem: (k, v) => { store[k] = String(v); },
  } : {getItem() { throw new Error('SecurityError'); }, setItem() { throw new Error('SecurityError'); }};
  const errors = [];
  const fakeConsole = {error: (...a) => errors.push(a), log() {}, warn() {}};
  const u = new URL(href);
  const window = {
    document, localStorage, console: fakeConsole,
    location: {href, search: u.search},
    navigator: {userAgent: 'Mozilla/5.0 (perezvon-test)'},
  };
  if (opts.preload) {
    new Function('window', snippetStub())(window);
    opts.preload(window);
  }
  const fetchImpl = opts.fetch || fetch;
  new Function('window', 'navigator', 'console', 'fetch', CTW)(window, window.navigator, fakeConsole, fetchImpl);
  return {window, ctw: window.ctw, document, jar, cookieWrites, store, errors};
}

// Makes one API call through `start(cb)` and resolves once the callback has run and a grace period
// has passed: {success, data, calls, sync, args}. `calls` counts callback invocations; `sync` is
// true if the callback ran inside the API call.
export function invoke(start, {grace = 80, limit = 10000} = {}) {
  return new Promise((resolve, reject) => {
    let calls = 0;
    let inside = true;
    let first;
    const cb = (...args) => {
      calls++;
      if (!first) {
        first = {success: args[0], data: args[1], args, sync: inside};
        setTimeout(() => resolve({...first, calls}), grace);
      }
    };
    try { start(cb); } catch (e) { reject(new Error('the SDK threw into the page: ' + e)); }
    inside = false;
    setTimeout(() => { if (!first) reject(new Error('callback not called within ' + limit + ' ms')); }, limit).unref();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
