// Generated from wit/ by sdk/js/types.mjs: do not edit.
/// <reference path="./interfaces/wsbox-websocket-connection.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-handler.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-history.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-presence.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-store.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-types.d.ts" />
declare module 'wsbox:websocket/app@0.2.1' {
  export type * as WsboxWebsocketConnection021 from 'wsbox:websocket/connection@0.2.1'; // import wsbox:websocket/connection@0.2.1
  export type * as WsboxWebsocketHistory021 from 'wsbox:websocket/history@0.2.1'; // import wsbox:websocket/history@0.2.1
  export type * as WsboxWebsocketPresence021 from 'wsbox:websocket/presence@0.2.1'; // import wsbox:websocket/presence@0.2.1
  export type * as WsboxWebsocketStore021 from 'wsbox:websocket/store@0.2.1'; // import wsbox:websocket/store@0.2.1
  export type * as WsboxWebsocketTypes021 from 'wsbox:websocket/types@0.2.1'; // import wsbox:websocket/types@0.2.1
  export * as handler from 'wsbox:websocket/handler@0.2.1'; // export wsbox:websocket/handler@0.2.1
}
