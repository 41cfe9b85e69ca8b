// Every kind of answer (and non-answer) gives exactly one asynchronous callback with the right data.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {startServer, closedPort, loadCtw, invoke, json} from './_harness.mjs';

const NET = 'Request timeout exceeded or connection reset';
let srv;
let mode = {}; // route -> handler override for the current test
const pending = [];

before(async () => {
  srv = await startServer({
    'route-key-data': (req, res) => (mode['route-key-data'] ? mode['route-key-data'](req, res)
      : json(res, 200, {widgetFound: false, widgetData: null})),
    requests: (req, res) => (mode.requests ? mode.requests(req, res) : json(res, 200, {callbackRequestId: 1})),
    session: (req, res) => json(res, 200, {sessionId: 5}),
  });
});
after(async () => {
  for (const res of pending) res.destroy();
  await srv.close();
});

function sdk(extra = {}) {
  return loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, ...extra}).ctw;
}
const create = (ctw) => (cb) => ctw.createRequest('my_form_1', '79001234567', [{name: 'Name', value: 'Ivan'}], cb);
const routeData = (ctw) => (cb) => ctw.getRouteKeyData('my_form_1', cb);

function check(r, success, data) {
  assert.equal(r.calls, 1, 'callback called exactly once');
  assert.equal(r.sync, false, 'callback called asynchronously');
  assert.equal(r.args.length, 2);
  assert.equal(r.success, success);
  assert.deepEqual(r.data, data);
}

test('createRequest success passes the body as data', async () => {
  mode = {requests: (req, res) => json(res, 200, {callbackRequestId: 231113})};
  check(await invoke(create(sdk())), true, {callbackRequestId: 231113});
});

test('getRouteKeyData success passes the parsed body (widgetId included)', async () => {
  const body = {widgetFound: true, widgetData: {widgetId: 3, callCenterWorkingMode: 'non_working_hours',
    collectNonWorkingRequests: false, collectRequests: false,
    workingSchedule: {utcTimezone: 'UTC+03:00', hours: [{hour: 9, dayOfWeek: 1}, {hour: 10, dayOfWeek: 1}]}}};
  mode = {'route-key-data': (req, res) => json(res, 200, body)};
  check(await invoke(routeData(sdk())), true, body);
  mode = {'route-key-data': (req, res) => json(res, 200, {widgetFound: false, widgetData: null})};
  check(await invoke(routeData(sdk())), true, {widgetFound: false, widgetData: null});
});

const ERRORS = [
  [400, 'validation_error', {fields: [{name: 'phone', errors: [{message: 'Must be 11 digits'}]},
    {name: 'tags[2]', errors: [{message: 'Too long'}]}]}],
  [403, 'request_phone_blacklisted', {}],
  [403, 'origin_not_allowed', {origin: 'https://evil.example'}],
  [404, 'request_widget_not_found', {}],
  [409, 'request_non_working_hours', {}],
  [429, 'request_throttle_timeout', {retryAfter: 30}],
  [429, 'request_throttle_count', {retryAfter: 1}],
  [429, 'api_points_exhausted', {}],
  [500, 'server_error', {}],
];

for (const [status, type, details] of ERRORS) {
  test(`HTTP ${status} ${type} reaches the callback as {type, message, details}`, async () => {
    mode = {
      requests: (req, res) => json(res, status, {type, message: `msg ${type}`, details}),
      'route-key-data': (req, res) => json(res, status, {type, message: `msg ${type}`, details}),
    };
    check(await invoke(create(sdk())), false, {type, message: `msg ${type}`, details});
    check(await invoke(routeData(sdk())), false, {type, message: `msg ${type}`, details});
  });
}

test('an error body without details gets details {}', async () => {
  mode = {requests: (req, res) => json(res, 429, {type: 'request_throttle_count', message: 'slow down'})};
  check(await invoke(create(sdk())), false, {type: 'request_throttle_count', message: 'slow down', details: {}});
});

const unknown = (message) => ({type: 'unknown_error', message, details: {}});

test('200 with a body that is not JSON: JSON parse error', async () => {
  mode = {requests: (req, res) => { res.writeHead(200, {'Content-Type': 'application/json'}); res.end('{"callbackRequestId":'); }};
  check(await invoke(create(sdk())), false, unknown('JSON parse error'));
});

test('JSON of the wrong shape: Unknown JSON format', async () => {
  for (const [status, body] of [[200, {}], [200, {id: 1}], [200, 'null'], [200, '[1]'], [200, '"ok"'],
    [400, {error: 'bad'}], [500, {type: 5}]]) {
    mode = {requests: (req, res) => json(res, status, body)};
    check(await invoke(create(sdk())), false, unknown('Unknown JSON format'));
  }
  mode = {'route-key-data': (req, res) => json(res, 200, {callbackRequestId: 1})};
  check(await invoke(routeData(sdk())), false, unknown('Unknown JSON format'));
});

test('unexpected status with an HTML body: Unexpected HTTP code: N', async () => {
  mode = {requests: (req, res) => { res.writeHead(502, {'Content-Type': 'text/html'}); res.end('<html><h1>502 Bad Gateway</h1></html>'); }};
  check(await invoke(create(sdk())), false, unknown('Unexpected HTTP code: 502'));
  mode = {requests: (req, res) => { res.writeHead(503); res.end(); }};
  check(await invoke(create(sdk())), false, unknown('Unexpected HTTP code: 503'));
});

test('connection refused: network error message', async () => {
  const base = await closedPort();
  const env = loadCtw({src: `${base}/ctw.js?site=site_abc`});
  check(await invoke(create(env.ctw)), false, unknown(NET));
  check(await invoke(routeData(env.ctw)), false, unknown(NET));
});

test('server that never answers: timeout (data-timeout) gives the network error message', async () => {
  mode = {requests: (req, res) => { pending.push(res); }};
  const t0 = Date.now();
  const r = await invoke(create(sdk({timeout: 300})));
  check(r, false, unknown(NET));
  const took = Date.now() - t0;
  assert.ok(took >= 280 && took < 2500, `timed out after ${took} ms`);
});

test('timeout while the body is still arriving', async () => {
  mode = {requests: (req, res) => {
    res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': '100'});
    res.write('{"callbackRequestId"');
    pending.push(res);
  }};
  check(await invoke(create(sdk({timeout: 300}))), false, unknown(NET));
});

test('socket destroyed mid-response, and before any response', async () => {
  mode = {requests: (req, res) => {
    res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': '100'});
    res.write('{"callbackRequestId":1');
    setTimeout(() => res.socket.destroy(), 20);
  }};
  check(await invoke(create(sdk())), false, unknown(NET));
  mode = {requests: (req, res) => res.socket.destroy()};
  check(await invoke(create(sdk())), false, unknown(NET));
});

test('an exception inside the SDK: Unexpected js exception', async () => {
  const env = loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, fetch: () => { throw new Error('boom'); }});
  check(await invoke(create(env.ctw)), false, unknown('Unexpected js exception'));
});

test('a fetch that rejects (as browsers do on CORS refusal or offline) is a network error', async () => {
  const env = loadCtw({src: `${srv.base}/ctw.js?site=site_abc`, fetch: () => Promise.reject(new TypeError('Failed to fetch'))});
  check(await invoke(create(env.ctw)), false, unknown(NET));
});
