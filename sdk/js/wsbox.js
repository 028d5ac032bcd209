// The wsbox handler SDK for JavaScript and TypeScript: the `app` world's imports as plain
// functions (strings for text, Uint8Array for binary; errors returned as values) — `connection`
// here, `history` and `presence` in rooms.js, `store` in store.js —, an `accept` that answers
// an upgrade with a bare 101 (the runner does the handshake), and `defineHandler`, which turns
// an object with any of `handle`, `onOpen`, `onMessage`, `onAlarm`, `onClose` into the world's
// `handler` export. Types: wsbox.d.ts.
import * as connection from 'wsbox:websocket/connection@0.2.1';
import { fromMessage, orError, textOrBytes, toMessage } from './values.js';

export { enableHistory, history, historyHead, members, publishKept, setPresence, subscribeFrom } from './rooms.js';
export { store } from './store.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The value of the request's header `name` (case-insensitive), decoded; undefined if absent. */
export function header(request, name) {
  const wanted = name.toLowerCase();
  for (const [key, value] of request.headers) {
    if (key.toLowerCase() === wanted) return decoder.decode(value);
  }
  return undefined;
}

/** Whether the request asks for a WebSocket (`upgrade: websocket`). */
export function isUpgrade(request) {
  return (header(request, 'upgrade') ?? '').toLowerCase() === 'websocket';
}

/** The subprotocols the client offered, in its order of preference. */
export function offeredProtocols(request) {
  const offered = [];
  for (const [key, value] of request.headers) {
    if (key.toLowerCase() !== 'sec-websocket-protocol') continue;
    for (const protocol of decoder.decode(value).split(',')) {
      const name = protocol.trim();
      if (name) offered.push(name);
    }
  }
  return offered;
}

/**
 * Accepts the upgrade: a bare 101, announcing `protocol` if given (it must be one the client
 * offered). The runner validates the request, computes the accept key and negotiates
 * compression; a 101 for a request that is not a valid upgrade becomes a 500.
 */
export function accept(request, protocol) {
  const headers = protocol === undefined ? [] : [['sec-websocket-protocol', encoder.encode(protocol)]];
  return { status: 101, headers, body: new Uint8Array() };
}

/** An ordinary HTTP response: `body` a string (UTF-8) or bytes. */
export function respond(status, body = '', headers = {}) {
  const list = Object.entries(headers).map(([name, value]) => [name, encoder.encode(value)]);
  if (typeof body === 'string' && !('content-type' in headers)) {
    list.push(['content-type', encoder.encode('text/plain; charset=utf-8')]);
  }
  const bytes = typeof body === 'string' ? encoder.encode(body) : body;
  return { status, headers: list, body: bytes };
}

/** This connection's id: what another connection passes to `sendTo` and `closeOther`. */
export const selfId = () => connection.selfId();
/** The upgrade request: path, query, headers, the subprotocol announced. */
export const request = () => connection.request();
/** Sends to this connection's client; an error string ('closed', 'backpressure') or undefined. */
export const send = (data) => orError(() => connection.send(toMessage(data)));
/** Sends to the connection `id` (on any runner of a cluster); an error string or undefined. */
export const sendTo = (id, data) => orError(() => connection.sendTo(id, toMessage(data)));
/** Starts the close handshake of this connection. */
export const close = (code = 1000, reason = '') => connection.close(code, reason);
/** Closes the connection `id`; an error string or undefined. */
export const closeOther = (id, code = 1000, reason = '') =>
  orError(() => connection.closeOther(id, code, reason));
/** Subscribes this connection to `topic`; an error string ('bad-name', 'too-many') or undefined. */
export const subscribe = (topic) => orError(() => connection.subscribe(topic));
/** Unsubscribes; whether it was subscribed. */
export const unsubscribe = (topic) => connection.unsubscribe(topic);
/** The topics this connection is subscribed to. */
export const topics = () => connection.topics();
/** Sends to every subscriber of `topic` (this connection too if `includeSelf`); how many. */
export const publish = (topic, data, includeSelf = false) =>
  connection.publish(topic, toMessage(data), includeSelf);
/** How many connections are subscribed to `topic`. */
export const subscribers = (topic) => connection.subscribers(topic);
/** The bytes this connection keeps across hibernation. */
export const attachment = () => connection.attachment();
/** Replaces the attachment; an error ({max}) when over --max-attachment, else undefined. */
export const setAttachment = (data) => orError(() => connection.setAttachment(textOrBytes(data)));
/** Calls `onAlarm` after `ms` milliseconds (replacing an alarm set before). */
export const setAlarm = (ms) => connection.setAlarm(BigInt(ms));
/** Cancels the alarm. */
export const cancelAlarm = () => connection.cancelAlarm();
/** The runner answers `request` with `response` itself, without waking the handler. */
export const setAutoResponse = (requestData, responseData) =>
  orError(() => connection.setAutoResponse(toMessage(requestData), toMessage(responseData)));
/** Removes an auto-response; whether there was one. */
export const clearAutoResponse = (requestData) => connection.clearAutoResponse(toMessage(requestData));
/** The runner's limits for this connection's topics, attachment and auto-responses. */
export const limits = () => ({
  topics: connection.maxTopics(),
  topicLength: connection.maxTopicLen(),
  attachment: connection.maxAttachment(),
  autoResponses: connection.maxAutoResponses(),
  autoResponseSize: connection.maxAutoResponseSize(),
});

/** By default: a WebSocket on any path, else 404. */
function defaultHandle(req) {
  return isUpgrade(req) ? accept(req) : respond(404, 'not found\n');
}

/**
 * The `handler` export of the app world from an object with any of `handle(request)`,
 * `onOpen()`, `onMessage(data)` (a string or a Uint8Array), `onAlarm()` and
 * `onClose(code, reason, clean)`. Export it as `handler`:
 *
 *     export const handler = defineHandler({ onMessage: (data) => send(data) });
 */
export function defineHandler(handler) {
  return {
    handle: (req) => (handler.handle ?? defaultHandle)(req),
    onOpen: () => handler.onOpen?.(),
    onMessage: (message) => handler.onMessage?.(fromMessage(message)),
    onAlarm: () => handler.onAlarm?.(),
    onClose: (code, reason, clean) => handler.onClose?.(code, reason, clean),
  };
}
