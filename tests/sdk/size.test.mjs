// ctw.js is served as is: it must stay small and ES2017.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import vm from 'node:vm';
import {CTW} from './_harness.mjs';

test('ctw.js (the API part) is at most 2560 bytes gzipped', () => {
  const gz = zlib.gzipSync(CTW).length;
  const gz9 = zlib.gzipSync(CTW, {level: 9}).length;
  console.log(`ctw.js: ${Buffer.byteLength(CTW)} bytes, ${gz} gzipped (level 6), ${gz9} (level 9)`);
  assert.ok(gz <= 2560, `ctw.js is ${gz} bytes gzipped, over 2560`);
});

test('ctw.js parses and uses no syntax newer than ES2017', () => {
  assert.doesNotThrow(() => new vm.Script(CTW, {filename: 'ctw.js'}));
  const code = CTW.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/'[^'\n]*'/g, "''");
  for (const [re, what] of [[/\?\./, 'optional chaining'], [/\?\?/, 'nullish coalescing'],
    [/\.\.\.\w/, 'spread/rest (ES2018 in objects)'], [/\bclass\s/, 'class'], [/\basync\b|\bawait\b/, 'async/await'],
    [/catch\s*\{/, 'optional catch binding'], [/\*\*/, 'exponent'], [/\b\d+n\b/, 'BigInt'], [/\.finally\(/, 'Promise.finally'],
    [/\.at\(|\.flat\(|\.flatMap\(|fromEntries|replaceAll/, 'post-ES2017 library call']]) {
    assert.doesNotMatch(code, re, what);
  }
});
