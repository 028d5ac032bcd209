// Type-checked by tests/node (tsc -p sdk/js): a handler written against the SDK's types.
import { accept, defineHandler, isUpgrade, offeredProtocols, publish, respond, send, subscribe } from 'wsbox';
import type { Data, Request, Response } from 'wsbox';

export const handler = defineHandler({
  handle(request: Request): Response {
    if (isUpgrade(request)) return accept(request, offeredProtocols(request)[0]);
    return respond(200, 'hi');
  },
  onOpen() {
    const err = subscribe('room');
    if (err === 'too-many') send('full');
  },
  onMessage(data: Data) {
    publish('room', data);
  },
});
