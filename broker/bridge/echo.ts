/**
 * The topic+payload echo heuristic of one bridge, for a 3.1.1 upstream that
 * may send the bridge's own messages back (no no-local in 3.1.1, and the
 * bridge flag refused): what the bridge sent up within `windowMs` is
 * remembered by topic and payload digest, and an inbound copy of it is taken
 * for an echo, once per copy sent.
 */
import { createHash } from "node:crypto";

export class EchoMemory {
  private readonly recent = new Map<string, { count: number; at: number }>();

  constructor(private readonly windowMs: number) {}

  private key(topic: string, payload: Buffer): string {
    return `${topic}\u0000${createHash("sha1").update(payload).digest("base64")}`;
  }

  /** A message was sent up. */
  remember(topic: string, payload: Buffer): void {
    const key = this.key(topic, payload);
    const e = this.recent.get(key);
    if (e) {
      e.count++;
      e.at = Date.now();
    } else this.recent.set(key, { count: 1, at: Date.now() });
  }

  /** Whether an inbound message is the copy of one sent up (and forget that copy). */
  isEcho(topic: string, payload: Buffer): boolean {
    if (this.recent.size === 0) return false;
    const key = this.key(topic, payload);
    const e = this.recent.get(key);
    if (!e) return false;
    if (--e.count === 0) this.recent.delete(key);
    return true;
  }

  /** Forget what was sent longer than the window ago. */
  expire(now = Date.now()): void {
    if (this.recent.size === 0) return;
    const cutoff = now - this.windowMs;
    for (const [k, v] of this.recent) if (v.at < cutoff) this.recent.delete(k);
  }
}
