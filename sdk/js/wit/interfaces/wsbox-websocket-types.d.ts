// Generated from wit/ by sdk/js/types.mjs: do not edit.
declare module 'wsbox:websocket/types@0.2.1' {
  /**
   * An HTTP request as the host received it.
   */
  export interface Request {
    /**
     * The method, e.g. "GET".
     */
    method: string,
    /**
     * The request target as sent: origin form ("/chat?room=1").
     */
    uri: string,
    /**
     * The HTTP version: 10 for HTTP/1.0, 11 for HTTP/1.1.
     */
    version: number,
    /**
     * Header names (any case) and raw values, in order; a name may repeat.
     */
    headers: Array<[string, Uint8Array]>,
    /**
     * The request body (empty for upgrade requests).
     */
    body: Uint8Array,
  }
  /**
   * An HTTP response for the host to send.
   */
  export interface Response {
    /**
     * The status code; 101 accepts a WebSocket upgrade.
     */
    status: number,
    /**
     * Header names and raw values, in order. The host that sends the response owns the
     * connection and the message framing: it sets `content-length` from the body and
     * drops what the guest set of `content-length`, `transfer-encoding`, `connection`
     * (and the headers it names), `keep-alive`, `te`, `trailer` and `proxy-*`, and of
     * `upgrade` except on a 101, to which it adds `connection: upgrade`.
     */
    headers: Array<[string, Uint8Array]>,
    /**
     * The body; must be empty for a 101.
     */
    body: Uint8Array,
  }
  /**
   * Why an upgrade request was refused, as in `rouille::websocket`.
   * # Variants
   * 
   * ## `"invalid-websocket-request"`
   * 
   * Not a valid RFC 6455 §4.2.1 upgrade request.
   * ## `"wrong-subprotocol"`
   * 
   * The required subprotocol was not offered by the client.
   */
  export type WebsocketError = 'invalid-websocket-request' | 'wrong-subprotocol';
  /**
   * A refused upgrade: the kind, a human-readable reason, and the ready-made response
   * (400 with the reason, or 426 with `sec-websocket-version: 13`).
   */
  export interface HandshakeError {
    kind: WebsocketError,
    reason: string,
    response: Response,
  }
  /**
   * A complete WebSocket message.
   */
  export type Message = MessageText | MessageBinary;
  /**
   * Valid UTF-8 text.
   */
  export interface MessageText {
    tag: 'text',
    val: string,
  }
  /**
   * Binary data.
   */
  export interface MessageBinary {
    tag: 'binary',
    val: Uint8Array,
  }
  /**
   * The code and reason of a close frame. Code 1005 means the frame carried no code.
   */
  export interface CloseFrame {
    code: number,
    reason: string,
  }
  /**
   * Size limits enforced on received data; exceeding either closes with 1009.
   */
  export interface Limits {
    /**
     * The largest payload one frame may declare.
     */
    maxFrameSize: bigint,
    /**
     * The largest message, all fragments together.
     */
    maxMessageSize: bigint,
  }
  /**
   * How this endpoint is willing to compress with permessage-deflate (RFC 7692). Values
   * out of range are clamped. The library's defaults are level 6, mem-level 8,
   * max-window-bits 15 and context takeover allowed; for many connections prefer a small
   * window and mem-level (11 and 4: about 32 KB per connection both ways with context
   * takeover) or no context takeover (no deflate memory kept between messages).
   */
  export interface DeflateOptions {
    /**
     * zlib's compression level, 0 (store) to 9 (smallest).
     */
    level: number,
    /**
     * zlib's `memLevel`, 1 to 9: the compressor's hash table and output buffer cost
     * 2^(mem-level + 9) bytes, per connection when context takeover is agreed.
     */
    memLevel: number,
    /**
     * The largest LZ77 window, as a power of two, 9 to 15, in both directions: our
     * compressor uses no larger one, and the peer is asked for no larger one (or, if it
     * cannot be capped, for no context takeover). A window costs 2^(bits + 2) bytes to
     * compress and 2^bits to decompress.
     */
    maxWindowBits: number,
    /**
     * Ask for (and use) no context takeover in both directions: each message is
     * compressed on its own, worse for many small similar messages, and no deflate
     * state outlives a call.
     */
    noContextTakeover: boolean,
  }
  /**
   * The permessage-deflate parameters a handshake agreed on (RFC 7692 §7.1), as the
   * server's 101 states them. A window given as `none` was not negotiated: 15 bits.
   */
  export interface DeflateParams {
    /**
     * The server resets its compressor after every message.
     */
    serverNoContextTakeover: boolean,
    /**
     * The client resets its compressor after every message.
     */
    clientNoContextTakeover: boolean,
    /**
     * The largest window the server compresses with, 8 to 15.
     */
    serverMaxWindowBits?: number,
    /**
     * The largest window the client compresses with, 8 to 15.
     */
    clientMaxWindowBits?: number,
  }
}
