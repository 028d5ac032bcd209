// The chat of guests/chat in JavaScript: rooms by path, a nickname from the query, join and
// leave notices with the member count, rooms that remember their last 50 frames, pages that
// resume after a dropped socket, a member list, and the same page (guests/chat/src/page.html,
// bundled as text) and wire format, so that the same browser test runs against all three. See
// guests/chat/src/lib.rs for the HTTP routes and the JSON frames. Built with sdk/js
// (scripts/build-guest.sh chat-js).
//
// The handler keeps no state of its own: the nickname lives in the connection's attachment,
// the member count is the topic's subscriber count and the member list its presence, so an
// instance made after hibernation has all it needs.
import PAGE from '../chat/src/page.html';
import {
  accept, attachment, close, defineHandler, enableHistory, isUpgrade, members, publish,
  request, respond, selfId, send, setAttachment, setPresence, subscribe, subscribeFrom,
  subscribers, unsubscribe,
} from 'wsbox';

const MAX_ROOM = 64;
const MAX_NICK = 24;
const MAX_TEXT = 2000;
/** Messages a room keeps, and a newcomer gets before the live ones. */
const HISTORY = 50;
/** Members listed in a newcomer's `hello`, at most. */
const MAX_LISTED = 1000;

/** The room of `/chat/ROOM`: 1 to 64 ASCII letters, digits, `-`, `_` or `.`. */
function room(path) {
  const match = /^\/chat\/([A-Za-z0-9._-]+)$/.exec(path);
  return match && match[1].length <= MAX_ROOM ? match[1] : undefined;
}

/** The nickname asked for in the query: letters, digits, `-`, `_`, `.`, at most 24. */
function nick(query) {
  const wanted = query.split('&').find((pair) => pair.startsWith('nick='));
  if (wanted === undefined) return undefined;
  let decoded;
  try {
    decoded = decodeURIComponent(wanted.slice(5).replace(/\+/g, ' '));
  } catch {
    decoded = wanted.slice(5);
  }
  // Letters of any script (StarlingMonkey has no Unicode property escapes: a letter is what
  // has a case), ASCII digits, `-`, `_`, `.`.
  const allowed = (c) => /[0-9._-]/.test(c) || c.toLowerCase() !== c.toUpperCase();
  const kept = [...decoded].filter(allowed).slice(0, MAX_NICK).join('');
  return kept === '' ? undefined : kept;
}

/** The position a reconnecting page asks to resume after (`after=EPOCH-OFFSET`), if well-formed. */
function after(query) {
  const wanted = query.split('&').find((pair) => pair.startsWith('after='));
  const match = wanted && /^after=([0-9a-fA-F]{16})-(\d+)$/.exec(wanted);
  return match ? { epoch: match[1], offset: Number(match[2]) } : undefined;
}

/**
 * Subscribes to the room with its history on: from `resume` (a page reconnecting) if the host
 * still keeps it, else the last HISTORY messages. Without history (a runner of a cluster) a
 * plain subscription, and the page is told so by an empty epoch. `{head, resumed}`, or
 * undefined when the host refused the subscription.
 */
function join(topic, resume) {
  if (enableHistory(topic, HISTORY) !== undefined) {
    return subscribe(topic) === undefined ? { head: { epoch: '', offset: 0 }, resumed: false } : undefined;
  }
  if (resume !== undefined) {
    const head = subscribeFrom(topic, { after: resume });
    if (typeof head !== 'string') return { head, resumed: true };
    if (head !== 'gone') return undefined;
  }
  const head = subscribeFrom(topic, { last: HISTORY });
  return typeof head === 'string' ? undefined : { head, resumed: false };
}

/** The nicknames of the room's members, from presence (at most MAX_LISTED). */
function memberNicks(topic) {
  const decoder = new TextDecoder();
  const nicks = [];
  let next;
  do {
    const page = members(topic, next, 1000);
    for (const member of page.members) nicks.push(decoder.decode(member.info));
    next = page.next;
  } while (next !== undefined && nicks.length < MAX_LISTED);
  return nicks.slice(0, MAX_LISTED);
}

const frame = (fields) => JSON.stringify(fields);
const html = (status, body) => respond(status, body, { 'content-type': 'text/html; charset=utf-8' });
const text = (status, body) => respond(status, body, { 'content-type': 'text/plain; charset=utf-8' });
const myNick = () => new TextDecoder().decode(attachment());

export const handler = defineHandler({
  handle(req) {
    const [path, query] = req.uri.split('?', 2);
    if (path === '/') {
      const target = query === undefined ? '/chat/lobby' : `/chat/lobby?${query}`;
      return respond(302, '<!doctype html><a href="/chat/lobby">the lobby</a>\n', {
        location: target,
        'content-type': 'text/html; charset=utf-8',
      });
    }
    if (room(path) === undefined) return text(404, 'no such room\n');
    if (isUpgrade(req)) return accept(req);
    if (req.method !== 'GET') {
      const response = text(405, 'GET only\n');
      response.headers.push(['allow', new TextEncoder().encode('GET')]);
      return response;
    }
    return html(200, PAGE);
  },

  onOpen() {
    const { path, query } = request();
    const name = nick(query) ?? `guest-${selfId().slice(-4)}`;
    const joined = setAttachment(name) === undefined ? join(path, after(query)) : undefined;
    if (joined === undefined) {
      close(1011, "the host's limits are too small");
      return;
    }
    // Shown with this member in the others' `hello`; fails only if not subscribed.
    setPresence(path, name);
    // Sent before the history the host replays once this call returns.
    send(frame({
      type: 'hello',
      nick: name,
      members: memberNicks(path),
      epoch: joined.head.epoch,
      head: joined.head.offset,
      resumed: joined.resumed,
    }));
    publish(path, frame({ type: 'join', nick: name, count: subscribers(path) }), true);
  },

  onMessage(data) {
    if (typeof data !== 'string') {
      close(1003, 'text only');
      return;
    }
    if (data === '') return;
    const said = [...data].slice(0, MAX_TEXT).join('');
    publish(request().path, frame({ type: 'message', nick: myNick(), text: said }), true);
  },

  onClose() {
    const { path } = request();
    // Not subscribed means onOpen gave up: no one was told of a join.
    if (unsubscribe(path)) {
      publish(path, frame({ type: 'leave', nick: myNick(), count: subscribers(path) }), false);
    }
  },
});
