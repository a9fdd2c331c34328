/**
 * Deferred payloads (ABI v2, Feature.deferredPayload): a plugin that says it
 * fetches the payload before reading it gets records without the payload's
 * bytes — the length and the space are there, RecordFlag.payloadDeferred is
 * set — and pays for the copy only when it reads the payload
 * (`payload_fetch`, charged like every import: a base plus FUEL_PER_BYTE per
 * byte, before the copy). A plugin that decides on topic and client alone
 * (acl) never copies the payload at all. Until it is fetched, the payload's
 * space holds whatever this plugin's own earlier records left there: nothing
 * another plugin could have written.
 *
 * Small payloads are written as before: below DEFER_PAYLOAD_MIN_BYTES one copy
 * costs less than the import call a reader would make.
 */
import { FEATURES_EXPORT, Feature, FieldV2, RecordFlag } from "./abi-v2.js";

/** Payloads from this size on are deferred for plugins with the feature. */
export const DEFER_PAYLOAD_MIN_BYTES = 1024;

/** Whether the module's `wasmq_features()` asks for deferred payloads (a v2 module only). */
export function wantsDeferredPayload(exports: Record<string, unknown>, abiVersion: number): boolean {
  const features = exports[FEATURES_EXPORT];
  if (abiVersion < 2 || typeof features !== "function") return false;
  return ((features as () => number)() & Feature.deferredPayload) !== 0;
}

/** The payload of the call in progress that the plugin has not fetched yet. */
export class DeferredPayload {
  private pending: Uint8Array | null = null;
  private record = 0;
  private at = 0;

  /** Whether to leave this payload out of the record (else write it as usual). */
  static worth(payload: Uint8Array): boolean {
    return payload.length >= DEFER_PAYLOAD_MIN_BYTES;
  }

  /** The payload is left out of the record at `record` (its bytes belong at `at`): flag it, after the header is written. */
  defer(buf: Uint8Array, record: number, at: number, payload: Uint8Array): void {
    this.pending = payload;
    this.record = record;
    this.at = at;
    buf[record + FieldV2.recordFlags] |= RecordFlag.payloadDeferred;
  }

  /** Bytes the next fetch would copy (0 when nothing is deferred): what it is charged for. */
  get size(): number {
    return this.pending?.length ?? 0;
  }

  /** Write the deferred payload into the record and clear the flag; returns the bytes copied. */
  fetch(buf: Uint8Array): number {
    const payload = this.pending;
    if (payload === null) return 0;
    buf.set(payload, this.at);
    buf[this.record + FieldV2.recordFlags] &= ~RecordFlag.payloadDeferred;
    this.pending = null;
    return payload.length;
  }

  /** The call ended: nothing is pending any more (a fetch from tick copies nothing). */
  clear(): void {
    this.pending = null;
  }
}
