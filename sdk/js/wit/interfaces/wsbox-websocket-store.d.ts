// Generated from wit/ by sdk/js/types.mjs: do not edit.
declare module 'wsbox:websocket/store@0.2.1' {
  /**
   * The value of `key`, if set (and its time to live not over).
   */
  export function get(namespace: string, key: string): Uint8Array | undefined;
  /**
   * Sets `key` to `value`, for `ttl-ms` milliseconds if given (then it reads as unset).
   */
  export function set(namespace: string, key: string, value: Uint8Array, ttlMs: bigint | undefined): void;
  /**
   * Deletes `key`; whether it was set.
   */
  export { _delete as delete };
  function _delete(namespace: string, key: string): boolean;
  /**
   * Keys that start with `prefix`, in byte order, after `after` if given, at most
   * `limit` (at most 1000): pass the last one as `after` for the next page.
   */
  export function keys(namespace: string, prefix: string, after: string | undefined, limit: number): Array<string>;
  /**
   * Adds `delta` to the decimal integer in `key` (0 if unset) and returns the sum, in
   * one step: two connections incrementing at once never lose one's addition.
   */
  export function increment(namespace: string, key: string, delta: bigint): bigint;
  /**
   * Sets `key` to `new` (unsets it if none) only if its value is `expected` now (unset
   * if none), in one step; whether it did.
   */
  export function compareAndSwap(namespace: string, key: string, expected: Uint8Array | undefined, new_: Uint8Array | undefined, ttlMs: bigint | undefined): boolean;
  /**
   * # Variants
   * 
   * ## `"bad-key"`
   * 
   * The key or the namespace is empty or too long.
   * ## `"too-large"`
   * 
   * The value is larger than 1 MiB.
   * ## `"quota"`
   * 
   * The namespace would pass its quota: nothing was changed.
   * ## `"full"`
   * 
   * The host's store would pass `--data-max-bytes`: nothing was changed.
   * ## `"not-a-number"`
   * 
   * `increment` of a value that is not a decimal integer.
   * ## `"overflow"`
   * 
   * `increment` past the range of s64.
   * ## `"unavailable"`
   * 
   * The host's database failed (a full disk, say): nothing was changed.
   */
  export type StoreError = 'bad-key' | 'too-large' | 'quota' | 'full' | 'not-a-number' | 'overflow' | 'unavailable';
}
