// The chat of guests/chat in JavaScript: rooms by path, a nickname from the query, join and
// leave notices with the member count, and the same page (guests/chat/src/page.html, bundled
// as text) and wire format, so that the same browser test runs against both. See
// guests/chat/src/lib.rs for the HTTP routes and the JSON frames. Built with sdk/js
// (scripts/build-guest.sh chat-js).
//
// The handler keeps no state of its own: the nickname lives in the connection's attachment
// and the member count is the topic's subscriber count, so an instance made after
// hibernation has all it needs.
import PAGE from '../chat/src/page.html';
import {
  accept, attachment, close, defineHandler, isUpgrade, publish, request, respond, selfId,
  send, setAttachment, subscribe, subscribers, unsubscribe,
} from 'wsbox';

const MAX_ROOM = 64;
const MAX_NICK = 24;
const MAX_TEXT = 2000;

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
    if (setAttachment(name) !== undefined || subscribe(path) !== undefined) {
      close(1011, "the host's limits are too small");
      return;
    }
    send(frame({ type: 'hello', nick: name }));
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
