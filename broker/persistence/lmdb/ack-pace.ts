/**
 * The adaptive write hold (`writeHold: "adaptive"`, broker/OPERATIONS.md
 * "Deliveries acknowledged before they are written"): how fast each
 * persistent session acknowledges its QoS 1 deliveries, and what that says
 * about holding its next delivery from the disk.
 *
 * Holding pays only when the subscriber's PUBACK usually beats the hold: the
 * put is then never written. When it does not, the delivery is written anyway
 * and its publisher waited the hold for nothing. So each session keeps a small
 * histogram of delivery→PUBACK latency over its recent deliveries (buckets =
 * the hold lengths the store can use, 1 ms up to the cap `writeHoldMs`, plus
 * "over the cap"), and from it a decision:
 *   - write first (hold nothing) when fewer than HOLD_MIN_SHARE of its
 *     deliveries are acknowledged within the cap;
 *   - otherwise hold for the shortest step within which HOLD_QUANTILE of them
 *     are acknowledged (the cap at most).
 *
 * Every acknowledged delivery to a connected session is a sample, held or
 * written first: a session writing first keeps being measured, so one that
 * speeds up is held again as soon as its acks say so (the "re-probe" costs
 * nothing extra). A held delivery whose hold runs out unacknowledged is
 * sampled then, as "later than the hold" (a censored sample in the bucket
 * above the hold, "over the cap" when the hold was the cap): a subscriber
 * that stops acknowledging is moved up the steps and then to writing first
 * without waiting for acks that never come, and its late ack is not counted
 * twice.
 *
 * Deterministic (counts, no clock but the latencies themselves) and cheap: a
 * sample is a short scan of ≤ 21 step bounds and an increment; the decision is
 * recomputed every DECIDE_EVERY samples; one object and one small typed array
 * per session, allocated when the session first gets a held delivery.
 */

/** Samples before the first decision; until then a session is held for the cap, as with a fixed hold. */
export const MIN_SAMPLES = 8;
/** Recompute the decision after this many new samples. */
export const DECIDE_EVERY = 8;
/** Halve the counts when they reach this many: the estimate follows the last ~64–128 deliveries. */
export const DECAY_AT = 128;
/** Hold only if at least this share of deliveries is acknowledged within the cap. */
export const HOLD_MIN_SHARE = 0.5;
/** Hold for the step within which this share of deliveries is acknowledged. */
export const HOLD_QUANTILE = 0.95;

/** Geometric steps (ms) a hold can take, the last being the cap. */
const LADDER = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768];

/** The hold lengths (whole ms, ascending, ending with `capMs`) the adaptive hold chooses from. */
export function holdSteps(capMs: number): number[] {
  const steps = LADDER.filter((ms) => ms < capMs);
  steps.push(capMs);
  return steps;
}

/** What the store decided for a session: hold for steps[step] ms, or (WRITE_FIRST) write at once. */
export const WRITE_FIRST = -1;

export class AckPace {
  /** Decayed sample counts: [i] = acknowledged within steps[i] ms (and after steps[i-1]); last = later than the cap. */
  readonly counts: Uint32Array;
  total = 0;
  #sinceDecision = 0;
  /** Index into the steps to hold for, or WRITE_FIRST. */
  step: number;
  /** performance.now() of the last delivery enqueued for it (idle sessions are pruned). */
  lastUsed = 0;

  constructor(
    readonly clientId: string,
    private readonly steps: readonly number[],
  ) {
    this.counts = new Uint32Array(steps.length + 1);
    this.step = steps.length - 1; // no evidence yet: the cap, as a fixed hold
  }

  /** A delivery was acknowledged `ms` after it was enqueued. Returns true if the decision changed. */
  sample(ms: number): boolean {
    const steps = this.steps;
    let i = 0;
    while (i < steps.length && ms > steps[i]!) i++;
    return this.#add(i);
  }

  /** A delivery held for steps[step] ms was not acknowledged within it (censored: later than that). */
  timedOut(step: number): boolean {
    return this.#add(step + 1);
  }

  #add(bucket: number): boolean {
    this.counts[bucket]!++;
    this.total++;
    if (this.total >= DECAY_AT) {
      let t = 0;
      for (let i = 0; i < this.counts.length; i++) t += this.counts[i] = this.counts[i]! >>> 1;
      this.total = t;
    }
    if (++this.#sinceDecision < DECIDE_EVERY || this.total < MIN_SAMPLES) return false;
    this.#sinceDecision = 0;
    const before = this.step;
    this.step = this.#decide();
    return this.step !== before;
  }

  #decide(): number {
    const counts = this.counts;
    const within = this.total - counts[counts.length - 1]!;
    if (within < this.total * HOLD_MIN_SHARE) return WRITE_FIRST;
    const want = this.total * HOLD_QUANTILE;
    let cum = 0;
    for (let i = 0; i < this.steps.length; i++) {
      cum += counts[i]!;
      if (cum >= want) return i;
    }
    return this.steps.length - 1; // between HOLD_MIN_SHARE and HOLD_QUANTILE within the cap: hold for the cap
  }
}

/** The sessions' paces, with the counts of each decision for the figures. */
export class AckPaces {
  readonly steps: readonly number[];
  readonly #paces = new Map<string, AckPace>();
  /** Sessions currently written first. */
  writingFirst = 0;

  constructor(capMs: number) {
    this.steps = holdSteps(capMs);
  }

  get size(): number {
    return this.#paces.size;
  }

  /** The session's pace, created on its first held delivery. */
  of(clientId: string, now: number): AckPace {
    let p = this.#paces.get(clientId);
    if (p === undefined) {
      p = new AckPace(clientId, this.steps);
      this.#paces.set(clientId, p);
    }
    p.lastUsed = now;
    return p;
  }

  /** `p`'s delivery was acknowledged `ms` after it was enqueued. */
  sample(p: AckPace, ms: number): void {
    const before = p.step;
    if (p.sample(ms)) this.#changed(p, before);
  }

  /** `p`'s delivery held for steps[step] ms was not acknowledged within it. */
  timedOut(p: AckPace, step: number): void {
    const before = p.step;
    if (p.timedOut(step)) this.#changed(p, before);
  }

  /** Keep the decision count right (a pace already forgotten no longer counts). */
  #changed(p: AckPace, before: number): void {
    if (this.#paces.get(p.clientId) !== p) return;
    if (before === WRITE_FIRST) this.writingFirst--;
    if (p.step === WRITE_FIRST) this.writingFirst++;
  }

  /** The session is offline: its next connection (possibly another device or network) is learned afresh. */
  forget(clientId: string): void {
    const p = this.#paces.get(clientId);
    if (p === undefined) return;
    if (p.step === WRITE_FIRST) this.writingFirst--;
    this.#paces.delete(clientId);
  }

  /** Drop the paces of sessions that got no delivery since `before` (the store's periodic sweep). */
  pruneIdle(before: number): void {
    for (const [id, p] of this.#paces) if (p.lastUsed < before) this.forget(id);
  }

  clear(): void {
    this.#paces.clear();
    this.writingFirst = 0;
  }
}
