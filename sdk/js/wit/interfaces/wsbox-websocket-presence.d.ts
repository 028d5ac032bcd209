// Generated from wit/ by sdk/js/types.mjs: do not edit.
declare module 'wsbox:websocket/presence@0.2.1' {
  /**
   * Bytes in a member's info (256).
   */
  export function maxInfo(): number;
  /**
   * Sets this connection's info in `topic`, which it must be subscribed to; kept while
   * the subscription lasts.
   */
  export function setInfo(topic: string, info: Uint8Array): void;
  /**
   * Subscribers of `topic` on this runner whose id is after `after`, at most `limit`
   * (at most 1000) of them.
   */
  export function members(topic: string, after: Id | undefined, limit: number): Page;
  /**
   * A connection id, as in `connection`.
   */
  export type Id = string;
  export interface Member {
    id: Id,
    /**
     * What the member set with `set-info` for this topic (empty if nothing).
     */
    info: Uint8Array,
  }
  export interface Page {
    /**
     * Subscribers in id order.
     */
    members: Array<Member>,
    /**
     * Pass as `after` for the next page; none when this was the last.
     */
    next?: Id,
  }
  /**
   * # Variants
   * 
   * ## `"not-subscribed"`
   * 
   * This connection is not subscribed to that topic.
   * ## `"too-large"`
   * 
   * `info` is longer than `max-info` bytes.
   */
  export type PresenceError = 'not-subscribed' | 'too-large';
}
