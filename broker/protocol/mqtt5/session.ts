/**
 * MQTT 5 session lifetime ([MQTT-3.1.2-23], [MQTT-4.1.0-?]): a session ends
 * Session Expiry Interval seconds after its connection closes, unless a
 * connection with the same client identifier has taken it up meanwhile. 0
 * ends it with the connection; 0xFFFFFFFF never. Ending a session wipes what
 * the store keeps for it (subscriptions, queued and in-flight messages,
 * inbound QoS 2 state, the "session exists" record).
 *
 * The countdown's deadline is also written into the session's record in the
 * store (conformance.ts keeps one per persistent session), so a session that
 * expired while the broker was down, or whose timer a restart lost, is ended
 * when its client comes back instead of being resumed. A session whose client
 * never returns after a restart stays stored (the timers themselves live in
 * memory).
 */
import type { KvStore } from "../../../host/index.js";
import { SESSION_NAMESPACE } from "../conformance.js";
import type { V5Connection } from "./state.js";

/** Session record value while a session counts down: 2, then the deadline (ms since the epoch, u64 BE). */
const COUNTING_DOWN = 2;
const PRESENT = new Uint8Array([1]);

function deadlineOf(record: Uint8Array | undefined): number | null {
  if (!record || record.length !== 9 || record[0] !== COUNTING_DOWN) return null;
  return Number(Buffer.from(record.buffer, record.byteOffset, record.byteLength).readBigUInt64BE(1));
}

const NEVER = 0xffffffff;
/** setTimeout's ceiling (2^31-1 ms, ~24.8 days); longer expiries re-arm. */
const MAX_TIMER_MS = 0x7fffffff;

export class SessionExpiry {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Sessions being wiped: a CONNECT for the id waits for it. */
  private readonly wiping = new Map<string, Promise<void>>();
  /** Set when the broker shuts down: connections closing then do not end their sessions (the store is closing too). */
  private stopped = false;

  constructor(
    private readonly wipe: (clientId: string) => Promise<void>,
    private readonly isConnected: (clientId: string) => boolean,
    private readonly onError: (clientId: string, err: Error) => void,
    private readonly kv: KvStore,
  ) {}

  /**
   * A CONNECT for this id arrived: a countdown stops, a session past its
   * deadline (recorded before a restart) is ended, and the connection waits
   * until an ending session is gone.
   */
  taken(clientId: string): Promise<void> {
    this.stopTimer(clientId);
    const key = Buffer.from(clientId, "utf8");
    try {
      const deadline = deadlineOf(this.kv.get(SESSION_NAMESPACE, key));
      if (deadline !== null && !this.wiping.has(clientId)) {
        if (deadline <= Date.now()) this.end(clientId);
        else this.kv.put(SESSION_NAMESPACE, key, PRESENT); // taken up in time: no longer counting down
      }
    } catch (err) {
      this.onError(clientId, err as Error);
    }
    return this.wiping.get(clientId) ?? Promise.resolve();
  }

  /**
   * A v5 connection closed with `state.sessionExpiry` seconds to go.
   * `persistent`: aedes kept the session (clean=false); `takenOver`: a new
   * connection with the same id replaced it, and the session goes on with it.
   */
  closed(state: V5Connection, clientId: string, persistent: boolean, takenOver: boolean): void {
    if (this.stopped || !persistent || takenOver || state.sessionExpiry === NEVER) return;
    if (state.sessionExpiry === 0) return this.end(clientId);
    const deadline = Date.now() + state.sessionExpiry * 1000;
    try {
      const value = Buffer.alloc(9);
      value[0] = COUNTING_DOWN;
      value.writeBigUInt64BE(BigInt(deadline), 1);
      this.kv.put(SESSION_NAMESPACE, Buffer.from(clientId, "utf8"), value);
    } catch (err) {
      this.onError(clientId, err as Error);
    }
    this.arm(clientId, state.sessionExpiry * 1000);
  }

  private end(clientId: string): void {
    const done = this.wipe(clientId)
      .catch((err: Error) => this.onError(clientId, err))
      .finally(() => {
        if (this.wiping.get(clientId) === done) this.wiping.delete(clientId);
      });
    this.wiping.set(clientId, done);
  }

  private stopTimer(clientId: string): void {
    const t = this.timers.get(clientId);
    if (t) clearTimeout(t);
    this.timers.delete(clientId);
  }

  private arm(clientId: string, ms: number): void {
    this.stopTimer(clientId);
    const timer = setTimeout(
      () => {
        this.timers.delete(clientId);
        if (ms > MAX_TIMER_MS) return this.arm(clientId, ms - MAX_TIMER_MS);
        if (this.isConnected(clientId)) return;
        this.end(clientId);
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(clientId, timer);
  }

  close(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
