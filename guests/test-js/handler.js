// The runner's tests for JavaScript handlers (host-runner/tests/js_guest.rs): every import
// through the SDK, driven by text commands on a WebSocket, and faults.
//
//   GET /             200 "test-js"
//   GET /throw        the handler throws in `handle`: 500
//   ws  /             commands, answered in text:
//     id | request | topics | limits | attachment | echo TEXT | bin N (N bytes 0..N-1)
//     sub T | unsub T | pub T TEXT | count T | attach TEXT | alarm MS | cancel
//     to ID TEXT | kick ID | auto REQ RES | unauto REQ | close CODE | throw
//     and `history`, `presence` and `store` in the words of guests/test-py and test-rust,
//     which answer them the same way (host-runner/tests/common/sdk_imports.rs drives all
//     three): rooms.js here.
import {
  accept, attachment, cancelAlarm, clearAutoResponse, close, closeOther, defineHandler,
  isUpgrade, limits, offeredProtocols, publish, request, respond, selfId, send, sendTo,
  setAlarm, setAttachment, setAutoResponse, subscribe, subscribers, topics, unsubscribe,
} from 'wsbox';
import { roomsOrStore } from './rooms.js';

const decoder = new TextDecoder();

function reply(result) {
  send(result === undefined ? 'ok' : String(typeof result === 'object' ? JSON.stringify(result) : result));
}

function command(text) {
  const [verb, a = '', ...rest] = text.split(' ');
  const b = rest.join(' ');
  switch (verb) {
    case 'id': return reply(selfId());
    case 'request': return reply(request());
    case 'topics': return reply(topics());
    case 'limits': return reply(limits());
    case 'attachment': return reply(decoder.decode(attachment()));
    case 'echo': return reply([a, b].filter(Boolean).join(' '));
    case 'bin': return send(Uint8Array.from({ length: Number(a) }, (_, i) => i % 256));
    case 'sub': return reply(subscribe(a));
    case 'unsub': return reply(unsubscribe(a));
    case 'pub': return reply(publish(a, b));
    case 'count': return reply(subscribers(a));
    case 'attach': return reply(setAttachment(a));
    case 'alarm': setAlarm(Number(a)); return reply();
    case 'cancel': cancelAlarm(); return reply();
    case 'to': return reply(sendTo(a, b));
    case 'kick': return reply(closeOther(a, 4001, 'kicked'));
    case 'auto': return reply(setAutoResponse(a, b));
    case 'unauto': return reply(clearAutoResponse(a));
    case 'close': return close(Number(a), 'closed by the handler');
    case 'throw': throw new Error('thrown on request');
    default: return reply(roomsOrStore(text.split(' ')) ?? `unknown command: ${verb}`);
  }
}

export const handler = defineHandler({
  handle(req) {
    if (req.uri === '/throw') throw new Error('thrown in handle');
    if (!isUpgrade(req)) return respond(200, 'test-js\n');
    // The first subprotocol offered, if any.
    return accept(req, offeredProtocols(req)[0]);
  },
  onMessage(data) {
    if (typeof data === 'string') command(data);
    else send(data);
  },
  onAlarm() {
    send('alarm');
  },
});
