/// <reference path="./wit/interfaces/wsbox-websocket-types.d.ts" />
/// <reference path="./wit/interfaces/wsbox-websocket-connection.d.ts" />
/// <reference path="./wit/interfaces/wsbox-websocket-history.d.ts" />
/// <reference path="./wit/interfaces/wsbox-websocket-presence.d.ts" />
/// <reference path="./wit/interfaces/wsbox-websocket-store.d.ts" />
// Types of the wsbox handler SDK (wsbox.js, rooms.js, store.js), over the `app` world of wit/
// (package wsbox:websocket@0.2.1). Text messages are strings, binary ones Uint8Array.
//
// Errors are values: a call that can fail returns the error's name, a string such as
// 'backpressure' or 'gone' (the WIT enum's case), where it would return undefined or its result
// otherwise; no result is a string, so `typeof result === 'string'` tells them apart.
//
// 64-bit integers (the WIT u64 and s64: history offsets, ages and times to live in ms, store
// counters) are plain numbers, exact up to Number.MAX_SAFE_INTEGER (2^53 - 1): an offset or a
// duration never gets near it, and the envelope a client parses carries offsets as JSON numbers
// too. Arguments also take a bigint. A counter past 2^53 comes back from `store.increment`
// rounded: read its exact decimal with `store.get`.

/** A message from or to a client: text (a string) or binary. */
export type Data = string | Uint8Array;

// The WIT types themselves, generated from wit/ (types.mjs; tests/node checks they match),
// declared by the references at the top.
import type { Message, Request, Response } from 'wsbox:websocket/types@0.2.1';
import type {
  AutoResponseError,
  RequestInfo,
  SendError,
  TopicError,
} from 'wsbox:websocket/connection@0.2.1';
import type { HistoryError } from 'wsbox:websocket/history@0.2.1';
import type { PresenceError } from 'wsbox:websocket/presence@0.2.1';
import type { StoreError } from 'wsbox:websocket/store@0.2.1';

export type {
  AutoResponseError,
  HistoryError,
  Message,
  PresenceError,
  Request,
  RequestInfo,
  Response,
  SendError,
  StoreError,
  TopicError,
};

export interface Handler {
  /** Every HTTP request on the connection; return `accept(request)` to open the WebSocket. */
  handle?(request: Request): Response | Promise<Response>;
  /** The 101 is out: the handler may speak first. */
  onOpen?(): void;
  /** A complete message from the client. */
  onMessage?(data: Data): void;
  /** The alarm set with `setAlarm` is due. */
  onAlarm?(): void;
  /** The connection ended; no call follows. */
  onClose?(code: number, reason: string, clean: boolean): void;
}

/** The app world's `handler` export. */
export interface HandlerExport {
  handle(request: Request): Response | Promise<Response>;
  onOpen(): void;
  onMessage(message: Message): void;
  onAlarm(): void;
  onClose(code: number, reason: string, clean: boolean): void;
}

export function defineHandler(handler: Handler): HandlerExport;
export function header(request: Request | RequestInfo, name: string): string | undefined;
export function isUpgrade(request: Request): boolean;
export function offeredProtocols(request: Request | RequestInfo): string[];
export function accept(request: Request, protocol?: string): Response;
export function respond(status: number, body?: string | Uint8Array, headers?: Record<string, string>): Response;

export function selfId(): string;
export function request(): RequestInfo;
export function send(data: Data): SendError | undefined;
export function sendTo(id: string, data: Data): SendError | undefined;
export function close(code?: number, reason?: string): void;
export function closeOther(id: string, code?: number, reason?: string): SendError | undefined;
export function subscribe(topic: string): TopicError | undefined;
export function unsubscribe(topic: string): boolean;
export function topics(): string[];
export function publish(topic: string, data: Data, includeSelf?: boolean): number;
export function subscribers(topic: string): number;
export function attachment(): Uint8Array;
export function setAttachment(data: string | Uint8Array): { max: number } | undefined;
export function setAlarm(ms: number): void;
export function cancelAlarm(): void;
export function setAutoResponse(request: Data, response: Data): AutoResponseError | undefined;
export function clearAutoResponse(request: Data): boolean;
export function limits(): {
  topics: number;
  topicLength: number;
  attachment: number;
  autoResponses: number;
  autoResponseSize: number;
};

// Topics that remember and who is in them (rooms.js; wit/rooms.wit has the details).

/**
 * Where a message sits in its topic's history: `epoch` (16 hex digits) changes when the history
 * starts anew; `offset` counts from 1 within it. Every message published to a topic with
 * history reaches its clients carrying it: a JSON object gets a first member
 * `"pos":{"epoch":…,"offset":…}`, other text becomes `{"pos":…,"data":TEXT}`, binary gets 16
 * bytes in front (offset, epoch; big-endian).
 */
export interface Position {
  epoch: string;
  offset: number;
}

/** Where `subscribeFrom` starts: after a position (a client's last one), or the last n kept. */
export type Start = { after: Position } | { last: number };

/** A message kept in a history, as published (no envelope). */
export interface Entry {
  position: Position;
  data: Data;
}

/** A subscriber of a topic and the info it set there (empty if none). */
export interface Member {
  id: string;
  info: Uint8Array;
}

/** A page of subscribers; `next` is the `after` of the next page, undefined after the last. */
export interface Page {
  members: Member[];
  next?: string;
}

/** Turns history on for `topic` (or changes its bounds); `maxAgeMs` 0 (the default): no age bound. */
export function enableHistory(topic: string, maxMessages: number, maxAgeMs?: number | bigint): HistoryError | undefined;
/** The position of the last message kept (offset 0 before the first); 'off' without history. */
export function historyHead(topic: string): Position | HistoryError;
/** `publish` to a topic with history: the position the message got and how many it was queued to. */
export function publishKept(
  topic: string,
  data: Data,
  includeSelf?: boolean,
): { position: Position; count: number } | HistoryError;
/**
 * Subscribes from `start`: the host replays what is kept from there, then the live messages,
 * without calling the handler. Returns the topic's head then; 'gone' when `after` is no longer
 * kept (nothing was subscribed: start from `{last: n}`).
 */
export function subscribeFrom(topic: string, start: Start): Position | HistoryError;
/** The last `n` messages kept, oldest first. */
export function history(topic: string, n: number): Entry[] | HistoryError;
/** Sets this connection's info in `topic` (it must be subscribed): a nickname, say, ≤ 256 bytes. */
export function setPresence(topic: string, info: string | Uint8Array): PresenceError | undefined;
/** `topic`'s subscribers on this runner in id order, after `after`, at most `limit` (default and most 1000). */
export function members(topic: string, after?: string, limit?: number): Page;

// The key-value store (store.js; wit/store.wit): namespaces of keys (UTF-8, 1 to 512 bytes)
// and values (at most 1 MiB; a string is stored as UTF-8) that outlive connections and runner
// restarts. Writes return once the host committed them to disk.

/** A value to store: a string (stored as UTF-8) or bytes. */
export type Value = string | Uint8Array;

export interface Store {
  /** The value of `key`, undefined if unset (or its time to live is over). */
  get(namespace: string, key: string): Uint8Array | undefined | StoreError;
  /** Sets `key` to `value`, for `ttlMs` milliseconds if given. */
  set(namespace: string, key: string, value: Value, ttlMs?: number | bigint): StoreError | undefined;
  /** Deletes `key`: whether it was set. */
  delete(namespace: string, key: string): boolean | StoreError;
  /**
   * Keys starting with `prefix` (default: all), in byte order, after `after` if given, at most
   * `limit` (default and most 1000): pass the last one as `after` for the next page.
   */
  keys(namespace: string, prefix?: string, after?: string, limit?: number): string[] | StoreError;
  /**
   * Adds `delta` (default 1) to the decimal integer in `key` (0 if unset) and returns the sum; no
   * connection's addition is ever lost. A negative `delta` is done by the SDK with
   * `compareAndSwap` (componentize-js 0.23 cannot pass the host a negative 64-bit integer,
   * ComponentizeJS#343), which drops the key's time to live.
   */
  increment(namespace: string, key: string, delta?: number | bigint): number | StoreError;
  /**
   * Sets `key` to `next` (unsets it if undefined or null) only if it holds `expected` now
   * (undefined or null: unset), in one step: whether it did.
   */
  compareAndSwap(
    namespace: string,
    key: string,
    expected: Value | undefined | null,
    next: Value | undefined | null,
    ttlMs?: number | bigint,
  ): boolean | StoreError;
}

export const store: Store;
