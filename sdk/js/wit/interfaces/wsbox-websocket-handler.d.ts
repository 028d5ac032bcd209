// Generated from wit/ by sdk/js/types.mjs: do not edit.
/// <reference path="./wsbox-websocket-types.d.ts" />
declare module 'wsbox:websocket/handler@0.2.1' {
  /**
   * Handles one HTTP request. A 101 opens the WebSocket; it needs no headers but
   * `sec-websocket-protocol` naming the chosen subprotocol, if any (one the client
   * offered): the host validates the upgrade, computes the accept key and negotiates
   * compression itself, and answers a 101 for a request that is not a valid upgrade with
   * a 500. Any other status is an ordinary response, and the host may send further
   * requests on the connection.
   */
  export function handle(req: Request): Response;
  /**
   * The 101 has been written: the guest may send first.
   */
  export function onOpen(): void;
  /**
   * A complete text or binary message from the client.
   */
  export function onMessage(msg: Message): void;
  /**
   * The WebSocket ended; no call follows. `code` and `reason` are the client's close
   * frame (1005 when it carried no code) when `clean`; otherwise what happened: 1006
   * when the client vanished without a close frame, or the code the host sent when the
   * client broke the protocol (1002, 1007, 1009) or stayed too long (1001 at shutdown,
   * 1000 after an idle or close timeout).
   */
  export function onClose(code: number, reason: string, clean: boolean): void;
  /**
   * The alarm set with `connection.set-alarm` is due.
   */
  export function onAlarm(): void;
  export type Request = import('wsbox:websocket/types@0.2.1').Request;
  export type Response = import('wsbox:websocket/types@0.2.1').Response;
  export type Message = import('wsbox:websocket/types@0.2.1').Message;
}
