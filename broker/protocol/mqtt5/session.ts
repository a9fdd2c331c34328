/**
 * MQTT 5 session lifetime ([MQTT-3.1.2-23], [MQTT-4.1.0-?]): a session ends
 * Session Expiry Interval seconds after its connection closes, unless a
 * connection with the same client identifier has taken it up meanwhile. 0
 * ends it with the connection; 0xFFFFFFFF never. Ending a session wipes what
 * the store keeps for it (subscriptions, queued and in-flight messages,
 * inbound QoS 2 state, the "session exists" record).
 *
 * Timers live in memory: after a broker restart a v5 session that was
 * counting down is kept until its client returns (the same as a 3.1.1
 * persistent session).
 */
import type { V5Connection } from "./state.js";

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
  ) {}

  /** A CONNECT for this id arrived: a countdown stops, and the connection waits until an ending session is gone. */
  taken(clientId: string): Promise<void> {
    const t = this.timers.get(clientId);
    if (t) clearTimeout(t);
    this.timers.delete(clientId);
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

  private arm(clientId: string, ms: number): void {
    void this.taken(clientId);
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
