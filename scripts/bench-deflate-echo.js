// Echo server on the `ws` package with permessage-deflate on, a peer for scripts/bench-deflate.sh:
//   node bench-deflate-echo.js --port P [--level N] [--threshold BYTES]
// Compression is set as wsbox-runner's defaults are (zlib level 1; messages under 128 bytes go
// out uncompressed; ws's own defaults are level 6 and 1024), so the two are compared at the same
// work per byte. Context takeover is whatever the client's offer asks (ws agrees to
// server_no_context_takeover when offered). Needs `ws` resolvable: the bench script copies this
// file next to the bench copy's node_modules.
'use strict';
const { WebSocketServer } = require('ws');

function flag(name, fallback) {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`bad ${name}`);
  return value;
}

const port = flag('--port', 0);
if (!port) throw new Error('usage: node bench-deflate-echo.js --port P [--level N] [--threshold BYTES]');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: {
    zlibDeflateOptions: { level: flag('--level', 1) },
    threshold: flag('--threshold', 128),
  },
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
