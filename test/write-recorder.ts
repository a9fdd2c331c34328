// A Writable that records what reaches it, write by write, for the write-batching suites.
import { Writable } from "node:stream";

export interface WriteRecord {
  stream: Writable;
  /** Per write (write or writev): how many chunks it carried. */
  chunks: number[];
  /** Per write: how many bytes it carried. */
  sizes: number[];
  /** Every chunk, in order. */
  bytes: Buffer[];
}

/** A recording stream (default high-water mark: 16 KB). */
export function recorder(): WriteRecord {
  const record: WriteRecord = { stream: null as unknown as Writable, chunks: [], sizes: [], bytes: [] };
  const took = (buffers: Buffer[]) => {
    record.chunks.push(buffers.length);
    record.sizes.push(buffers.reduce((n, b) => n + b.length, 0));
    record.bytes.push(...buffers);
  };
  record.stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      took([chunk]);
      cb();
    },
    writev(chunks, cb) {
      took(chunks.map((c) => c.chunk as Buffer));
      cb();
    },
  });
  return record;
}
