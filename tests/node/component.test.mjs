// wsbox.wasm under Node (jco): a server whose handshake and framing come only from the
// component, talked to by the `ws` package's client and by raw sockets.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { handshake } from './gen/wsbox.js';
import { connect as wsboxConnect } from './wsbox-client.mjs';
import { accept, DEFAULT_DEFLATE, DEFAULT_LIMITS } from './wsbox-server.mjs';

const TIMEOUT = { timeout: 10_000 };

/** What each path accepts: permessage-deflate options and limits. */
const PATHS = {
  '/echo': {},
  '/deflate': { deflate: DEFAULT_DEFLATE },
  '/deflate-nct': { deflate: { ...DEFAULT_DEFLATE, noContextTakeover: true } },
  '/deflate-1mb': {
    deflate: DEFAULT_DEFLATE,
    limits: { ...DEFAULT_LIMITS, maxMessageSize: 1n << 20n },
  },
};

/**
 * An echo server; a text message "close CODE REASON" makes it close the connection. The
 * log gets each connection ({path, connection}), close frame and failure.
 */
function echoServer() {
  const server = http.createServer((req, res) => res.writeHead(426).end());
  const log = [];
  server.on('upgrade', (req, socket, head) => {
    const ws = accept(req, socket, head, PATHS[req.url] ?? {});
    if (!ws) return;
    log.push({ path: req.url, connection: ws });
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
let base;

before(async () => {
  ({ server, log } = echoServer());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `ws://127.0.0.1:${server.address().port}`;
  url = `${base}/echo`;
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
async function rawUpgrade(path = '/echo', extraHeaders = '') {
  const socket = net.connect(server.address().port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      `${extraHeaders}\r\n`,
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

// permessage-deflate (RFC 7692): `ws` compresses messages of any size (threshold 0).

const WS_DEFLATE = { perMessageDeflate: { threshold: 0 } };

/** The server side of the newest connection to `path`. */
async function serverSide(path) {
  const entries = log.filter((e) => e.path === path);
  return (await logged((e) => e === entries.at(-1) && e.connection)).connection;
}

/** A JSON-like message, similar to its neighbours as chat or telemetry messages are. */
function jsonMessage(i) {
  return JSON.stringify({
    seq: i,
    user: `user-${i % 13}`,
    room: 'lobby',
    text: `message number ${i} from the load generator, nothing to see here`,
    ts: 1_700_000_000_000 + i * 17,
  });
}

/** Sends `count` messages one after the other, checks each echo; returns the wire bytes. */
async function echoMany(path, count) {
  const ws = new WebSocket(`${base}${path}`, WS_DEFLATE);
  await once(ws, 'open');
  assert.match(ws.extensions, /^permessage-deflate/);
  const side = await serverSide(path);
  const before = side.wire;
  let payload = 0;
  for (let i = 0; i < count; i++) {
    const { reply } = await roundTrip(ws, jsonMessage(i));
    assert.equal(reply.toString(), jsonMessage(i));
    payload += jsonMessage(i).length;
  }
  const after = side.wire;
  ws.close();
  await once(ws, 'close');
  return {
    params: side.deflate,
    payload,
    read: after.read - before.read,
    written: after.written - before.written,
  };
}

test('ws negotiates permessage-deflate; a 64 KB JSON echo is compressed both ways', TIMEOUT, async () => {
  const ws = new WebSocket(`${base}/deflate`, WS_DEFLATE);
  await once(ws, 'open');
  assert.match(ws.extensions, /^permessage-deflate/);
  const side = await serverSide('/deflate');
  // ws offers `permessage-deflate; client_max_window_bits`: takeover both ways, 15 bits.
  assert.deepEqual(side.deflate, {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  });
  let text = '';
  for (let i = 0; text.length < 64 << 10; i++) text += jsonMessage(i);
  const binary = Buffer.from(text.slice(0, 32 << 10));
  for (const [data, options] of [[text, {}], [binary, { binary: true }]]) {
    const before = side.wire;
    const { reply, isBinary } = await roundTrip(ws, data, options);
    assert.equal(isBinary, options.binary === true);
    assert.ok(isBinary ? reply.equals(data) : reply.toString() === data);
    const read = side.wire.read - before.read;
    const written = side.wire.written - before.written;
    assert.ok(read < data.length / 4, `ws sent ${read} bytes for ${data.length}`);
    assert.ok(written < data.length / 4, `we sent ${written} bytes for ${data.length}`);
  }
  ws.close();
  await once(ws, 'close');
});

test('context takeover: 200 similar messages cost less than half as much as without', TIMEOUT, async () => {
  const takeover = await echoMany('/deflate', 200);
  const fresh = await echoMany('/deflate-nct', 200);
  assert.equal(fresh.params.serverNoContextTakeover, true);
  assert.equal(fresh.params.clientNoContextTakeover, true);
  assert.ok(fresh.read < fresh.payload && fresh.written < fresh.payload, JSON.stringify(fresh));
  assert.ok(takeover.read < fresh.read / 2, JSON.stringify({ takeover, fresh }));
  assert.ok(takeover.written < fresh.written / 2, JSON.stringify({ takeover, fresh }));
});

test('a message inflating past the limit (zip bomb) closes with 1009', TIMEOUT, async () => {
  const ws = new WebSocket(`${base}/deflate-1mb`, WS_DEFLATE);
  ws.on('error', () => {});
  await once(ws, 'open');
  // 16 MB of one letter: about 16 KB on the wire, 16× the server's 1 MB message limit.
  ws.send('a'.repeat(16 << 20));
  const [code] = await once(ws, 'close');
  assert.equal(code, 1009);
  const side = await serverSide('/deflate-1mb');
  assert.ok(side.wire.read < 64 << 10, `${side.wire.read} bytes read`);
  const entry = await logged((e) => e.failure?.code === 1009);
  assert.match(entry.failure.reason, /message/i);
});

/** A masked frame (key 0, so the payload reads as is) with the given first byte. */
function maskedFrame(firstByte, payload) {
  return Buffer.concat([Buffer.from([firstByte, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

test('RSV1: a pong frame comes uncompressed, RSV1 on a ping or without the extension is 1002', TIMEOUT, async () => {
  const offer = 'Sec-WebSocket-Extensions: permessage-deflate\r\n';
  const raw = await rawUpgrade('/deflate', offer);
  raw.socket.write(maskedFrame(0x89, Buffer.from('hi'))); // ping
  raw.socket.write(maskedFrame(0xc9, Buffer.from('hi'))); // ping with RSV1
  await raw.ended;
  const text = raw.received().toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n') + 4;
  assert.match(text.slice(0, headEnd), /\r\nsec-websocket-extensions: permessage-deflate\r\n/i);
  const frames = raw.received().subarray(headEnd);
  assert.deepEqual([...frames.subarray(0, 4)], [0x8a, 2, 0x68, 0x69], 'pong "hi", no RSV1');
  assert.equal(frames[4], 0x88, 'a close frame, no RSV1');
  assert.equal(frames.readUInt16BE(6), 1002);
  raw.socket.destroy();

  const plain = await rawUpgrade('/deflate'); // no offer: nothing agreed
  plain.socket.write(maskedFrame(0xc1, Buffer.from('hi'))); // text with RSV1
  await plain.ended;
  const reply = plain.received();
  assert.doesNotMatch(reply.toString('latin1'), /sec-websocket-extensions/i);
  const close = reply.subarray(reply.indexOf('\r\n\r\n') + 4);
  assert.equal(close[0], 0x88);
  assert.equal(close.readUInt16BE(2), 1002);
  plain.socket.destroy();
});

/** A `ws` echo server with permessage-deflate on for messages of any size. */
async function wsEchoServer(perMessageDeflate = { threshold: 0 }) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await once(wss, 'listening');
  return wss;
}

/** Resolves with the next message a wsbox connection receives. */
function nextMessage(connection) {
  return once(connection, 'message').then(([message]) => message);
}

test('the component as client: ws server agrees, 150 messages echo compressed', TIMEOUT, async () => {
  const wss = await wsEchoServer();
  try {
    const client = await wsboxConnect(`ws://127.0.0.1:${wss.address().port}/`, {
      deflate: DEFAULT_DEFLATE,
    });
    assert.ok(client.deflate, 'ws accepted the offer');
    const [peer] = wss.clients;
    assert.match(peer.extensions, /^permessage-deflate/);
    const before = client.wire;
    let payload = 0;
    for (let i = 0; i < 150; i++) {
      client.sendText(jsonMessage(i));
      assert.deepEqual(await nextMessage(client), { tag: 'text', val: jsonMessage(i) });
      payload += jsonMessage(i).length;
    }
    const big = Buffer.from(jsonMessage(0).repeat(1000));
    client.sendBinary(big);
    const echoed = await nextMessage(client);
    assert.equal(echoed.tag, 'binary');
    assert.ok(Buffer.from(echoed.val).equals(big));
    payload += big.length;
    const read = client.wire.read - before.read;
    const written = client.wire.written - before.written;
    assert.ok(read < payload / 4 && written < payload / 4, JSON.stringify({ payload, read, written }));
    client.close(1000, 'done');
    const [frame] = await once(client, 'close');
    assert.deepEqual(frame, { code: 1000, reason: 'done' });
  } finally {
    wss.close();
  }
});

test('the component as client: small windows and no takeover are offered and agreed', TIMEOUT, async () => {
  const wss = await wsEchoServer();
  try {
    const options = { ...DEFAULT_DEFLATE, maxWindowBits: 10, noContextTakeover: true };
    const client = await wsboxConnect(`ws://127.0.0.1:${wss.address().port}/`, { deflate: options });
    assert.deepEqual(client.deflate, {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 10,
    });
    for (let i = 0; i < 20; i++) {
      client.sendText(jsonMessage(i).repeat(20));
      assert.deepEqual(await nextMessage(client), { tag: 'text', val: jsonMessage(i).repeat(20) });
    }
    client.close();
    await once(client, 'close');
  } finally {
    wss.close();
  }
});

test('the component as client fails an answer its offer does not allow', TIMEOUT, async () => {
  const headers = [['Sec-WebSocket-Extensions', Buffer.from('permessage-deflate; x-unknown')]];
  assert.throws(
    () => handshake.checkDeflateResponse(headers, DEFAULT_DEFLATE),
    (error) => error.payload === 'invalid-parameter',
  );
  const other = [['sec-websocket-extensions', Buffer.from('x-webkit-deflate-frame')]];
  assert.throws(
    () => handshake.checkDeflateResponse(other, DEFAULT_DEFLATE),
    (error) => error.payload === 'unsupported-extension',
  );
  assert.equal(handshake.checkDeflateResponse([], DEFAULT_DEFLATE), undefined);
});
