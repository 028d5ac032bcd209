// A WebSocket server on Node's `http` module whose handshake and framing come only from
// wsbox.wasm (transpiled by jco into ./gen): Node moves bytes, the component speaks RFC 6455.

import { EventEmitter } from 'node:events';
import http from 'node:http';
import { frames, handshake } from './gen/wsbox.js';

export const DEFAULT_LIMITS = { maxFrameSize: 16n << 20n, maxMessageSize: 64n << 20n };

/** The library's permessage-deflate defaults, as the WIT `deflate-options` record. */
export const DEFAULT_DEFLATE = { level: 6, memLevel: 8, maxWindowBits: 15, noContextTakeover: false };

/** The component's request record for an `http.IncomingMessage`. */
function toRequest(req) {
  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    // Node decodes header values as latin1; that round-trips the raw bytes.
    headers.push([req.rawHeaders[i], Buffer.from(req.rawHeaders[i + 1], 'latin1')]);
  }
  return {
    method: req.method,
    uri: req.url,
    version: req.httpVersionMajor * 10 + req.httpVersionMinor,
    headers,
    body: new Uint8Array(),
  };
}

/** Writes the component's response record as an HTTP/1.1 response head (and body). */
function writeResponse(socket, { status, headers, body }) {
  const parts = [Buffer.from(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`)];
  for (const [name, value] of headers) {
    parts.push(Buffer.from(`${name}: `), Buffer.from(value), Buffer.from('\r\n'));
  }
  if (status !== 101) parts.push(Buffer.from(`content-length: ${body.length}\r\n`));
  parts.push(Buffer.from('\r\n'), Buffer.from(body));
  socket.write(Buffer.concat(parts));
}

/**
 * One upgraded connection over a `frames.Session` of either role. Emits 'message'
 * ({tag: 'text'|'binary', val}), 'ping', 'pong', 'close' (the peer's close frame), 'failure'
 * (the close frame we sent for a violation) and 'end' (the transport is gone).
 */
export class Connection extends EventEmitter {
  #socket;
  #session;

  constructor(socket, session) {
    super();
    this.#socket = socket;
    this.#session = session;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.#receive(chunk));
    socket.on('error', () => {}); // a reset peer also ends in 'close'
    socket.on('close', () => this.emit('end'));
  }

  /** Feeds bytes read from the socket (also the `head` left over from the upgrade). */
  receive(bytes) {
    this.#receive(bytes);
  }

  #receive(bytes) {
    const { events, transmit, failure } = this.#session.receive(bytes);
    if (transmit.length > 0) this.#socket.write(transmit);
    for (const event of events) this.emit(event.tag, event.val);
    if (failure) this.emit('failure', failure);
    // RFC 6455 §7.1.1: once both close frames are exchanged the server closes TCP first.
    if (this.#session.isFinished()) this.#socket.end();
  }

  send(message) {
    this.#socket.write(this.#session.send(message));
  }

  sendText(text) {
    this.send({ tag: 'text', val: text });
  }

  sendBinary(bytes) {
    this.send({ tag: 'binary', val: bytes });
  }

  ping(data = new Uint8Array()) {
    this.#socket.write(this.#session.ping(data));
  }

  close(code = 1000, reason = '') {
    this.#socket.write(this.#session.close(code, reason));
  }

  /** Bytes read from and written to the socket so far, HTTP head included. */
  get wire() {
    return { read: this.#socket.bytesRead, written: this.#socket.bytesWritten };
  }
}

/**
 * Completes an upgrade from `server.on('upgrade', ...)`. Returns the Connection, or null
 * after answering a refused handshake (400 with the reason, or 426). With `deflate` (a WIT
 * `deflate-options` record) permessage-deflate is accepted when the client offers it;
 * `connection.deflate` is then the agreed `deflate-params` (else undefined).
 */
export function accept(req, socket, head, { subprotocol, limits = DEFAULT_LIMITS, deflate } = {}) {
  let response;
  let params;
  try {
    if (deflate) {
      ({ response, deflate: params } = handshake.startWithDeflate(toRequest(req), subprotocol, deflate));
    } else {
      response = handshake.start(toRequest(req), subprotocol);
    }
  } catch (error) {
    // jco throws a ComponentError whose payload is the WIT `handshake-error`.
    if (!error.payload) throw error;
    writeResponse(socket, error.payload.response);
    socket.end();
    return null;
  }
  writeResponse(socket, response);
  const session = params
    ? frames.Session.withDeflate('server', limits, params, deflate)
    : new frames.Session('server', limits);
  const connection = new Connection(socket, session);
  connection.deflate = params;
  // After the caller has attached its listeners, and before any later socket read.
  if (head.length > 0) process.nextTick(() => connection.receive(head));
  return connection;
}
