// wsbox-runner (its default echo handler; target/debug/wsbox-runner, built by
// `cargo test --workspace`, or the one in WSBOX_BIN_DIR when test.sh says where it built it)
// against the `ws` package's client with perMessageDeflate: what is agreed for each --deflate
// mode, and the echo of JSON compressed both ways with the bytes on the wire counted by the
// client's socket.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const TIMEOUT = { timeout: 60_000 };
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = join(ROOT, process.env.WSBOX_BIN_DIR ?? 'target/debug', 'wsbox-runner');
const SHARED = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

const runners = [];
after(() => runners.forEach((runner) => runner.kill()));

/** Starts the runner with `flags` on 127.0.0.1:0 and resolves with its address. */
async function start(...flags) {
  const runner = spawn(RUNNER, ['--listen', '127.0.0.1:0', ...flags], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  runners.push(runner);
  const [line] = await once(createInterface({ input: runner.stdout }), 'line');
  const match = line.match(/^wsbox-runner listening on http:\/\/(127\.0\.0\.1:\d+)\/$/);
  assert.ok(match, `the runner announced ${line}`);
  return match[1];
}

/** A `ws` client (threshold 0: it compresses every message) and the agreed header. */
async function connect(address, perMessageDeflate = { threshold: 0 }) {
  const ws = new WebSocket(`ws://${address}/`, { perMessageDeflate });
  // ws emits 'open' in the same tick as 'upgrade'.
  let response;
  ws.once('upgrade', (res) => (response = res));
  await once(ws, 'open');
  return { ws, socket: response.socket, agreed: response.headers['sec-websocket-extensions'] };
}

/** A JSON text of about 470 bytes, like an API's: keys repeat, values vary. */
function jsonMessage(i) {
  return JSON.stringify(
    Array.from({ length: 5 }, (_, k) => ({
      id: i * 10 + k,
      user: `user-${(i + k) % 7}`,
      event: 'price_update',
      symbol: 'ACME',
      price: Math.round((i + k) * 137) / 100,
      currency: 'EUR',
    })),
  );
}

/** Echoes `count` JSON messages one at a time; returns the bytes each way after the 101. */
async function echoBytes(address, count, perMessageDeflate) {
  const { ws, socket, agreed } = await connect(address, perMessageDeflate);
  const [read, written] = [socket.bytesRead, socket.bytesWritten];
  for (let i = 0; i < count; i++) {
    const text = jsonMessage(i);
    ws.send(text);
    const [reply, isBinary] = await once(ws, 'message');
    assert.equal(isBinary, false);
    assert.equal(reply.toString(), text);
  }
  const bytes = { agreed, sent: socket.bytesWritten - written, received: socket.bytesRead - read };
  ws.close(1000);
  await once(ws, 'close');
  return bytes;
}

test('by default the runner agrees to no context takeover either way', TIMEOUT, async () => {
  const address = await start();
  // ws offers `permessage-deflate; client_max_window_bits`.
  const { ws, agreed } = await connect(address, true);
  assert.equal(agreed, SHARED);
  assert.equal(ws.extensions, 'permessage-deflate');
  // Either side of the threshold (128 bytes): sent plain, then compressed.
  for (const text of ['', 'x'.repeat(127), 'x'.repeat(128), 'x'.repeat(100_000)]) {
    ws.send(text);
    const [reply] = await once(ws, 'message');
    assert.equal(reply.toString(), text);
  }
  ws.close(1000);
  await once(ws, 'close');
});

test('JSON echoes compressed both ways in fewer bytes', TIMEOUT, async () => {
  const address = await start();
  const plain = await echoBytes(address, 200, false);
  assert.equal(plain.agreed, undefined);
  const compressed = await echoBytes(address, 200, { threshold: 0 });
  assert.equal(compressed.agreed, SHARED);
  assert.ok(compressed.sent < plain.sent * 0.6, JSON.stringify({ compressed, plain }));
  assert.ok(compressed.received < plain.received * 0.6, JSON.stringify({ compressed, plain }));
});

test('--deflate takeover keeps both contexts across 1000 messages', TIMEOUT, async () => {
  const shared = await echoBytes(await start(), 1000, { threshold: 0 });
  const takeover = await echoBytes(await start('--deflate', 'takeover'), 1000, { threshold: 0 });
  assert.equal(takeover.agreed, 'permessage-deflate; client_max_window_bits=11');
  // The previous messages are in the window: each costs a fraction of what it costs alone.
  assert.ok(takeover.sent < shared.sent * 0.6, JSON.stringify({ takeover, shared }));
  assert.ok(takeover.received < shared.received * 0.6, JSON.stringify({ takeover, shared }));
});

test('a client asking for small windows gets them', TIMEOUT, async () => {
  const address = await start('--deflate', 'takeover');
  // 300 messages of about 470 bytes: the 512-byte window slides many times each way.
  const offer = { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 10 };
  const { agreed } = await echoBytes(address, 300, offer);
  assert.equal(agreed, 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=10');
});

test('--deflate off declines', TIMEOUT, async () => {
  const { ws, agreed } = await connect(await start('--deflate', 'off'), { threshold: 0 });
  assert.equal(agreed, undefined);
  assert.equal(ws.extensions, '');
  ws.send('x'.repeat(1000));
  const [reply] = await once(ws, 'message');
  assert.equal(reply.toString(), 'x'.repeat(1000));
  ws.close(1000);
  await once(ws, 'close');
});
