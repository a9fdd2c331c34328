export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  /** Failures within `windowMs` that open the breaker. */
  failures: number;
  windowMs: number;
  /** How long an open breaker bypasses the plugin before letting one call through. */
  cooldownMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failures: 5, windowMs: 10_000, cooldownMs: 30_000 };

/**
 * Classic three-state breaker. Closed: calls pass, failures are counted in a
 * sliding window. Open: calls are refused until the cooldown ends. Half-open:
 * one trial call; success closes, failure reopens.
 */
export class CircuitBreaker {
  state: BreakerState = "closed";
  private readonly opts: BreakerOptions;
  private recent: number[] = [];
  private openedAt = 0;
  private trialInFlight = false;

  constructor(opts: Partial<BreakerOptions> = {}, private readonly clock: () => number = Date.now) {
    this.opts = { ...DEFAULT_BREAKER, ...opts };
  }

  allow(): boolean {
    if (this.state === "closed") return true;
    if (this.state === "open") {
      if (this.clock() - this.openedAt < this.opts.cooldownMs) return false;
      this.state = "half-open";
      this.trialInFlight = false;
    }
    // half-open: a single trial at a time (calls are synchronous, so this is the next call).
    if (this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    if (this.state === "half-open") {
      this.state = "closed";
      this.recent = [];
    }
    this.trialInFlight = false;
  }

  failure(): void {
    const now = this.clock();
    this.trialInFlight = false;
    if (this.state === "half-open") {
      this.open(now);
      return;
    }
    this.recent.push(now);
    while (this.recent.length && now - this.recent[0]! > this.opts.windowMs) this.recent.shift();
    if (this.recent.length >= this.opts.failures) this.open(now);
  }

  reset(): void {
    this.state = "closed";
    this.recent = [];
    this.trialInFlight = false;
  }

  private open(now: number): void {
    this.state = "open";
    this.openedAt = now;
    this.recent = [];
  }
}
