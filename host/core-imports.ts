// No node: imports: this module also runs in the dashboard's playground.
import { CRYPTO_FUEL_PER_BLOCK, PBKDF2_MAX_ITERATIONS, PBKDF2_MAX_KEY } from "./abi.js";
import { certFieldBytes, NO_CERTIFICATE, UNKNOWN_FIELD } from "./cert-field.js";
import { FUEL_PER_BYTE, type HostCalls, MAX_LOG_LINE_BYTES } from "./host-calls.js";
import type { CallState, PluginServices } from "./instance.js";
import { KvLimitError } from "./kv.js";
import type { HookMessage } from "./message.js";
import { decodeTopic } from "./output-rules.js";
import type { HostCrypto } from "./wasm-env.js";

interface ImportContext {
  services: PluginServices;
  crypto: HostCrypto;
  calls(): HostCalls;
  state(): CallState;
  /** A view of the plugin's memory (bounds-checked). */
  bytes(ptr: number, len: number): Buffer;
  /** The message of the call in progress (client_cert reads it on demand). */
  current(): HookMessage | null;
  /** payload_fetch: charge, then copy a deferred payload into the plugin's memory. */
  fetchPayload(): number;
}

/**
 * The v1 host imports, module "wasmq". Each one charges and checks through
 * `calls` before it copies, allocates or queues anything.
 */
export function coreImports(ctx: ImportContext): Record<string, (...args: number[]) => number | void> {
  return {
    log(level, ptr, len) {
      const n = ctx.calls().log(ctx.state(), len);
      ctx.calls().charge("log", n);
      ctx.services.log(level, ctx.bytes(ptr, n).toString("utf8") + (n < len ? ` … (${len} bytes, cut at ${MAX_LOG_LINE_BYTES})` : ""));
    },
    now_ms() {
      ctx.calls().charge("now_ms");
      return ctx.services.now();
    },
    publish(tp, tl, pp, pl, qos, retain) {
      if (qos < 0 || qos > 2) return -1;
      const s = ctx.state();
      ctx.calls().publish(s, tl, pl);
      ctx.calls().charge("publish", tl + pl);
      const topic = decodeTopic(ctx.services.name, ctx.bytes(tp, tl));
      ctx.calls().checkPublish(topic, tl, pl, qos);
      s.extras.push({
        plugin: ctx.services.name,
        topic,
        payload: Buffer.from(ctx.bytes(pp, pl)),
        qos: qos as 0 | 1 | 2,
        retain: retain !== 0,
      });
      return 0;
    },
    set_topic(ptr, len) {
      ctx.calls().charge("set_topic", len);
      const s = ctx.state();
      const topic = decodeTopic(ctx.services.name, ctx.bytes(ptr, len));
      ctx.calls().checkSetTopic(s, topic, len);
      s.topic = topic;
    },
    set_payload(ptr, len) {
      ctx.calls().charge("set_payload", len);
      const s = ctx.state();
      ctx.calls().checkSetPayload(s, len);
      s.payload = Buffer.from(ctx.bytes(ptr, len));
    },
    set_qos(qos) {
      ctx.calls().charge("set_qos");
      ctx.state().qos = Math.max(0, Math.min(2, qos));
    },
    set_retain(retain) {
      ctx.calls().charge("set_retain");
      ctx.state().retain = retain ? 1 : 0;
    },
    set_ttl(seconds) {
      ctx.calls().charge("set_ttl");
      ctx.state().ttlSec = Math.max(0, seconds);
    },
    kv_get(kp, kl, op, oc) {
      ctx.calls().charge("kv_get", kl);
      const value = ctx.services.kv.get(ctx.services.name, ctx.bytes(kp, kl));
      if (value === undefined) return -1;
      if (value.length <= oc) {
        ctx.calls().take(value.length * FUEL_PER_BYTE);
        ctx.bytes(op, value.length).set(value);
      }
      return value.length;
    },
    kv_put(kp, kl, vp, vl) {
      ctx.calls().charge("kv_put", kl + vl);
      try {
        ctx.services.kv.put(ctx.services.name, Buffer.from(ctx.bytes(kp, kl)), Buffer.from(ctx.bytes(vp, vl)));
        return 0;
      } catch (err) {
        ctx.services.log(3, `kv put refused: ${(err as Error).message}`);
        return err instanceof KvLimitError ? -1 : -2;
      }
    },
    kv_delete(kp, kl) {
      ctx.calls().charge("kv_delete", kl);
      return ctx.services.kv.delete(ctx.services.name, ctx.bytes(kp, kl)) ? 1 : 0;
    },
    sha256(dp, dl, op) {
      ctx.calls().charge("sha256");
      ctx.calls().take(sha256Blocks(dl) * CRYPTO_FUEL_PER_BLOCK);
      ctx.bytes(op, 32).set(ctx.crypto.sha256(ctx.bytes(dp, dl)));
    },
    hmac_sha256(kp, kl, dp, dl, op) {
      ctx.calls().charge("hmac_sha256");
      ctx.calls().take(hmacBlocks(kl, dl) * CRYPTO_FUEL_PER_BLOCK);
      ctx.bytes(op, 32).set(ctx.crypto.hmacSha256(ctx.bytes(kp, kl), ctx.bytes(dp, dl)));
    },
    pbkdf2_sha256(pp, pl, sp, sl, iterations, op, ol) {
      if (iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS || ol < 1 || ol > PBKDF2_MAX_KEY) return -1;
      ctx.calls().charge("pbkdf2_sha256");
      // Per 32-byte output block: the salt's HMAC, then two compressions per iteration.
      ctx.calls().take((hmacBlocks(pl, sl + 4) + Math.ceil(ol / 32) * 2 * iterations) * CRYPTO_FUEL_PER_BLOCK);
      ctx.bytes(op, ol).set(ctx.crypto.pbkdf2Sha256(ctx.bytes(pp, pl), ctx.bytes(sp, sl), iterations, ol));
      return 0;
    },
    client_cert(field, op, oc) {
      const cert = ctx.current()?.cert;
      if (!cert) return NO_CERTIFICATE;
      const bytes = certFieldBytes(cert, field);
      if (!bytes) return UNKNOWN_FIELD;
      const copies = bytes.length <= oc;
      ctx.calls().charge("client_cert", copies ? bytes.length : 0);
      if (copies) ctx.bytes(op, bytes.length).set(bytes);
      return bytes.length;
    },
    payload_fetch() {
      return ctx.fetchPayload();
    },
  };
}

/** SHA-256 compressions for a message of n bytes (padding included). */
function sha256Blocks(n: number): number {
  return Math.floor((n + 8) / 64) + 1;
}

/** Compressions for HMAC-SHA256: the key (hashed first when over 64 bytes), inner and outer hash. */
function hmacBlocks(keyLen: number, dataLen: number): number {
  return (keyLen > 64 ? sha256Blocks(keyLen) : 0) + sha256Blocks(64 + dataLen) + sha256Blocks(64 + 32);
}
