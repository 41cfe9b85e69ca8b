/* perezvon ctw.js: Calltouch-compatible callback API, docs/sdk.md */
(function (w) {
var d = w.document, old = w.ctw, KEY = '_ct_session_id', NUM = /^\d+$/;
var NET = 'Request timeout exceeded or connection reset', ERR = 'unknown_error';
var base, site, timeout = 3e4, sid = null, ready, api, id, s, q, b;

function err(type, message, details) {
  return {type: type, message: message, details: details || {}};
}

// POST (a string body is text/plain: no preflight) -> [status, text]; NET on failure or timeout
function send(path, body) {
  return new Promise(function (ok, fail) {
    var c = new AbortController(), t;
    fetch(base + '/api/widget/v1/' + path, {
      method: 'POST', mode: 'cors', credentials: 'omit', signal: c.signal, body: body
    }).then(function (r) {
      return r.text().then(function (text) { ok([r.status, text]); });
    }).catch(function () { fail(NET); }).then(function () { clearTimeout(t); });
    t = setTimeout(function () { fail(NET); c.abort(); }, timeout);
  });
}

function save(id) {
  sid = +id;
  try { d.cookie = KEY + '=' + id + '; path=/; max-age=31536000; SameSite=Lax'; } catch (e) {}
  try { w.localStorage.setItem(KEY, id); } catch (e) {}
}

// analytics events for a created request, where the page has them and the widget asks (docs/sdk.md)
function track(j, routeKey) {
  var g = j.analytics, n, p;
  if (!g) return;
  n = g.goal;
  p = {routeKey: routeKey, callbackRequestId: j.callbackRequestId};
  try { (w.dataLayer = w.dataLayer || []).push({event: n, perezvon: p}); } catch (e) {}
  try {
    (g.metrikaCounterId ? [[g.metrikaCounterId]] : [].filter.call(w.ym.a || [], function (c) {
      return c[1] == 'init';
    })).forEach(function (c) { w.ym(c[0], 'reachGoal', n, p); });
  } catch (e) {}
  try { w.gtag('event', n, p); } catch (e) {}
}

function method(path, key, names, at, fill) {
  return function () {
    var a = [].slice.call(arguments), cb, done, bad = [], body = ['"site":' + JSON.stringify(site)];
    function finish(ok, data) {
      if (!done && typeof cb == 'function') setTimeout(function () {
        try { cb(!!ok, data); } catch (e) { console.error(e); }
      });
      done = 1;
    }
    try {
      // a callback one place early: the argument before it was left out
      if (typeof a[at - 1] == 'function' && typeof a[at] != 'function') a.splice(at - 1, 0, fill);
      cb = a.splice(at, 1)[0];
      names.split(' ').forEach(function (k, i) {
        var v;
        try { v = JSON.stringify(a[i] === undefined ? null : a[i]); } catch (e) {}
        if (v === undefined) bad.push({name: k, errors: [{message: 'Cannot be sent as JSON'}]});
        body.push('"' + k + '":' + v);
      });
      if (bad.length) return finish(0, err('validation_error', 'Cannot be sent as JSON', {fields: bad}));
      if (!site) return finish(0, err(ERR, 'No ?site= in the ctw.js URL'));
      ready.then(function () {
        return send(path, '{' + body.join(',') + ',"sessionId":' + sid + '}');
      }).then(function (r) {
        var j, c = r[0], ok = c > 199 && c < 300, m = 'Unknown JSON format';
        try { j = JSON.parse(r[1]); } catch (e) { m = ok ? 'JSON parse error' : 'Unexpected HTTP code: ' + c; }
        if (j && typeof j == 'object') {
          if (ok && key in j) {
            if (path == 'requests') track(j, a[0]);
            return finish(1, j);
          }
          if (!ok && typeof j.type == 'string') return finish(0, err(j.type, j.message || '', j.details));
        }
        finish(0, err(ERR, m));
      }).catch(function (e) {
        finish(0, err(ERR, e === NET ? NET : 'Unexpected js exception'));
      });
    } catch (e) {
      finish(0, err(ERR, 'Unexpected js exception'));
    }
  };
}

try {
  s = d.querySelectorAll('script[src*="ctw.js"]');
  s = d.currentScript || s[s.length - 1];
  base = s.src.split('/ctw.js')[0];
  site = new URL(s.src).searchParams.get('site');
  timeout = +s.getAttribute('data-timeout') || timeout;
} catch (e) {}

// session id: stored, else created; calls wait for it up to 3 s after load
try { id = d.cookie.match(/(^|; *)_ct_session_id=(\d+)/)[2]; } catch (e) {}
try { id = id || w.localStorage.getItem(KEY); } catch (e) {}
ready = new Promise(function (go) {
  setTimeout(go, 3000);
  if (NUM.test(id)) return go(save(id));
  q = new URLSearchParams(w.location.search);
  b = {site: site, url: w.location.href, referrer: d.referrer || null, userAgent: navigator.userAgent};
  'Source Medium Campaign Content Term'.split(' ').forEach(function (k) {
    b['utm' + k] = q.get('utm_' + k.toLowerCase());
  });
  if (site) send('session', JSON.stringify(b)).then(function (r) {
    r = JSON.parse(r[1]).sessionId;
    if (NUM.test(r)) save(r);
  }).catch(Boolean).then(go);
}).catch(Boolean);

// the drop-in widget, loaded only where one of the site's widgets has its ui on (docs/sdk.md)
if (site) send('ui', JSON.stringify({site: site})).then(function (r) {
  r = JSON.parse(r[1]).widgets;
  if (!r.length || d.querySelector('perezvon-widget')) return;
  s = d.createElement('perezvon-widget');
  s.config = {base: base, site: site, widgets: r};
  (d.body || d.documentElement).appendChild(s);
  s = d.createElement('script');
  s.src = base + '/ctw-widget.js';
  d.head.appendChild(s);
}).catch(Boolean);

api = {
  getRouteKeyData: method('route-key-data', 'widgetFound', 'routeKey', 1, null),
  createRequest: method('requests', 'callbackRequestId',
    'routeKey phone fields scheduleTime tags unitId customFields', 3, [])
};

// calls queued by the pre-load stub
function run(c) {
  try { api[c[0]].apply(null, c[1]); } catch (e) {}
}
try {
  q = old.q;
  [].slice.call(q).forEach(run);
  q.push = run;
} catch (e) {}
w.ctw = api;
})(window);
