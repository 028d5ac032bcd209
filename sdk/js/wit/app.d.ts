// Generated from wit/ by sdk/js/types.mjs: do not edit.
/// <reference path="./interfaces/wsbox-websocket-connection.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-handler.d.ts" />
/// <reference path="./interfaces/wsbox-websocket-types.d.ts" />
declare module 'wsbox:websocket/app@0.2.0' {
  export type * as WsboxWebsocketConnection020 from 'wsbox:websocket/connection@0.2.0'; // import wsbox:websocket/connection@0.2.0
  export type * as WsboxWebsocketTypes020 from 'wsbox:websocket/types@0.2.0'; // import wsbox:websocket/types@0.2.0
  export * as handler from 'wsbox:websocket/handler@0.2.0'; // export wsbox:websocket/handler@0.2.0
}
