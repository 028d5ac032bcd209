// The `store` import (wit/store.wit): a key-value store the host keeps, in namespaces. Values
// are bytes (a string is stored as UTF-8); every call returns its result or the error's name
// as a string ('bad-key', 'too-large', 'quota', …), never throws one. Types: wsbox.d.ts.
import * as host from 'wsbox:websocket/store@0.2.1';
import { int64, number, orError, textOrBytes } from './values.js';

/** A time to live: undefined (none) or milliseconds. */
const ttl = (ms) => (ms === undefined || ms === null ? undefined : int64(ms));
/** An optional value: undefined or null for none. */
const maybe = (value) => (value === undefined || value === null ? undefined : textOrBytes(value));

const encoder = new TextEncoder();
const MIN_S64 = -(2n ** 63n);
const MAX_S64 = 2n ** 63n - 1n;

/** How often a decrement tries its compare-and-swap before answering 'unavailable'. */
const DECREMENT_TRIES = 100;

/**
 * Subtracts: `increment` with a negative `delta`. componentize-js 0.23 cannot pass the host an
 * s64 with its top bit set (ComponentizeJS#343: its bindings abort the instance), so this reads
 * the value and writes the difference with `compare-and-swap`, again if another connection
 * changed the value meanwhile: no subtraction or addition is lost, and the errors are the
 * host's (a value is a number as Rust's `i64::from_str` reads it). Unlike the host's
 * `increment`, it drops the key's time to live. Drop this once componentize-js passes a
 * negative s64 (host-runner/tests/js_guest.rs decrements through it).
 */
function decrement(namespace, key, delta) {
  for (let i = 0; i < DECREMENT_TRIES; i++) {
    const value = host.get(namespace, key);
    let current = 0n;
    if (value !== undefined) {
      const text = new TextDecoder().decode(value);
      if (!/^[+-]?[0-9]+$/.test(text)) return 'not-a-number';
      current = BigInt(text.replace(/^\+/, ''));
      if (current < MIN_S64 || current > MAX_S64) return 'not-a-number';
    }
    const sum = current + delta;
    if (sum < MIN_S64) return 'overflow';
    if (host.compareAndSwap(namespace, key, value, encoder.encode(String(sum)), undefined)) return sum;
  }
  return 'unavailable';
}

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
    const by = int64(delta);
    if (by < MIN_S64 || by > MAX_S64) return 'overflow';
    const sum = orError(() => (by < 0n ? decrement(namespace, key, by) : host.increment(namespace, key, by)));
    return typeof sum === 'string' ? sum : number(sum);
  },
  /** Sets `key` to `next` (unsets it if undefined) if it holds `expected` (undefined: unset). */
  compareAndSwap: (namespace, key, expected, next, ttlMs = undefined) =>
    orError(() => host.compareAndSwap(namespace, key, maybe(expected), maybe(next), ttl(ttlMs))),
});
