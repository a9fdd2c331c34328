/**
 * At every CONNECT aedes empties the session's stored queue through
 * `pipeline(persistence.outgoingStream(client), through(...))`, and at every
 * SUBSCRIBE it pipes `persistence.createRetainedStreamCombi(filters)` into a
 * Transform. With wasmq's persistences each of those streams is several
 * Readables deep (the store's own, aedes-persistence's callback layer, the
 * memory store's expiry filter, each an async iterator over the one below),
 * opened even for a clean-start client, whose queue is empty by definition
 * ([MQTT-3.1.2-6]), and for a filter no retained message matches: per
 * connection a few KB of stream machinery, much of it promoted to old space
 * during a connect burst (bench/README.md, mem3 and conn4).
 *
 * Here the broker asks the persistence first (../persistence/quiet-lookup.ts)
 * and, when it answers "certainly nothing", hands aedes an ended stream:
 * aedes' own steps run as before and end at once, in the same order, with
 * the same callbacks. A persistence without the answers (Redis in a
 * cluster: other nodes write the queues) keeps every stream.
 *
 * Installed last over the persistence's stream methods: the layers installed
 * before it (conformance's DUP marking, MQTT 5's retained properties) tap
 * what a stream pushes, and an ended stream pushes nothing.
 */
import { Readable } from "node:stream";
import { hasQuietLookups } from "../persistence/quiet-lookup.js";

/** An object-mode Readable that has already ended: one object, no iterator, no source. */
class EndedStream extends Readable {
  constructor() {
    super({ objectMode: true });
    this.push(null);
  }
  override _read(): void {}
}

export function endedStream(): Readable {
  return new EndedStream();
}

interface StreamingPersistence {
  outgoingStream(client: { id: string }): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

/** Returns false (and changes nothing) when the broker's persistence cannot answer. */
export function installAskFirst(aedes: unknown): boolean {
  const p = (aedes as { persistence: StreamingPersistence }).persistence;
  if (!hasQuietLookups(p)) return false;
  const outgoingStream = p.outgoingStream.bind(p);
  const retainedStream = p.createRetainedStreamCombi.bind(p);
  p.outgoingStream = (client) => (p.mayHaveQueued(client.id) ? outgoingStream(client) : endedStream());
  p.createRetainedStreamCombi = (patterns) => (p.mayHaveRetained(patterns) ? retainedStream(patterns) : endedStream());
  return true;
}
