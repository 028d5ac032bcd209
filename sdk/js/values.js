// What the SDK's modules share: WIT messages and bytes from and to JavaScript values, and
// WIT errors as values (the generated bindings throw them).

const encoder = new TextEncoder();

/** The WIT `message` variant for a string (text) or bytes (binary). */
export function toMessage(data) {
  if (typeof data === 'string') return { tag: 'text', val: data };
  return { tag: 'binary', val: toBytes(data) };
}

/** Bytes from a typed array or DataView (as a view, not a copy), an ArrayBuffer or an array. */
export function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new TypeError('a message is a string (text) or bytes (a Uint8Array, any typed array, an ArrayBuffer)');
}

/** Bytes from a string (UTF-8) or bytes. */
export function textOrBytes(data) {
  return typeof data === 'string' ? encoder.encode(data) : toBytes(data);
}

/** A WIT `message` as a string (text) or a Uint8Array (binary). */
export function fromMessage(message) {
  return message.tag === 'text' ? message.val : toBytes(message.val);
}

/** Runs `call`: its value, or a WIT error's payload (a string such as 'backpressure'). */
export function orError(call) {
  try {
    return call();
  } catch (error) {
    if (error && typeof error === 'object' && 'payload' in error) return error.payload;
    throw error;
  }
}

/** A u64 or s64 argument: a safe integer number or a bigint (a RangeError for a fraction). */
export const int64 = (value) => (typeof value === 'bigint' ? value : BigInt(value));

/** A u64 or s64 result as a number (exact up to Number.MAX_SAFE_INTEGER). */
export const number = (value) => Number(value);
