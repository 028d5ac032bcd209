// The `store` import (wit/store.wit): a key-value store the host keeps, in namespaces. Values
// are bytes (a string is stored as UTF-8); every call returns its result or the error's name
// as a string ('bad-key', 'too-large', 'quota', …), never throws one. Types: wsbox.d.ts.
import * as host from 'wsbox:websocket/store@0.2.1';
import { int64, number, orError, textOrBytes } from './values.js';

/** A time to live: undefined (none) or milliseconds. */
const ttl = (ms) => (ms === undefined || ms === null ? undefined : int64(ms));
/** An optional value: undefined or null for none. */
const maybe = (value) => (value === undefined || value === null ? undefined : textOrBytes(value));

/** The key-value store; see wsbox.d.ts for each function. */
export const store = Object.freeze({
  /** The value of `key` (a Uint8Array), undefined if unset, or an error string. */
  get: (namespace, key) => orError(() => host.get(namespace, key)),
  /** Sets `key` to `value`, for `ttlMs` if given; an error string or undefined. */
  set: (namespace, key, value, ttlMs = undefined) =>
    orError(() => host.set(namespace, key, textOrBytes(value), ttl(ttlMs))),
  /** Deletes `key`: whether it was set, or an error string. */
  delete: (namespace, key) => orError(() => host.delete(namespace, key)),
  /** Keys starting with `prefix` in byte order, after `after` if given, at most `limit`. */
  keys: (namespace, prefix = '', after = undefined, limit = 1000) =>
    orError(() => host.keys(namespace, prefix, after ?? undefined, limit)),
  /** Adds `delta` to the decimal integer in `key` (0 if unset): the sum, or an error string. */
  increment: (namespace, key, delta = 1) => {
    const sum = orError(() => host.increment(namespace, key, int64(delta)));
    return typeof sum === 'string' ? sum : number(sum);
  },
  /** Sets `key` to `next` (unsets it if undefined) if it holds `expected` (undefined: unset). */
  compareAndSwap: (namespace, key, expected, next, ttlMs = undefined) =>
    orError(() => host.compareAndSwap(namespace, key, maybe(expected), maybe(next), ttl(ttlMs))),
});
