// Generated from wit/ by sdk/js/types.mjs: do not edit.
/// <reference path="./wsbox-websocket-types.d.ts" />
declare module 'wsbox:websocket/connection@0.2.1' {
  /**
   * Topics per connection (64 unless the host says otherwise; at least 1).
   */
  export function maxTopics(): number;
  /**
   * Bytes in a topic name (256 unless the host says otherwise; at least 1).
   */
  export function maxTopicLen(): number;
  /**
   * Bytes in an attachment (16 KiB).
   */
  export function maxAttachment(): number;
  /**
   * Auto-response pairs per connection (8).
   */
  export function maxAutoResponses(): number;
  /**
   * Bytes in an auto-response's request, and in its response (2 KiB).
   */
  export function maxAutoResponseSize(): number;
  /**
   * This connection's id.
   */
  export function selfId(): Id;
  /**
   * The request that opened this connection (in `handle`: the request being handled).
   */
  export function request(): RequestInfo;
  /**
   * Queues a message to this connection's client.
   */
  export function send(msg: Message): void;
  /**
   * Queues a message to the connection `to` (this one included). In a cluster
   * (`wsbox-runner --cluster`) `to` may live on another runner (an id's first 8 hex
   * digits name its runner): the call then waits for that runner's answer, one round
   * trip through NATS, which counts toward the call's time limit.
   */
  export function sendTo(to: Id, msg: Message): void;
  /**
   * Starts the close handshake of this connection with `code` (a code that may not be
   * sent becomes 1000) and `reason` (cut to 123 bytes). `on-close` follows when the peer
   * answers or the host gives up waiting. No-op when already closing.
   */
  export function close(code: number, reason: string): void;
  /**
   * Starts the close handshake of the connection `to`; its guest gets `on-close`. Routed
   * like `send-to` when `to` lives on another runner.
   */
  export function closeOther(to: Id, code: number, reason: string): void;
  /**
   * Subscribes this connection to `topic` (UTF-8, 1 to `max-topic-len` bytes).
   * Subscribing twice is not an error.
   */
  export function subscribe(topic: string): void;
  /**
   * Ends a subscription; returns whether there was one.
   */
  export function unsubscribe(topic: string): boolean;
  /**
   * This connection's topics, in no particular order.
   */
  export function topics(): Array<string>;
  /**
   * Sends `msg` to every connection subscribed to `topic` — this one too only if
   * `include-self` (and it is subscribed) — encoding it once. Returns how many
   * connections it was queued to; subscribers over their backpressure bound are skipped
   * (and counted by the host).
   * 
   * In a cluster the message also goes to every other runner with subscribers of
   * `topic`, at most once: while the runner's NATS link is down those copies are dropped
   * (and counted), not queued. A subscriber gets one publisher's messages on one topic in
   * the order they were published. The count returned is of this runner's connections.
   */
  export function publish(topic: string, msg: Message, includeSelf: boolean): number;
  /**
   * How many connections are subscribed to `topic`. In a cluster: on every runner, this
   * runner's count being exact and the others' as they announced it, which lags a change
   * by a few milliseconds while the link is up; a runner not heard from for 3 s (stopped,
   * or cut off) no longer counts. Once a runner's subscribers are counted here, its
   * subscription to the topic is in place, and publishes from here reach them.
   */
  export function subscribers(topic: string): number;
  /**
   * The value last given to `set-attachment` (empty at first). The host keeps it for
   * the connection's life, outside the instance: it is how a handler keeps state across
   * hibernation (see `handler`).
   */
  export function attachment(): Uint8Array;
  /**
   * Replaces the attachment.
   */
  export function setAttachment(data: Uint8Array): void;
  /**
   * Calls `on-alarm` once, `after-ms` milliseconds from now (replacing any alarm set
   * before), even when the client is silent.
   */
  export function setAlarm(afterMs: bigint): void;
  /**
   * Cancels the alarm, if any.
   */
  export function cancelAlarm(): void;
  /**
   * From now on the host answers a message from the client equal to `request` (same
   * kind, same bytes) with `response` itself, without calling the guest — also while
   * the connection is hibernated, without waking it (a keep-alive `ping` → `pong`, text
   * or binary). Setting a request again replaces its response. The pairs are kept for
   * the connection's life, like the attachment.
   */
  export function setAutoResponse(request: Message, response: Message): void;
  /**
   * Stops answering `request` by itself; returns whether it did.
   */
  export function clearAutoResponse(request: Message): boolean;
  export type Message = import('wsbox:websocket/types@0.2.1').Message;
  /**
   * A connection's id: 32 lowercase hex digits (128 random bits), meaningless outside
   * the runner that issued it.
   */
  export type Id = string;
  /**
   * The upgrade request of this connection.
   */
  export interface RequestInfo {
    /**
     * The path of the request target, e.g. `/chat/lobby`.
     */
    path: string,
    /**
     * The query without the `?`, e.g. `nick=ann`; empty when there is none.
     */
    query: string,
    /**
     * Header names (lowercase) and raw values, in order; a name may repeat.
     */
    headers: Array<[string, Uint8Array]>,
    /**
     * The subprotocol announced in the 101, if any.
     */
    protocol?: string,
  }
  /**
   * Why a message was not queued.
   * # Variants
   * 
   * ## `"closed"`
   * 
   * The connection's close frame has been sent (or queued): nothing more can follow.
   * ## `"gone"`
   * 
   * No open connection has that id (never had, or it ended).
   * ## `"backpressure"`
   * 
   * The connection has more than the host's `--max-backpressure` bytes waiting to
   * be written: the message was dropped (or, with `--close-on-backpressure`, the
   * connection is being closed with 1008).
   * ## `"unreachable"`
   * 
   * The id belongs to another runner of the cluster (`--cluster`), which cannot be
   * reached now (the NATS link is down, or it did not answer in time): the message
   * was dropped. A runner that has stopped answers `gone`.
   */
  export type SendError = 'closed' | 'gone' | 'backpressure' | 'unreachable';
  /**
   * Why a subscription was refused.
   * # Variants
   * 
   * ## `"bad-name"`
   * 
   * The name is longer than `max-topic-len` bytes (or empty).
   * ## `"too-many"`
   * 
   * This connection already has `max-topics` subscriptions.
   */
  export type TopicError = 'bad-name' | 'too-many';
  /**
   * The attachment is larger than `max-attachment` bytes.
   */
  export interface TooLarge {
    max: number,
  }
  /**
   * Why an auto-response was refused.
   * # Variants
   * 
   * ## `"too-large"`
   * 
   * The request or the response is longer than `max-auto-response-size` bytes.
   * ## `"too-many"`
   * 
   * This connection already has `max-auto-responses` pairs.
   */
  export type AutoResponseError = 'too-large' | 'too-many';
}
