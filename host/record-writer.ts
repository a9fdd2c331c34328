/**
 * Writes each hook call's message record into a Wasm plugin's input region
 * (host/ABI.md §2), doing as little as the previous record allows.
 *
 * Per-message hot path: every message costs a plugin like acl two records,
 * one publish (client = publisher) and one deliver (client = subscriber,
 * peer = publisher). With one record position they overwrote each other's
 * per-client prefix every time, so the prefix cache never hit for them. The
 * region is therefore used as two lanes: the deliver hook writes at the
 * middle of the region when its record fits the upper half, every other hook
 * at its start. Each lane remembers what it last wrote (client id, username,
 * password, peer, topic) and rewrites only what changed. The region is asked
 * for exactly as before (`wasmq_reserve` when a record does not fit the whole
 * region, at least double and at least 4096 bytes), so a plugin's memory use
 * does not change; a deliver record that does not fit the upper half simply
 * uses the start, as every record did before.
 *
 * What a plugin may write into its own record (the callScratch byte; the SDK
 * writes nothing else) cannot reach the host: the host never reads a record
 * back. The header is written whole on every call but for the prefix lengths,
 * which belong to the cached prefix.
 */
import { Field, Presence } from "./abi.js";
import { FieldV2, HEADER_SIZE_V2 } from "./abi-v2.js";
import { FieldAuth } from "./abi-auth.js";
import { DeferredPayload } from "./deferred-payload.js";
import { EMPTY, type HookMessage } from "./message.js";
import { PluginError } from "./instance.js";
import { isBareV5, v5RecordBytes, writeAuthState, writeV5Record } from "./v5-record.js";
import { writeUtf8 } from "./utf8.js";

/** Lane 0: every hook but deliver (and init); lane 1: deliver, in the upper half of the region. */
export const MAIN_LANE = 0;
export const DELIVER_LANE = 1;

const MIN_REGION = 4096;

class Lane {
  /** Where this lane's record starts (0 = nothing written since the region was reserved). */
  ptr = 0;
  clientId: string | null = null;
  username: string | null = null;
  password: Uint8Array | null = null;
  peer: string | null = null;
  /** End of the cached per-client prefix. */
  prefixEnd = 0;
  /** The topic written right after the prefix, and where it ends; null = not cached. */
  topic: string | null = null;
  topicLen = 0;
  /** The protocol level of the last record when it had no v5 field (its v2 header then zero but for that), else -1. */
  bareLevel = -1;

  forget(): void {
    this.clientId = null;
    this.topic = null;
    this.bareLevel = -1;
  }

  /** Last byte this lane's cached fields reach (0 when nothing is cached). */
  get cachedEnd(): number {
    return this.clientId === null ? 0 : this.topic === null ? this.prefixEnd : this.prefixEnd + this.topicLen;
  }
}

export class RecordWriter {
  private region = 0;
  private cap = 0;
  private readonly lanes = [new Lane(), new Lane()] as const;
  /** The lane `place` chose, for `write`. */
  private current: Lane = this.lanes[MAIN_LANE];
  /** Where the last record put the password and the payload (scrubSecrets). */
  private readonly secret = { passwordAt: 0, passwordLen: 0, payloadAt: 0, payloadLen: 0 };

  constructor(
    private readonly plugin: string,
    private readonly headerSize: number,
    private readonly reserve: (size: number) => number,
  ) {}

  /**
   * Where the record of `msg` goes in `lane` (reserving a larger region first
   * when it does not fit). The caller refreshes its memory views after this
   * (`wasmq_reserve` may grow the memory), then calls `write`.
   */
  place(msg: HookMessage, lane: number): number {
    const v2 = this.headerSize === HEADER_SIZE_V2;
    const need =
      this.headerSize +
      (v2 ? v5RecordBytes(msg.v5) + (msg.authState?.length ?? 0) : 0) +
      3 * (msg.topic.length + msg.clientId.length + (msg.username?.length ?? 0) + msg.peer.length) +
      (msg.password?.length ?? 0) +
      msg.payload.length;
    if (need > this.cap) {
      const size = Math.max(need, this.cap * 2, MIN_REGION);
      const ptr = this.reserve(size);
      if (ptr % 8 !== 0) throw new PluginError(this.plugin, "wasmq_reserve returned an unaligned address");
      this.region = ptr;
      this.cap = size;
      this.lanes[MAIN_LANE].forget();
      this.lanes[DELIVER_LANE].forget();
    }
    const half = (this.cap >>> 1) & ~7;
    if (lane === DELIVER_LANE && need <= this.cap - half) {
      const main = this.lanes[MAIN_LANE];
      // The main lane's cached fields must lie below the deliver lane to stay valid.
      if (main.cachedEnd > this.region + half) main.forget();
      return this.at(DELIVER_LANE, this.region + half);
    }
    // A record in the main lane that reaches the upper half overwrites the deliver lane's.
    if (need > half) this.lanes[DELIVER_LANE].forget();
    return this.at(MAIN_LANE, this.region);
  }

  private at(lane: number, ptr: number): number {
    const l = this.lanes[lane]!;
    if (l.ptr !== ptr) {
      l.forget();
      l.ptr = ptr;
    }
    this.current = l;
    return ptr;
  }

  /**
   * Zero the last record's password, and its payload too for an AUTH step (the
   * Authentication Data), and forget the lane's cache so the next record is
   * written afresh: a hook's secrets must not stay in plugin memory
   * (wasm-plugin.ts, after connect and auth calls).
   */
  scrubSecrets(buf: Buffer, payloadToo: boolean): void {
    const s = this.secret;
    buf.fill(0, s.passwordAt, s.passwordAt + s.passwordLen);
    if (payloadToo) buf.fill(0, s.payloadAt, s.payloadAt + s.payloadLen);
    s.passwordLen = 0;
    s.payloadLen = 0;
    this.current.forget();
  }

  /** Write the record at `ptr` (from `place`); strings straight from JS, bytes by one copy each. */
  write(buf: Buffer, u32: Uint32Array, ptr: number, msg: HookMessage, deferred: DeferredPayload | null): number {
    const lane = this.current;
    const h = ptr >>> 2;
    let off: number;
    let topicLen: number;
    if (lane.clientId !== null && msg.clientId === lane.clientId && msg.username === lane.username && msg.password === lane.password && msg.peer === lane.peer) {
      off = lane.prefixEnd;
      if (msg.topic === lane.topic) {
        topicLen = lane.topicLen;
      } else {
        topicLen = writeUtf8(buf, msg.topic, off);
        lane.topic = msg.topic;
        lane.topicLen = topicLen;
      }
    } else {
      const password = msg.password ?? EMPTY;
      off = ptr + this.headerSize;
      const clientIdLen = writeUtf8(buf, msg.clientId, off);
      off += clientIdLen;
      const usernameLen = writeUtf8(buf, msg.username ?? "", off);
      off += usernameLen;
      this.secret.passwordAt = off;
      this.secret.passwordLen = password.length;
      buf.set(password, off);
      off += password.length;
      const peerLen = writeUtf8(buf, msg.peer, off);
      off += peerLen;
      u32[h + Field.clientIdLen / 4] = clientIdLen;
      u32[h + Field.usernameLen / 4] = usernameLen;
      u32[h + Field.passwordLen / 4] = password.length;
      u32[h + Field.peerLen / 4] = peerLen;
      buf[ptr + Field.presence] = (msg.username !== null ? Presence.username : 0) | (msg.password !== null ? Presence.password : 0);
      lane.clientId = msg.clientId;
      lane.username = msg.username;
      lane.password = msg.password;
      lane.peer = msg.peer;
      lane.prefixEnd = off;
      topicLen = writeUtf8(buf, msg.topic, off);
      lane.topic = msg.topic;
      lane.topicLen = topicLen;
    }
    const payload = msg.payload;
    const at = off + topicLen;
    this.secret.payloadAt = at;
    this.secret.payloadLen = payload.length; // a deferred payload is fetched into this same place
    const hold = deferred !== null && DeferredPayload.worth(payload);
    if (!hold) buf.set(payload, at);
    u32[h + Field.topicLen / 4] = topicLen;
    u32[h + Field.payloadLen / 4] = payload.length;
    buf[ptr + Field.qos] = msg.qos;
    buf[ptr + Field.retain] = msg.retain ? 1 : 0;
    buf[ptr + Field.dup] = msg.dup ? 1 : 0;
    buf[ptr + Field.flags] = msg.flags;
    if (this.headerSize === HEADER_SIZE_V2) {
      const v5 = msg.v5;
      const auth = msg.authState;
      if (v5 === undefined || isBareV5(v5)) {
        const level = v5 === undefined ? 4 : v5.protocolVersion;
        if (lane.bareLevel !== level) {
          // Header bytes 32..71 zero but for the protocol level (byte 62), as whole words.
          for (let w = h + FieldV2.contentTypeLen / 4; w < h + HEADER_SIZE_V2 / 4; w++) u32[w] = 0;
          u32[h + FieldV2.userPropertyCount / 4] = level << 16;
          lane.bareLevel = level;
        } else {
          // The same as the lane's last record but for the bytes a call changes: the
          // record flags and callScratch (bytes 64..67, with the presence and options
          // bytes that are zero here) and the auth state's length (68..71).
          u32[h + FieldV2.v5Presence / 4] = 0;
          u32[h + FieldAuth.authStateLen / 4] = 0;
        }
        if (auth) writeAuthState(buf, ptr, at + payload.length, auth);
      } else {
        lane.bareLevel = -1;
        writeAuthState(buf, ptr, writeV5Record(buf, ptr, at + payload.length, v5), auth);
      }
    }
    if (hold) deferred.defer(buf, ptr, at, payload);
    return ptr;
  }
}
