// ctw-widget.js, the drop-in widget: its size and syntax, and its pure rules (phone as typed, readable
// colours, page patterns, display schedule, slots from the schedule). Its DOM is tested in Chromium:
// tests/e2e/test_widget_browser.py.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';

const WIDGET = fs.readFileSync(new URL('../../src/perezvon/sdk/ctw-widget.js', import.meta.url), 'utf8');

function rules() {
  let defined;
  const window = {
    HTMLElement: class {},
    customElements: {get: () => undefined, define: (name, cls) => { defined = {name, cls}; }},
  };
  new Function('window', 'document', WIDGET)(window, {});
  assert.equal(defined.name, 'perezvon-widget');
  return defined.cls.rules;
}
const R = rules();
const RU = {callingCode: '7', trunkPrefix: '8'};
const US = {callingCode: '1', trunkPrefix: '1'};

test('ctw-widget.js is at most 8192 bytes gzipped', () => {
  const gz = zlib.gzipSync(WIDGET).length;
  const gz9 = zlib.gzipSync(WIDGET, {level: 9}).length;
  console.log(`ctw-widget.js: ${Buffer.byteLength(WIDGET)} bytes, ${gz} gzipped (level 6), ${gz9} (level 9)`);
  assert.ok(gz <= 8192, `ctw-widget.js is ${gz} bytes gzipped, over 8192`);
});

test('ctw-widget.js uses no syntax newer than ES2017 and never writes markup', () => {
  const code = WIDGET.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/'[^'\n]*'/g, "''");
  for (const [re, what] of [[/\?\./, 'optional chaining'], [/\?\?/, 'nullish coalescing'],
    [/\.\.\.\w/, 'spread/rest'], [/\basync\b|\bawait\b/, 'async/await'], [/catch\s*\{/, 'optional catch binding'],
    [/\*\*/, 'exponent'], [/\.finally\(/, 'Promise.finally'], [/\.at\(|\.flat\(|fromEntries|replaceAll/, 'newer library call']]) {
    assert.doesNotMatch(code, re, what);
  }
  // Everything shown is textContent or text nodes: a visitor's or an admin's text is never parsed as HTML.
  assert.doesNotMatch(WIDGET, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
});

test('a number as people type it becomes the API\'s 11 digits', () => {
  for (const typed of ['+7 (900) 123-45-67', '8 900 123-45-67', '89001234567', '900 123 45 67', '7 900 1234567',
    ' +7-900-123-45-67 ', '8 (900) 123 45 67']) {
    assert.equal(R.normalise(typed, RU), '79001234567', typed);
  }
  assert.equal(R.normalise('(812) 123-45-67', RU), '78121234567', 'a city number without the 8');
  assert.equal(R.normalise('+1 (555) 123-4567', US), '15551234567');
  assert.equal(R.normalise('555 123 4567', US), '15551234567');
  assert.equal(R.normalise('1 555 123 4567', US), '15551234567');
  for (const bad of ['', '12345', '8 900 123-45', '+7 900 123-45-67-89', '+44 20 7946 0958', 'абв', '٧٩٠٠١٢٣٤٥٦٧']) {
    assert.equal(R.normalise(bad, RU), '', bad);
  }
});

test('a number is whole when its digits are all there (a leading 8 waits for 11)', () => {
  assert.equal(R.complete('8 900 123-45-6', RU), false);
  assert.equal(R.complete('8 900 123-45-67', RU), true);
  assert.equal(R.complete('900 123-45-67', RU), true);
  assert.equal(R.complete('+7 900 123-45-6', RU), false);
  assert.equal(R.complete('7 900 123-45-6', RU), false, 'a leading 7 waits for 11 digits too');
  assert.equal(R.complete('7 900 123-45-67', RU), true);
  assert.equal(R.complete('555 123 456', US), false);
  assert.equal(R.complete('555 123 4567', US), true);
  assert.equal(R.pretty('79001234567', RU), '+7 (900) 123-45-67');
  assert.equal(R.pretty('15551234567', US), '+1 (555) 123-4567');
  assert.equal(R.pretty('49301234567', {callingCode: '49'}), '+49 301 234 567');
});

test('text on the admin\'s colour is black or white, whichever passes WCAG AA (4.5:1) for every colour', () => {
  assert.equal(R.textOn('#ffd400'), '#000000');
  assert.equal(R.textOn('#1a56db'), '#ffffff');
  assert.ok(Math.abs(R.contrast('#000000', '#ffffff') - 21) < 1e-9);
  let worst = 21;
  for (let r = 0; r < 256; r += 17) for (let g = 0; g < 256; g += 17) for (let b = 0; b < 256; b += 17) {
    const hex = '#' + [r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('');
    worst = Math.min(worst, R.contrast(hex, R.textOn(hex)));
  }
  console.log(`lowest contrast of the chosen text colour over 4096 colours: ${worst.toFixed(2)}:1`);
  assert.ok(worst >= 4.5, `contrast ${worst}`);
});

test('page patterns: * matches anything, ! excludes, /paths match path and query', () => {
  const at = (href, pages) => R.pageAllowed(pages, href);
  assert.equal(at('https://shop.example/', []), true);
  assert.equal(at('https://shop.example/catalog/roses?x=1', ['/catalog/*']), true);
  assert.equal(at('https://shop.example/cart', ['/catalog/*']), false);
  assert.equal(at('https://shop.example/catalog/cart', ['/catalog/*', '!*/cart']), false);
  assert.equal(at('https://shop.example/about', ['!/cart']), true);
  assert.equal(at('https://shop.example/cart', ['!/cart']), false);
  assert.equal(at('https://promo.shop.example/x', ['https://promo.*']), true);
  assert.equal(at('https://shop.example/a.b', ['/a?b']), false, 'only * is special');
});

test('the display schedule is read on the call center\'s clock', () => {
  const rule = {days: [1, 2, 3, 4, 5], fromHour: 9, toHour: 18};
  const monday10Moscow = Date.UTC(2026, 10, 30, 7, 0);  // Mon 30 Nov 2026 10:00 at UTC+03:00
  assert.equal(R.displayAllowed(rule, 'UTC+03:00', monday10Moscow), true);
  assert.equal(R.displayAllowed(rule, 'UTC-05:00', monday10Moscow), false, '02:00 in New York');
  assert.equal(R.displayAllowed({...rule, days: [6, 7]}, 'UTC+03:00', monday10Moscow), false);
  assert.equal(R.displayAllowed(null, 'UTC+03:00', monday10Moscow), true);
});

test('slots are the coming working hours, as scheduleTime in the call center\'s zone', () => {
  const now = Date.UTC(2026, 10, 30, 19, 30);  // Mon 22:30 at UTC+03:00
  const schedule = {utcTimezone: 'UTC+03:00', hours: [{dayOfWeek: 2, hour: 9}, {dayOfWeek: 2, hour: 10}, {dayOfWeek: 1, hour: 9}]};
  const got = R.slots(schedule, now, 24);
  assert.deepEqual(got.map((s) => s.value), ['2026-12-01 09:00:00', '2026-12-01 10:00:00', '2026-12-07 09:00:00']);
  assert.equal(got[0].at, Date.UTC(2026, 11, 1, 6, 0));
  assert.equal(R.slots(schedule, now, 2).length, 2);
  assert.deepEqual(R.slots({utcTimezone: 'UTC+03:00', hours: []}, now, 24), []);
});

test('the widget\'s own colours pass WCAG AA on its white dialog', () => {
  const css = WIDGET.slice(WIDGET.indexOf('var CSS'), WIDGET.indexOf('var PHONE_ICON'));
  const text = {'#1b1f24': 'text', '#4a525c': 'hints and consent', '#b3261e': 'errors'};
  for (const [colour, what] of Object.entries(text)) {
    assert.ok(css.includes(colour), `${colour} is used`);
    assert.ok(R.contrast(colour, '#ffffff') >= 4.5, `${what}: ${R.contrast(colour, '#ffffff')}`);
  }
  // Field borders are not text: 3:1 (WCAG 1.4.11) for the input's edge.
  assert.ok(R.contrast('#6b7480', '#ffffff') >= 3);
});
