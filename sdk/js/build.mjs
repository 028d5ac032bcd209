#!/usr/bin/env node
// Builds a wsbox-runner handler component from a JavaScript or TypeScript file:
//
//   node sdk/js/build.mjs HANDLER.(js|ts) [-o OUT.wasm]
//
// The handler exports `handler` (see wsbox.d.ts, `defineHandler`) and imports the SDK as
// 'wsbox'. esbuild bundles it and the SDK into one ES module (TypeScript's types are
// stripped, not checked), reporting errors with file and line; componentize-js then builds
// the component for the `app` world of wit/ (StarlingMonkey, about 12 MB). Outbound HTTP
// (`fetch`) is not linked yet, so the `http` and `fetch-event` features are disabled. Prints
// the component's path as its last line.
//
// package.json names @bytecodealliance/preview2-shim itself: componentize-js 0.23.0 imports
// it but lists it only among its devDependencies, so `npm ci` would not install it.
import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const sdk = dirname(fileURLToPath(import.meta.url));
const wit = resolve(sdk, '../../wit');

function usage(message) {
  console.error(`build.mjs: ${message}\nusage: node sdk/js/build.mjs HANDLER.(js|ts) [-o OUT.wasm]`);
  process.exit(2);
}

const args = process.argv.slice(2);
let source;
let out;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-o') out = args[++i] ?? usage('-o needs a path');
  else if (args[i].startsWith('-')) usage(`unknown option ${args[i]}`);
  else if (source === undefined) source = args[i];
  else usage(`one handler file, not ${args[i]}`);
}
if (source === undefined) usage('no handler file given');
out ??= join(dirname(source), `${basename(source, extname(source))}.wasm`);

const started = Date.now();
const work = await mkdtemp(join(tmpdir(), 'wsbox-js-'));
try {
  const bundle = join(work, 'handler.js');
  try {
    await build({
      entryPoints: [source],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      outfile: bundle,
      alias: { wsbox: join(sdk, 'wsbox.js') },
      external: ['wsbox:*'],
      // A page or template next to the handler is imported as a string.
      loader: { '.html': 'text', '.txt': 'text' },
      logLevel: 'silent',
    });
  } catch (error) {
    // esbuild's messages carry the file, line and column.
    for (const e of error.errors ?? [error]) {
      const where = e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : '';
      console.error(`${where}${e.text ?? e.message}`);
      if (e.location?.lineText) console.error(`    ${e.location.lineText}`);
    }
    process.exit(1);
  }
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: wit,
    worldName: 'app',
    disableFeatures: ['http', 'fetch-event'],
  });
  // Written aside and renamed into place: a runner (or a second build) never reads half.
  const partial = `${out}.${process.pid}.partial`;
  await writeFile(partial, component);
  await rename(partial, out);
  console.error(`build.mjs: ${source} -> ${component.length} bytes in ${Date.now() - started} ms`);
  console.log(resolve(out));
} finally {
  await rm(work, { recursive: true, force: true });
}
