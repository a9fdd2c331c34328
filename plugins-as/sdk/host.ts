// What a plugin can ask of the broker: time, logging, extra publishes and its own
// durable key-value namespace. Mirrors host/native/index.ts.
import { kv_delete, kv_get, kv_put, log_, now_ms, publish_ } from "./imports";

export function now(): f64 {
  return now_ms();
}

/**
 * Ask the broker to publish a message (routing, fan-out, tick output). Payload: string or Uint8Array.
 * Charged per byte and capped per call; an invalid topic ($SYS/, wildcards, too long) or a
 * message over maxPacketSize traps (kind "invalid-output"). False only for a QoS outside 0..2.
 */
export function publish<T>(topic: string, payload: T, qos: i32 = 0, retain: bool = false): bool {
  const t = String.UTF8.encode(topic);
  if (isString<T>()) {
    const p = String.UTF8.encode(changetype<string>(payload));
    return publish_(changetype<usize>(t), t.byteLength, changetype<usize>(p), p.byteLength, qos, retain ? 1 : 0) == 0;
  }
  const bytes = changetype<Uint8Array>(payload);
  return publish_(changetype<usize>(t), t.byteLength, bytes.dataStart, bytes.length, qos, retain ? 1 : 0) == 0;
}

function emit(level: i32, message: string): void {
  const b = String.UTF8.encode(message);
  log_(level, changetype<usize>(b), b.byteLength);
}

export namespace log {
  export function trace(message: string): void { emit(0, message); }
  export function debug(message: string): void { emit(1, message); }
  export function info(message: string): void { emit(2, message); }
  export function warn(message: string): void { emit(3, message); }
  export function error(message: string): void { emit(4, message); }
}

const SCRATCH_SIZE: i32 = 256;
const scratch = memory.data(256, 16);

/** The plugin's own durable key-value namespace. */
export namespace kv {
  export function get(key: string): Uint8Array | null {
    const k = String.UTF8.encode(key);
    const n = kv_get(changetype<usize>(k), k.byteLength, scratch, SCRATCH_SIZE);
    if (n < 0) return null;
    const out = new Uint8Array(n);
    if (n <= SCRATCH_SIZE) {
      memory.copy(out.dataStart, scratch, <usize>n);
    } else {
      kv_get(changetype<usize>(k), k.byteLength, out.dataStart, n);
    }
    return out;
  }

  export function getString(key: string, fallback: string | null): string | null {
    const v = get(key);
    return v === null ? fallback : String.UTF8.decodeUnsafe(v.dataStart, <usize>v.length);
  }

  export function getNumber(key: string, fallback: f64): f64 {
    const k = String.UTF8.encode(key);
    const n = kv_get(changetype<usize>(k), k.byteLength, scratch, SCRATCH_SIZE);
    return n == 8 ? load<f64>(scratch) : fallback;
  }

  /** False when a limit refused the value (logged by the host). Value: string or Uint8Array. */
  export function put<T>(key: string, value: T): bool {
    const k = String.UTF8.encode(key);
    if (isString<T>()) {
      const v = String.UTF8.encode(changetype<string>(value));
      return kv_put(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength) == 0;
    }
    const bytes = changetype<Uint8Array>(value);
    return kv_put(changetype<usize>(k), k.byteLength, bytes.dataStart, bytes.length) == 0;
  }

  export function putNumber(key: string, value: f64): bool {
    const k = String.UTF8.encode(key);
    store<f64>(scratch, value);
    return kv_put(changetype<usize>(k), k.byteLength, scratch, 8) == 0;
  }

  export function remove(key: string): bool {
    const k = String.UTF8.encode(key);
    return kv_delete(changetype<usize>(k), k.byteLength) == 1;
  }
}
