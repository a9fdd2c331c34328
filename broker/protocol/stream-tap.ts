/**
 * See (and amend) each object a Readable hands on, without putting a second
 * stream behind it. aedes opens a persistence stream per CONNECT (the stored
 * queue) and per SUBSCRIBE (retained messages); wrapping each in
 * `pipeline(source, new Transform(...))` cost every connecting client a
 * Transform, a pipeline with its AbortController and their end-of-stream
 * listeners — measured (2026-12-06, 6,000 idle clients): a fifth of the
 * broker's CPU went to garbage collection, against a twentieth in bare aedes.
 * Every Readable (Readable.from, Transform, readable-stream) hands on data
 * by calling `push` on itself, so the instance's `push` is the tap.
 */
import type { Readable } from "node:stream";

export function tapPushes<T>(stream: Readable, onChunk: (chunk: T) => void): Readable {
  const push = stream.push;
  stream.push = function tappedPush(this: Readable, chunk: unknown, encoding?: BufferEncoding) {
    if (chunk !== null && chunk !== undefined) onChunk(chunk as T);
    return push.call(this, chunk, encoding);
  };
  return stream;
}
