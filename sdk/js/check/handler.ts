// Type-checked by tests/node (tsc -p sdk/js): a handler written against the SDK's types.
import {
  accept, defineHandler, enableHistory, historyHead, isUpgrade, members, offeredProtocols,
  publish, publishKept, respond, send, setPresence, store, subscribe, subscribeFrom,
} from 'wsbox';
import type { Data, Position, Request, Response, StoreError } from 'wsbox';

export const handler = defineHandler({
  handle(request: Request): Response {
    if (isUpgrade(request)) return accept(request, offeredProtocols(request)[0]);
    return respond(200, 'hi');
  },
  onOpen() {
    const err = subscribe('room');
    if (err === 'too-many') send('full');
    if (enableHistory('kept', 50) === undefined) {
      const head: Position | string = subscribeFrom('kept', { last: 50 });
      if (typeof head !== 'string') send(`${head.epoch}-${head.offset + 1}`);
      setPresence('kept', 'ann');
      const names = members('kept').members.map((member) => new TextDecoder().decode(member.info));
      send(names.join(', '));
    }
    const visits: number | StoreError = store.increment('room', 'visits');
    if (typeof visits === 'number') send(`visit ${visits}`);
    const seen = store.get('room', 'seen');
    if (seen instanceof Uint8Array) send(seen);
    store.compareAndSwap('room', 'lock', undefined, 'me', 5000);
  },
  onMessage(data: Data) {
    publish('room', data);
    const kept = publishKept('kept', data, true);
    if (typeof kept !== 'string') send(`${kept.position.offset} to ${kept.count}`);
    const head = historyHead('kept');
    if (head === 'off') send('no history');
  },
});
