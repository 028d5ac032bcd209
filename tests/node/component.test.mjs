// wsbox.wasm under Node (jco): a server whose handshake and framing come only from the
// component, talked to by the `ws` package's client and by raw sockets.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { accept } from './wsbox-server.mjs';

const TIMEOUT = { timeout: 10_000 };

/** An echo server; a text message "close CODE REASON" makes it close the connection. */
function echoServer() {
  const server = http.createServer((req, res) => res.writeHead(426).end());
  const log = [];
  server.on('upgrade', (req, socket, head) => {
    const ws = accept(req, socket, head);
    if (!ws) return;
    ws.on('message', (message) => {
      const command = message.tag === 'text' && message.val.match(/^close (\d+) (.*)$/);
      if (command) ws.close(Number(command[1]), command[2]);
      else ws.send(message);
    });
    ws.on('close', (frame) => log.push({ close: frame }));
    ws.on('failure', (frame) => log.push({ failure: frame }));
  });
  return { server, log };
}

let server;
let log;
let url;

before(async () => {
  ({ server, log } = echoServer());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `ws://127.0.0.1:${server.address().port}/echo`;
});

after(() => server.close());

async function connect() {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  return ws;
}

async function roundTrip(ws, data, options) {
  ws.send(data, options);
  const [reply, isBinary] = await once(ws, 'message');
  return { reply, isBinary };
}

/** Resolves with the server's log entry once it appears. */
async function logged(predicate) {
  for (let i = 0; i < 200; i++) {
    const entry = log.find(predicate);
    if (entry) return entry;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`not logged: ${JSON.stringify(log)}`);
}

test('text echo', TIMEOUT, async () => {
  const ws = await connect();
  const { reply, isBinary } = await roundTrip(ws, 'héllo wörld ✓');
  assert.equal(isBinary, false);
  assert.equal(reply.toString('utf8'), 'héllo wörld ✓');
  ws.close();
  await once(ws, 'close');
});

test('binary echo', TIMEOUT, async () => {
  const ws = await connect();
  const data = Buffer.from([0, 1, 2, 253, 254, 255]);
  const { reply, isBinary } = await roundTrip(ws, data, { binary: true });
  assert.equal(isBinary, true);
  assert.deepEqual(reply, data);
  ws.close();
  await once(ws, 'close');
});

test('1 MB message', TIMEOUT, async () => {
  const ws = await connect();
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
  const { reply, isBinary } = await roundTrip(ws, data, { binary: true });
  assert.equal(isBinary, true);
  assert.equal(reply.length, data.length);
  assert.ok(reply.equals(data));
  ws.close();
  await once(ws, 'close');
});

test('ping is answered with pong', TIMEOUT, async () => {
  const ws = await connect();
  ws.ping(Buffer.from('are you there?'));
  const [payload] = await once(ws, 'pong');
  assert.equal(payload.toString(), 'are you there?');
  ws.close();
  await once(ws, 'close');
});

test('client closes with 4000 and a reason', TIMEOUT, async () => {
  const ws = await connect();
  ws.close(4000, 'client says bye');
  const [code] = await once(ws, 'close');
  assert.equal(code, 4000, 'the server echoes the code');
  const entry = await logged((e) => e.close?.reason === 'client says bye');
  assert.deepEqual(entry.close, { code: 4000, reason: 'client says bye' });
});

test('server closes with 1001', TIMEOUT, async () => {
  const ws = await connect();
  ws.send('close 1001 going away');
  const [code, reason] = await once(ws, 'close');
  assert.equal(code, 1001);
  assert.equal(reason.toString(), 'going away');
});

/** Opens a raw TCP connection and completes the handshake by hand. */
async function rawUpgrade() {
  const socket = net.connect(server.address().port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let received = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    received = Buffer.concat([received, chunk]);
  });
  const ended = once(socket, 'end');
  return { socket, ended, received: () => received };
}

test('an unmasked client frame closes with 1002', TIMEOUT, async () => {
  const raw = await rawUpgrade();
  // Unmasked text frame "hi": a server must fail the connection (RFC 6455 §5.1).
  raw.socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
  await raw.ended;
  const text = raw.received().toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n') + 4;
  assert.match(text.slice(0, headEnd), /^HTTP\/1\.1 101 /);
  assert.match(text, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  const frame = raw.received().subarray(headEnd);
  assert.equal(frame[0], 0x88, 'a close frame');
  assert.equal(frame.readUInt16BE(2), 1002);
  const entry = await logged((e) => e.failure);
  assert.equal(entry.failure.code, 1002);
  raw.socket.destroy();
});

test('a bad handshake gets 400 with the reason', TIMEOUT, async () => {
  const req = http.request({
    host: '127.0.0.1',
    port: server.address().port,
    path: '/echo',
    headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' },
  });
  req.end();
  const [res] = await once(req, 'response');
  assert.equal(res.statusCode, 400);
  let body = '';
  for await (const chunk of res) body += chunk;
  assert.equal(body, 'invalid websocket request: missing or repeated Sec-WebSocket-Key header\n');
});

test('an old protocol version gets 426', TIMEOUT, async () => {
  const ws = new WebSocket(url, { protocolVersion: 8 });
  ws.on('error', () => {});
  const [, res] = await once(ws, 'unexpected-response');
  assert.equal(res.statusCode, 426);
  assert.equal(res.headers['sec-websocket-version'], '13');
  res.destroy();
});
