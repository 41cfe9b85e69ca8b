// snippet.html's stub queues calls made before ctw.js loads; ctw.js runs them in order.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {startServer, loadCtw, sleep, SNIPPET_PATH} from './_harness.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv.close());

test('snippet.html: a stub before an async script tag with the ctw.js URL', () => {
  const html = fs.readFileSync(SNIPPET_PATH, 'utf8');
  assert.match(html, /<script async src="\{BASE\}\/ctw\.js\?site=\{siteKey\}"><\/script>/);
  assert.ok(html.indexOf('window') < html.indexOf('async src'), 'stub first');
});

test('queued calls run in order, once each, then window.ctw is the real object', async () => {
  const order = [];
  const spy = (url, init) => {
    const b = JSON.parse(init.body);
    if (!/\/(session|ui)$/.test(url)) order.push(`${url.split('/').pop()}:${b.routeKey}`);
    return fetch(url, init);
  };
  const results = [];
  const cb = (name) => (success, data) => results.push([name, success, data]);
  let stub;
  let stale;
  const env = loadCtw({
    src: `${srv.base}/ctw.js?site=site_abc`,
    fetch: spy,
    preload(w) {
      stub = w.ctw;
      w.ctw.getRouteKeyData('form_a', cb('a'));
      w.ctw.createRequest('form_b', '79001234567', [{name: 'Name', value: 'Ivan'}], cb('b'), null, ['t'], 3, [{name: 'x', value: 'y'}]);
      w.ctw.getRouteKeyData('form_c', cb('c'));
      w.ctw.createRequest('form_d', '79001234567', cb('d')); // loose call through the stub
      stale = w.ctw.createRequest;
      assert.equal(results.length, 0);
    },
  });
  assert.notEqual(env.window.ctw, stub);
  assert.deepEqual(Object.keys(env.window.ctw), ['getRouteKeyData', 'createRequest']);
  assert.equal(results.length, 0, 'no callback ran synchronously during load');
  await sleep(400);
  assert.deepEqual(order, ['route-key-data:form_a', 'requests:form_b', 'route-key-data:form_c', 'requests:form_d']);
  assert.deepEqual(results.map((r) => r[0]).sort(), ['a', 'b', 'c', 'd']);
  assert.ok(results.every((r) => r[1] === true));
  const b = srv.calls('requests').find((e) => e.body.routeKey === 'form_b').body;
  assert.deepEqual(b.customFields, [{name: 'x', value: 'y'}]);
  assert.deepEqual(srv.calls('requests').find((e) => e.body.routeKey === 'form_d').body.fields, []);

  // a reference to the stub's function kept by the page still works after load
  stale('form_e', '79001234567', [], cb('e'));
  await sleep(300);
  assert.deepEqual(results.map((r) => r[0]).sort(), ['a', 'b', 'c', 'd', 'e']);
  assert.equal(results.length, 5, 'each callback exactly once');
});

test('without the stub, loading just defines window.ctw', () => {
  const env = loadCtw({src: `${srv.base}/ctw.js?site=site_abc`});
  assert.deepEqual(Object.keys(env.window.ctw), ['getRouteKeyData', 'createRequest']);
});

test('a foreign window.ctw without a queue is replaced quietly', () => {
  const env = loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, preload(w) { w.ctw = {q: 5}; }});
  assert.deepEqual(Object.keys(env.window.ctw), ['getRouteKeyData', 'createRequest']);
});
