// The JavaScript SDK's TypeScript types: generated from wit/ and kept in step with it, and
// a handler written against them type-checks (sdk/js/check/handler.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const sdk = fileURLToPath(new URL('../../sdk/js/', import.meta.url));

function run(command, args) {
  const result = spawnSync(command, args, { cwd: sdk, encoding: 'utf8' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}:\n${result.stdout}${result.stderr}`);
}

test('sdk/js/wit is what jco generates from wit/', () => {
  run(process.execPath, ['types.mjs', '--check']);
});

test('a handler type-checks against the SDK types', () => {
  run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.']);
});
