// What the SDK sends: arguments as given, loose calls, local refusals, throwing callbacks, no site.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {startServer, loadCtw, invoke, sleep} from './_harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv.close());

const load = (extra = {}) => loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, ...extra});
const last = (route) => srv.calls(route).at(-1);

test('window.ctw has exactly the two functions', () => {
  const {ctw} = load();
  assert.deepEqual(Object.keys(ctw), ['getRouteKeyData', 'createRequest']);
  assert.equal(typeof ctw.getRouteKeyData, 'function');
  assert.equal(typeof ctw.createRequest, 'function');
});

test('createRequest sends all eight arguments by name, as given, over text/plain', async () => {
  const {ctw} = load();
  const fields = [{name: 'Name', value: 'Ivan'}, {name: 'Last name', value: 'Petrov'}];
  const r = await invoke((cb) => ctw.createRequest('my_form_1', '79001234567', fields, cb,
    '2030-11-24 15:11:00', ['Тег_1', 'Тег_2'], 12345, [{name: 'utm', value: 'x'}]));
  assert.equal(r.success, true);
  const req = last('requests');
  assert.equal(req.method, 'POST');
  assert.equal(req.headers['content-type'], 'text/plain;charset=UTF-8');
  assert.equal(req.headers.cookie, undefined);
  assert.deepEqual(req.body, {
    site: 'site_abc', routeKey: 'my_form_1', phone: '79001234567', fields,
    scheduleTime: '2030-11-24 15:11:00', tags: ['Тег_1', 'Тег_2'], unitId: 12345,
    customFields: [{name: 'utm', value: 'x'}], sessionId: 42,
  });
});

test('optional arguments left out or undefined go as null; values are not normalised', async () => {
  const {ctw} = load();
  await invoke((cb) => ctw.createRequest('my_form_1', '+7 (900) 123-45-67', [], cb));
  assert.deepEqual(last('requests').body, {
    site: 'site_abc', routeKey: 'my_form_1', phone: '+7 (900) 123-45-67', fields: [],
    scheduleTime: null, tags: null, unitId: null, customFields: null, sessionId: 42,
  });
  await invoke((cb) => ctw.createRequest(undefined, 79001234567, {name: 'x'}, cb, undefined, 'tag', '12', undefined));
  assert.deepEqual(last('requests').body, {
    site: 'site_abc', routeKey: null, phone: 79001234567, fields: {name: 'x'},
    scheduleTime: null, tags: 'tag', unitId: '12', customFields: null, sessionId: 42,
  });
});

test('loose call createRequest(routeKey, phone, callback): fields = [] and that callback', async () => {
  const {ctw} = load();
  const r = await invoke((cb) => ctw.createRequest('my_form_1', '79001234567', cb));
  assert.equal(r.calls, 1);
  assert.equal(r.success, true);
  assert.deepEqual(last('requests').body.fields, []);
  assert.equal(last('requests').body.scheduleTime, null);
  // the rest moves up with it
  await invoke((cb) => ctw.createRequest('my_form_1', '79001234567', cb, null, ['t'], 5));
  const b = last('requests').body;
  assert.deepEqual([b.fields, b.scheduleTime, b.tags, b.unitId], [[], null, ['t'], 5]);
});

test('loose call getRouteKeyData(callback): routeKey missing, the server says validation_error', async () => {
  const {ctw} = load();
  const r = await invoke((cb) => ctw.getRouteKeyData(cb));
  assert.equal(r.calls, 1);
  assert.equal(r.sync, false);
  assert.equal(r.success, false);
  assert.equal(r.data.type, 'validation_error');
  assert.equal(r.data.details.fields[0].name, 'routeKey');
  assert.deepEqual(last('route-key-data').body, {site: 'site_abc', routeKey: null, sessionId: 42});
});

test('arguments JSON cannot carry: validation_error named after the argument, nothing sent', async () => {
  const {ctw} = load();
  await sleep(50); // let the session request go first
  const before = srv.log.length;
  const circular = [{name: 'a', value: 'b'}];
  circular[0].self = circular;
  let r = await invoke((cb) => ctw.createRequest('my_form_1', '79001234567', circular, cb));
  assert.equal(r.calls, 1);
  assert.equal(r.sync, false);
  assert.equal(r.success, false);
  assert.equal(r.data.type, 'validation_error');
  assert.equal(typeof r.data.message, 'string');
  assert.deepEqual(r.data.details.fields.map((f) => f.name), ['fields']);
  assert.equal(typeof r.data.details.fields[0].errors[0].message, 'string');

  r = await invoke((cb) => ctw.createRequest('my_form_1', () => 1, [], cb, null, null, 10n));
  assert.deepEqual(r.data.details.fields.map((f) => f.name), ['phone', 'unitId']);

  const evil = {toJSON() { throw new Error('no'); }};
  r = await invoke((cb) => ctw.getRouteKeyData(evil, cb));
  assert.deepEqual(r.data.details.fields.map((f) => f.name), ['routeKey']);
  assert.equal(srv.log.length, before, 'nothing was sent');
});

test('arguments are captured at call time (later mutation is not sent)', async () => {
  const {ctw} = load();
  const fields = [{name: 'Name', value: 'Ivan'}];
  const p = invoke((cb) => ctw.createRequest('my_form_1', '79001234567', fields, cb));
  fields.length = 0;
  await p;
  assert.deepEqual(last('requests').body.fields, [{name: 'Name', value: 'Ivan'}]);
});

test('a throwing callback is called once, reported to console.error, and the SDK keeps working', async () => {
  const env = load();
  let calls = 0;
  env.ctw.createRequest('my_form_1', '79001234567', [], () => { calls++; throw new Error('page bug'); });
  await sleep(300);
  assert.equal(calls, 1);
  assert.equal(env.errors.length, 1);
  assert.match(String(env.errors[0][0]), /page bug/);
  const r = await invoke((cb) => env.ctw.getRouteKeyData('my_form_1', cb));
  assert.equal(r.success, true);
  assert.equal(r.data.widgetFound, true);
});

test('no callback given: the request is still sent and nothing throws', async () => {
  const {ctw} = load();
  const n = srv.calls('requests').length;
  assert.doesNotThrow(() => ctw.createRequest('my_form_1', '79001234567', []));
  assert.doesNotThrow(() => ctw.createRequest('my_form_1', '79001234567', [], 'not a function'));
  assert.doesNotThrow(() => ctw.getRouteKeyData('my_form_1'));
  assert.doesNotThrow(() => ctw.getRouteKeyData());
  await sleep(300);
  assert.equal(srv.calls('requests').length, n + 2);
});

test('a script URL without ?site= sends nothing at all; callbacks get unknown_error', async () => {
  const before = srv.log.length;
  const {ctw} = loadCtw({src: `${srv.base}/ctw.js`});
  const r1 = await invoke((cb) => ctw.getRouteKeyData('my_form_1', cb));
  const r2 = await invoke((cb) => ctw.createRequest('my_form_1', '79001234567', [], cb));
  for (const r of [r1, r2]) {
    assert.equal(r.calls, 1);
    assert.equal(r.sync, false);
    assert.equal(r.success, false);
    assert.equal(r.data.type, 'unknown_error');
    assert.deepEqual(r.data.details, {});
  }
  await sleep(100);
  assert.equal(srv.log.length, before, 'no session and no API request');
});

test('document.currentScript null: base and site come from the last script[src*="ctw.js"]', async () => {
  const {ctw} = loadCtw({src: `${srv.base}/ctw.js?site=site_fallback`, currentScript: false});
  const r = await invoke((cb) => ctw.getRouteKeyData('my_form_1', cb));
  assert.equal(r.success, true);
  assert.equal(last('route-key-data').body.site, 'site_fallback');
});

test('fetch is called with mode cors and credentials omit', async () => {
  const inits = [];
  const spy = (url, init) => { inits.push([url, init]); return fetch(url, init); };
  const {ctw} = load({fetch: spy});
  await invoke((cb) => ctw.getRouteKeyData('my_form_1', cb));
  assert.ok(inits.length >= 1);
  for (const [url, init] of inits) {
    assert.match(url, new RegExp(`^${srv.base}/api/widget/v1/(session|ui|route-key-data)$`));
    assert.equal(init.method, 'POST');
    assert.equal(init.mode, 'cors');
    assert.equal(init.credentials, 'omit');
    assert.equal(typeof init.body, 'string');
    assert.ok(init.signal, 'an AbortSignal is passed');
  }
});
