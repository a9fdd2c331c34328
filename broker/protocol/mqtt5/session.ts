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

  constructor(
    private readonly wipe: (clientId: string) => Promise<void>,
    private readonly isConnected: (clientId: string) => boolean,
    private readonly onError: (clientId: string, err: Error) => void,
  ) {}

  /** A client with this id connected: its session, if counting down, lives on. */
  taken(clientId: string): void {
    const t = this.timers.get(clientId);
    if (t) clearTimeout(t);
    this.timers.delete(clientId);
  }

  /** A v5 connection closed with `state.sessionExpiry` seconds to go. `persistent`: aedes kept the session (clean=false). */
  closed(state: V5Connection, clientId: string, persistent: boolean): void {
    if (!persistent || state.sessionExpiry === NEVER) return;
    this.arm(clientId, state.sessionExpiry * 1000);
  }

  private arm(clientId: string, ms: number): void {
    this.taken(clientId);
    // Checked on a later turn: on takeover aedes closes the old connection before it registers the new one.
    const timer = setTimeout(
      () => {
        this.timers.delete(clientId);
        if (ms > MAX_TIMER_MS) return this.arm(clientId, ms - MAX_TIMER_MS);
        if (this.isConnected(clientId)) return;
        this.wipe(clientId).catch((err: Error) => this.onError(clientId, err));
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(clientId, timer);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
