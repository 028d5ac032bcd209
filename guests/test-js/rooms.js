// The `history`, `presence` and `store` commands of guests/test-js, answered exactly as
// guests/test-py and guests/test-rust answer them (host-runner/tests/common/sdk_imports.rs
// drives all three); an error
// is answered with its name ('gone', 'bad-key', …), as the SDK returns it. `-` stands for
// none (an `after`, an `expected`, a `new`), or for the empty prefix.
//
//   history T N AGE_MS → ok             head T → head E O
//   pubkept T TEXT     → position E O count N (pubkeptbin: TEXT's bytes, as binary)
//   from T E O | fromlast T N → from E O (the head then)
//   kept T N           → kept O1,O2,…|DATA1|DATA2… (binary data as binary:LENGTH)
//   info T TEXT        → ok             members T AFTER LIMIT → members ID=INFO,… [next ID]
//   set NS KEY VALUE [TTL_MS] → ok      big NS KEY → sets 1 MiB + 1 bytes
//   get NS KEY → value V | unset        del NS KEY → true | false
//   keys NS PREFIX AFTER LIMIT → keys K1,K2,…
//   incr NS KEY DELTA → sum N           cas NS KEY EXPECTED NEW [TTL_MS] → true | false
import {
  enableHistory, history, historyHead, members, publishKept, setPresence, store, subscribeFrom,
} from 'wsbox';

const decoder = new TextDecoder();
const none = (word) => (word === '-' ? undefined : word);
const at = (position) => `${position.epoch} ${position.offset}`;
const data = (value) => (typeof value === 'string' ? value : `binary:${value.length}`);
/** `format(result)`, or the error's name. */
const answer = (result, format) => (typeof result === 'string' ? result : format(result));

/** The answer to a command of the list above; undefined for any other. */
export function roomsOrStore([verb, ...words]) {
  const [a, b, c, d, e] = words;
  const rest = words.slice(1).join(' ');
  const kept = (result) => answer(result, (k) => `position ${at(k.position)} count ${k.count}`);
  switch (verb) {
    case 'history': return enableHistory(a, Number(b), Number(c)) ?? 'ok';
    case 'head': return answer(historyHead(a), (head) => `head ${at(head)}`);
    case 'pubkept': return kept(publishKept(a, rest));
    case 'pubkeptbin': return kept(publishKept(a, new TextEncoder().encode(rest)));
    case 'from': return answer(subscribeFrom(a, { after: { epoch: b, offset: Number(c) } }), (h) => `from ${at(h)}`);
    case 'fromlast': return answer(subscribeFrom(a, { last: Number(b) }), (h) => `from ${at(h)}`);
    case 'kept':
      return answer(history(a, Number(b)), (entries) =>
        ['kept ' + entries.map((entry) => entry.position.offset).join(','), ...entries.map((entry) => data(entry.data))].join('|'));
    case 'info': return setPresence(a, rest) ?? 'ok';
    case 'members': {
      const page = members(a, none(b), Number(c));
      const listed = page.members.map((m) => `${m.id}=${decoder.decode(m.info)}`).join(',');
      return `members ${listed}${page.next === undefined ? '' : ` next ${page.next}`}`;
    }
    case 'set': return store.set(a, b, c, d === undefined ? undefined : Number(d)) ?? 'ok';
    case 'big': return store.set(a, b, new Uint8Array(1024 * 1024 + 1)) ?? 'ok';
    case 'get': {
      const value = store.get(a, b);
      if (value === undefined) return 'unset';
      return answer(value, (bytes) => `value ${decoder.decode(bytes)}`);
    }
    case 'del': return String(store.delete(a, b));
    case 'keys': return answer(store.keys(a, none(b) ?? '', none(c), Number(d)), (keys) => `keys ${keys.join(',')}`);
    // The delta as a bigint: s64's whole range, past what a number holds exactly.
    case 'incr': return answer(store.increment(a, b, BigInt(c)), (sum) => `sum ${sum}`);
    case 'cas': return String(store.compareAndSwap(a, b, none(c), none(d), e === undefined ? undefined : Number(e)));
    default: return undefined;
  }
}
