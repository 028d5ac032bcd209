// Topics that remember and who is in them: the `history` and `presence` imports
// (wit/rooms.wit) as plain functions. A position is `{epoch, offset}`, the offset a number as
// in the envelope a client parses. Types: wsbox.d.ts.
import * as kept from 'wsbox:websocket/history@0.2.1';
import * as presence from 'wsbox:websocket/presence@0.2.1';
import { fromMessage, int64, number, orError, textOrBytes, toMessage } from './values.js';

const position = (at) => ({ epoch: at.epoch, offset: number(at.offset) });

/** `call`'s position, or its error string. */
function positionOf(call) {
  const result = orError(call);
  return typeof result === 'string' ? result : position(result);
}

/**
 * Turns history on for `topic` (or changes its bounds): the last `maxMessages` (at most the
 * host's bound), none older than `maxAgeMs` (0: no age bound). An error string or undefined.
 */
export const enableHistory = (topic, maxMessages, maxAgeMs = 0) =>
  orError(() => kept.enable(topic, { maxMessages, maxAgeMs: int64(maxAgeMs) }));

/** The position of the last message kept for `topic` (offset 0 before the first), or 'off'. */
export const historyHead = (topic) => positionOf(() => kept.head(topic));

/** Publishes as `publish` does, to a topic with history: `{position, count}`, or an error string. */
export function publishKept(topic, data, includeSelf = false) {
  const result = orError(() => kept.publish(topic, toMessage(data), includeSelf));
  if (typeof result === 'string') return result;
  const [at, count] = result;
  return { position: position(at), count };
}

/**
 * Subscribes to `topic` from `start`, `{after: {epoch, offset}}` or `{last: n}`: the host
 * replays what is kept from there on, then the live messages. The topic's head then, or an
 * error string ('gone': the position is no longer kept, and nothing was subscribed).
 */
export function subscribeFrom(topic, start) {
  let from;
  if (start?.after !== undefined) {
    from = { tag: 'after', val: { epoch: start.after.epoch, offset: int64(start.after.offset) } };
  } else if (start?.last !== undefined) {
    from = { tag: 'last', val: start.last };
  } else {
    throw new TypeError('subscribeFrom starts {after: {epoch, offset}} or {last: n}');
  }
  return positionOf(() => kept.subscribeFrom(topic, from));
}

/** The last `n` messages kept for `topic`, oldest first, as published: `[{position, data}]`. */
export function history(topic, n) {
  const result = orError(() => kept.last(topic, n));
  if (typeof result === 'string') return result;
  return result.map((entry) => ({ position: position(entry.position), data: fromMessage(entry.message) }));
}

/** Sets this connection's info in `topic` (a string or bytes); an error string or undefined. */
export const setPresence = (topic, info) => orError(() => presence.setInfo(topic, textOrBytes(info)));

/**
 * `topic`'s subscribers on this runner in id order, after the id `after` if given, at most
 * `limit`: `{members: [{id, info}], next}`, `next` the `after` of the next page (undefined
 * after the last).
 */
export function members(topic, after = undefined, limit = 1000) {
  const page = presence.members(topic, after ?? undefined, limit);
  return { members: page.members.map(({ id, info }) => ({ id, info })), next: page.next ?? undefined };
}
