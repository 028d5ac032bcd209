#!/usr/bin/env node
// The TypeScript types of the `app` world, generated from wit/ into wit/ here by jco's type
// generator: `node types.mjs` writes them, `node types.mjs --check` fails when the ones
// checked in differ from what wit/ gives (tests/node runs it, so they stay true).
//
// jco 1.35's own `jco types` cannot read any path here: its preview2-shim (0.26) gives the
// generator no filesystem preopens by default ("failed to read path for WIT … os error 44").
// This script opens `/` to it, through the very shim module its generator imports.
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const witDir = join(here, '..', '..', 'wit');
const outDir = join(here, 'wit');

const require = createRequire(import.meta.url);
const transpile = require.resolve('@bytecodealliance/jco-transpile');
const generator = createRequire(transpile).resolve(
  '../vendor/js-component-bindgen-component.js',
);
const shim = createRequire(generator).resolve('@bytecodealliance/preview2-shim/filesystem');
const { _setPreopens } = await import(pathToFileURL(shim));
_setPreopens({ '/': '/' });
const { generateGuestTypes } = await import(pathToFileURL(transpile));

const files = await generateGuestTypes(witDir, { worldName: 'app' });
const header = '// Generated from wit/ by sdk/js/types.mjs: do not edit.\n';
const stale = [];
for (const [name, bytes] of Object.entries(files)) {
  const path = join(outDir, name);
  const text = header + Buffer.from(bytes).toString('utf8');
  if (process.argv.includes('--check')) {
    const current = await readFile(path, 'utf8').catch(() => null);
    if (current !== text) stale.push(name);
  } else {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
}
if (stale.length > 0) {
  console.error(`sdk/js/wit is out of date with wit/ (${stale.join(', ')}): run node sdk/js/types.mjs`);
  process.exit(1);
}
console.log(`${Object.keys(files).length} type files ${process.argv.includes('--check') ? 'match wit/' : `written to ${outDir}`}`);
