// An echo in JavaScript: every text and binary message back to its sender, on any path, and
// a short text page for a plain GET. Built with sdk/js (scripts/build-guest.sh echo-js).
import { accept, defineHandler, isUpgrade, respond, send } from 'wsbox';

export const handler = defineHandler({
  handle(request) {
    return isUpgrade(request) ? accept(request) : respond(200, 'wsbox echo (JavaScript)\n');
  },
  onMessage(data) {
    send(data);
  },
});
