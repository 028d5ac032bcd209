// Generated from wit/ by sdk/js/types.mjs: do not edit.
/// <reference path="./wsbox-websocket-types.d.ts" />
declare module 'wsbox:websocket/history@0.2.1' {
  /**
   * The host's bound on `bounds.max-messages` (1000 unless the host says otherwise).
   */
  export function maxMessages(): number;
  /**
   * Turns history on for `topic`, or changes its bounds (a smaller bound trims at once).
   */
  export function enable(topic: string, bounds: Bounds): void;
  /**
   * The position of the last message kept for `topic` (offset 0 when none was
   * published in this epoch yet).
   */
  export function head(topic: string): Position;
  /**
   * Publishes as `connection.publish` does (same delivery, same count) and returns the
   * position the message was given with the count.
   */
  export function publish(topic: string, msg: Message, includeSelf: boolean): [Position, number];
  /**
   * Subscribes this connection to `topic` starting at `start`: the host writes what is
   * kept from there on, in order and paced by the connection's backpressure (never
   * dropped for it), then live messages, with no gap and no duplicate at the hand-over,
   * and without calling the guest for any of it — also while it hibernates. Returns the
   * topic's head at the time of the call. Already subscribed: replays nothing.
   */
  export function subscribeFrom(topic: string, start: Start): Position;
  /**
   * The last `n` messages kept for `topic` (at most `max-messages`), oldest first.
   */
  export function last(topic: string, n: number): Array<Entry>;
  export type Message = import('wsbox:websocket/types@0.2.1').Message;
  /**
   * Where a message sits in its topic's history.
   */
  export interface Position {
    /**
     * 16 lowercase hex digits, new whenever the topic's history starts anew (turned
     * on for the first time, or lost): offsets of one epoch say nothing of another.
     */
    epoch: string,
    /**
     * From 1, contiguous within the epoch.
     */
    offset: bigint,
  }
  /**
   * How much a topic keeps: the last `max-messages` messages (at most the host's
   * `max-messages`), none older than `max-age-ms` (0: no age bound), and never more than
   * the host's bytes per topic.
   */
  export interface Bounds {
    maxMessages: number,
    maxAgeMs: bigint,
  }
  /**
   * Where a subscription starts.
   */
  export type Start = StartAfter | StartLast;
  /**
   * After this position: what came later is replayed, then live messages follow.
   */
  export interface StartAfter {
    tag: 'after',
    val: Position,
  }
  /**
   * The last n messages kept (fewer if fewer are kept), then live messages.
   */
  export interface StartLast {
    tag: 'last',
    val: number,
  }
  /**
   * A message as kept, with its position (`message` as published, without envelope).
   */
  export interface Entry {
    position: Position,
    message: Message,
  }
  /**
   * # Variants
   * 
   * ## `"bad-name"`
   * 
   * The topic's name is empty or longer than `max-topic-len`.
   * ## `"off"`
   * 
   * The topic has no history: `enable` it first (on this runner).
   * ## `"gone"`
   * 
   * `after` names a position no longer kept (trimmed, or of another epoch): nothing
   * was subscribed; the application reloads its state and starts from `last`.
   * ## `"too-many"`
   * 
   * This connection already has `max-topics` subscriptions.
   * ## `"unsupported"`
   * 
   * Not available on this runner (history in a cluster).
   */
  export type HistoryError = 'bad-name' | 'off' | 'gone' | 'too-many' | 'unsupported';
}
