// The tracking session: created once, stored in a first-party cookie and localStorage, reused,
// attached to calls; failures are silent.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {startServer, loadCtw, invoke, sleep, json} from './_harness.mjs';

let srv;
let sessionHandler = null;
before(async () => {
  srv = await startServer({
    session: (req, res) => (sessionHandler ? sessionHandler(req, res) : json(res, 200, {sessionId: 42})),
  });
});
after(() => srv.close());

const src = () => `${srv.base}/ctw.js?site=site_abc`;

test('first load creates one session with landing data, stores it, attaches it to calls', async () => {
  sessionHandler = null;
  const n = srv.calls('session').length;
  const env = loadCtw({src: src(), href: 'https://shop.example/p?utm_source=ya&utm_medium=cpc&utm_campaign=c1&utm_content=banner&utm_term=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C'});
  const r1 = await invoke((cb) => env.ctw.getRouteKeyData('my_form_1', cb));
  const r2 = await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  assert.equal(r1.success && r2.success, true);
  const sessions = srv.calls('session').slice(n);
  assert.equal(sessions.length, 1);
  assert.deepEqual(sessions[0].body, {
    site: 'site_abc', url: 'https://shop.example/p?utm_source=ya&utm_medium=cpc&utm_campaign=c1&utm_content=banner&utm_term=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C',
    referrer: 'https://search.example/?q=shop', userAgent: 'Mozilla/5.0 (perezvon-test)',
    utmSource: 'ya', utmMedium: 'cpc', utmCampaign: 'c1', utmContent: 'banner', utmTerm: 'купить',
  });
  assert.equal(sessions[0].headers['content-type'], 'text/plain;charset=UTF-8');
  assert.equal(srv.calls('route-key-data').at(-1).body.sessionId, 42);
  assert.equal(srv.calls('requests').at(-1).body.sessionId, 42);
  assert.equal(env.jar.get('_ct_session_id'), '42');
  assert.equal(env.store._ct_session_id, '42');
  assert.equal(env.cookieWrites.length, 1);
  assert.match(env.cookieWrites[0], /^_ct_session_id=42; path=\/; max-age=\d{8}; SameSite=Lax$/);
  assert.ok(+env.cookieWrites[0].match(/max-age=(\d+)/)[1] >= 360 * 86400);
});

test('no UTM and no referrer: nulls', async () => {
  sessionHandler = null;
  const n = srv.calls('session').length;
  loadCtw({src: src(), href: 'https://shop.example/', referrer: ''});
  await sleep(150);
  const b = srv.calls('session')[n].body;
  assert.deepEqual([b.referrer, b.utmSource, b.utmMedium, b.utmCampaign, b.utmContent, b.utmTerm],
    [null, null, null, null, null, null]);
});

test('an existing cookie is reused: no session request, its id is attached', async () => {
  sessionHandler = null;
  const n = srv.calls('session').length;
  const env = loadCtw({src: src(), cookie: 'a=1; _ct_session_id=777; b=2'});
  await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  assert.equal(srv.calls('session').length, n);
  assert.equal(srv.calls('requests').at(-1).body.sessionId, 777);
  assert.equal(env.store._ct_session_id, '777', 'mirrored to localStorage');
});

test('localStorage alone is reused and restores the cookie', async () => {
  sessionHandler = null;
  const n = srv.calls('session').length;
  const env = loadCtw({src: src(), storage: {_ct_session_id: '555'}});
  await invoke((cb) => env.ctw.getRouteKeyData('my_form_1', cb));
  assert.equal(srv.calls('session').length, n);
  assert.equal(srv.calls('route-key-data').at(-1).body.sessionId, 555);
  assert.equal(env.jar.get('_ct_session_id'), '555');
});

test('a slow session is waited for, and created only once for many early calls', async () => {
  sessionHandler = (req, res) => setTimeout(() => json(res, 200, {sessionId: 99}), 400);
  const n = srv.calls('session').length;
  const env = loadCtw({src: src()});
  const rs = await Promise.all([
    invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb)),
    invoke((cb) => env.ctw.getRouteKeyData('my_form_1', cb)),
    invoke((cb) => env.ctw.createRequest('my_form_1', '79001234568', [], cb)),
  ]);
  assert.ok(rs.every((r) => r.success && r.calls === 1));
  assert.equal(srv.calls('session').length, n + 1);
  assert.equal(srv.calls('requests').at(-1).body.sessionId, 99);
  assert.equal(srv.calls('requests').at(-2).body.sessionId, 99);
  assert.equal(srv.calls('route-key-data').at(-1).body.sessionId, 99);
});

test('session errors are silent: calls go without sessionId, nothing stored', async () => {
  for (const h of [
    (req, res) => json(res, 500, {type: 'server_error', message: 'x'}),
    (req, res) => json(res, 200, {sessionId: 'abc'}),
    (req, res) => { res.writeHead(200); res.end('<html>'); },
    (req, res) => res.socket.destroy(),
  ]) {
    sessionHandler = h;
    const env = loadCtw({src: src()});
    const r = await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
    assert.equal(r.success, true);
    assert.equal(srv.calls('requests').at(-1).body.sessionId, null);
    assert.equal(env.jar.has('_ct_session_id'), false);
    assert.equal(env.errors.length, 0);
  }
});

test('a session that never answers delays calls at most 3 s', async () => {
  const held = [];
  sessionHandler = (req, res) => held.push(res);
  const env = loadCtw({src: src(), timeout: 10000});
  const t0 = Date.now();
  const r = await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  const took = Date.now() - t0;
  assert.equal(r.success, true);
  assert.equal(srv.calls('requests').at(-1).body.sessionId, null);
  assert.ok(took >= 2900 && took < 4000, `took ${took} ms`);
  held.forEach((res) => res.destroy());
});

test('cookies and localStorage that throw do not break anything', async () => {
  sessionHandler = null;
  const env = loadCtw({src: src(), storage: 'throw', cookie: 'throw'});
  const r = await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  assert.equal(r.success, true);
  assert.equal(srv.calls('requests').at(-1).body.sessionId, 42, 'kept in memory for this page');
});
