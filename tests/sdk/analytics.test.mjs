// ctw.js on a created request: the analytics events the widget's settings ask for, where the page has
// dataLayer, Yandex Metrica's ym or GA4's gtag; and the loader of the drop-in widget.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {startServer, loadCtw, invoke, json, sleep} from './_harness.mjs';

let srv;
let nextAnswer;
before(async () => {
  srv = await startServer({
    requests: (req, res) => json(res, 200, nextAnswer),
    ui: (req, res) => json(res, 200, {widgets: req.body.site === 'with_ui' ? [{routeKey: 'my_form_1', ui: {}}] : []}),
  });
});
after(() => srv.close());

function page(site = 'site_abc', extra = {}) {
  const seen = {gtag: [], ym: []};
  const env = loadCtw({
    src: `${srv.base}/ctw.js?site=${site}`,
    preload(w) {
      w.dataLayer = [{event: 'gtm.js'}];
      w.gtag = (...a) => seen.gtag.push(a);
      w.ym = (...a) => seen.ym.push(a);
      w.ym.a = [[111, 'init', {}], [111, 'hit', '/'], [222, 'init', {}]];
      Object.assign(w, extra);
    },
  });
  return {...env, seen};
}

test('switched on: one dataLayer event, reachGoal on the named counter, a GA4 event, then the callback', async () => {
  nextAnswer = {callbackRequestId: 5, statusToken: 't', analytics: {goal: 'callback_ok', metrikaCounterId: 4242}};
  const env = page();
  const r = await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  assert.equal(r.success, true);
  assert.equal(r.data.callbackRequestId, 5);
  const params = {routeKey: 'my_form_1', callbackRequestId: 5};
  assert.deepEqual(env.window.dataLayer.slice(1), [{event: 'callback_ok', perezvon: params}]);
  assert.deepEqual(env.seen.ym, [[4242, 'reachGoal', 'callback_ok', params]]);
  assert.deepEqual(env.seen.gtag, [['event', 'callback_ok', params]]);
});

test('no counter named: every counter the page initialised gets the goal', async () => {
  nextAnswer = {callbackRequestId: 6, analytics: {goal: 'g'}};
  const env = page();
  await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  assert.deepEqual(env.seen.ym.map((c) => c[0]), [111, 222]);
});

test('switched off (no analytics in the answer), or a refusal: nothing is sent to analytics', async () => {
  nextAnswer = {callbackRequestId: 7};
  const env = page();
  await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  await invoke((cb) => env.ctw.getRouteKeyData('my_form_1', cb));
  assert.equal(env.window.dataLayer.length, 1);
  assert.deepEqual(env.seen, {gtag: [], ym: []});
});

test('a page without dataLayer gets one; broken ym or gtag never stop the callback', async () => {
  nextAnswer = {callbackRequestId: 8, analytics: {goal: 'g'}};
  const env = loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, preload(w) {
    w.gtag = () => { throw new Error('broken gtag'); };
    w.ym = 'not a function';
  }});
  const r = await invoke((cb) => env.ctw.createRequest('my_form_1', '79001234567', [], cb));
  assert.equal(r.success, true);
  assert.equal(r.calls, 1);
  assert.deepEqual(env.window.dataLayer, [{event: 'g', perezvon: {routeKey: 'my_form_1', callbackRequestId: 8}}]);
});

function fakeDom() {
  const made = [];
  const node = (tag) => ({tag, children: [], appendChild(c) { this.children.push(c); return c; }});
  return {made, dom: {
    createElement(tag) { const n = node(tag); made.push(n); return n; },
    querySelector: () => null,
    head: node('head'), body: node('body'),
  }};
}

test('the widget file is loaded only when a widget of the site has its ui on', async () => {
  const off = fakeDom();
  loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, dom: off.dom});
  const on = fakeDom();
  loadCtw({src: `${srv.base}/ctw.js?site=with_ui`, dom: on.dom});
  await sleep(300);
  assert.deepEqual(off.made, []);
  const [widget, script] = on.made;
  assert.equal(widget.tag, 'perezvon-widget');
  assert.deepEqual(widget.config, {base: srv.base, site: 'with_ui', widgets: [{routeKey: 'my_form_1', ui: {}}]});
  assert.equal(on.dom.body.children[0], widget);
  assert.equal(script.src, `${srv.base}/ctw-widget.js`);
  assert.equal(on.dom.head.children[0], script);
  const lookUps = srv.calls('ui').map((e) => e.body);
  assert.deepEqual(lookUps.filter((b) => b.site === 'with_ui'), [{site: 'with_ui'}]);
});
