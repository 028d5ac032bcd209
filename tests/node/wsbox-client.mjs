// A WebSocket client on Node's `net` module whose framing comes only from wsbox.wasm: Node
// writes the upgrade request and moves bytes; the component offers and checks
// permessage-deflate, computes the accept key and speaks RFC 6455 as the client.

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { frames, handshake } from './gen/wsbox.js';
import { Connection, DEFAULT_LIMITS } from './wsbox-server.mjs';

const MAX_HEAD = 16 << 10;

/** Reads the response head; resolves with it and the bytes that followed it. */
function readHead(socket) {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0 && buffered.length <= MAX_HEAD) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      if (end < 0) reject(new Error('response head too long'));
      else resolve({ head: buffered.subarray(0, end), rest: buffered.subarray(end + 4) });
    };
    const onClose = () => reject(new Error('closed during the handshake'));
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Status code and raw header lines of a response head. */
function parseHead(head) {
  const [statusLine, ...lines] = head.toString('latin1').split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers = lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), Buffer.from(line.slice(colon + 1).trim(), 'latin1')];
  });
  return { status, headers };
}

/**
 * Opens `url` (ws://host:port/path). With `deflate` (a WIT `deflate-options` record) it offers
 * permessage-deflate; `connection.deflate` is then what the server agreed (or undefined).
 * Rejects on a refused upgrade, a wrong accept key, or an extension answer the offer does not
 * allow (the component's `extension-error`, as `error.payload`).
 */
export async function connect(url, { deflate, limits = DEFAULT_LIMITS } = {}) {
  const { hostname, port, pathname } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await once(socket, 'connect');
  const key = randomBytes(16).toString('base64');
  const lines = [
    `GET ${pathname} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (deflate) lines.push(`Sec-WebSocket-Extensions: ${handshake.deflateOffer(deflate)}`);
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  const { head, rest } = await readHead(socket);
  try {
    const { status, headers } = parseHead(head);
    if (status !== 101) throw new Error(`status ${status}`);
    const accept = headers.find(([name]) => name.toLowerCase() === 'sec-websocket-accept');
    if (accept?.[1].toString('latin1') !== handshake.acceptKey(key)) {
      throw new Error('wrong sec-websocket-accept');
    }
    const params = deflate ? handshake.checkDeflateResponse(headers, deflate) : undefined;
    const session = params
      ? frames.Session.withDeflate('client', limits, params, deflate)
      : new frames.Session('client', limits);
    const connection = new Connection(socket, session);
    connection.deflate = params;
    if (rest.length > 0) process.nextTick(() => connection.receive(rest));
    return connection;
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
