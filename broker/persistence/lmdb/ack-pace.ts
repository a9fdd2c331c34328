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
 *     deliveries are acknowledged within the cap (once held: fewer than
 *     HOLD_KEEP_SHARE);
 *   - otherwise hold for the cap, or for HOLD_MARGIN × their p99 (rounded up
 *     to a step) where that is at most half the cap.
 *
 * A held delivery whose hold runs out unacknowledged is sampled then, as
 * "later than the hold" (a censored sample in the bucket above the hold,
 * "over the cap" when the hold was the cap): a subscriber that stops
 * acknowledging is moved up the steps and then to writing first without
 * waiting for acks that never come, and its late ack is not counted twice.
 * A session written first keeps being sampled (its acks' real latency).
 *
 * A new session is held, as with a fixed hold, and decided on only after
 * INITIAL_SAMPLES samples and INITIAL_MS (a connection's first deliveries
 * are slow to be acknowledged: JIT, the client's start, a burst; deciding on
 * them wrote the bench's fast subscriber first for thousands of deliveries of
 * every run at load 15–17, bench/README.md "hold5").
 *
 * Probes. Whether holding pays again is decided by holding: a session written
 * first is probed again once its acks look fast enough. A probe holds for
 * the cap and the outcomes of its first PROBE_SIZE deliveries alone decide:
 * hold from then on, or write first. The
 * written-first samples only say when to try: a subscriber's acks can look
 * fast while it is written first and not while it is held (measured with
 * mosquitto_sub, paho and mqtt.js under load, bench/README.md "hold5": the
 * publisher's PUBACKs, and so the subscriber's bursts, follow another rhythm
 * once deliveries wait for the hold). So each failed probe doubles the
 * written-first samples before the next (PROBE_MIN … PROBE_MAX); a hold that
 * lasted PROBE_SETTLED samples before it was given up resets the wait. A
 * probe holds every delivery until it is decided (about one hold): for a
 * subscriber that keeps up it costs nothing (the bench's generator: writing
 * the deliveries that arrive meanwhile first cost up to 60% more writes at
 * load 19), for one that does not, one publisher window held in vain per
 * failed probe.
 *
 * Deterministic (counts and thresholds, no randomness; the clock gives the
 * latencies and the initial INITIAL_MS) and cheap: a
 * sample is a short scan of ≤ 21 step bounds and an increment; the decision is
 * recomputed every DECIDE_EVERY samples; one object and one small typed array
 * per session, allocated when the session first gets a delivery.
 */

/** Recompute the decision after this many new samples. */
export const DECIDE_EVERY = 16;
/** Halve the counts when they reach this many: the estimate follows the last ~256–512 deliveries (a few ms at the bench's rate, so a short stall does not decide). */
export const DECAY_AT = 512;
/** This many held deliveries in a row not acknowledged within the hold end holding at once (a subscriber that stopped acknowledging). */
export const TIMEOUT_RUN = 512;
/** Start holding (a probe succeeds) only if at least this share of deliveries is acknowledged within the cap. */
export const HOLD_MIN_SHARE = 0.5;
/**
 * Keep holding while at least this share is (hysteresis). A held delivery
 * that loses costs its publisher up to the hold but no work (it is written
 * as it would have been); one that wins saves its write. Where the broker is
 * busy the saved writes are what sets the rate: in the bench's closed loop at
 * load 13–16 (bench/README.md "hold5"), a subscriber that beat the 5 ms hold
 * with 20–25% of its acks ran at 0.63–0.71× the base build's (fixed hold)
 * rate once it was written first below 25%. Below ~15% the hold is mostly
 * latency for nothing (the ordinary clients measured there won 1–10%).
 */
export const HOLD_KEEP_SHARE = 0.15;
/**
 * Hold for HOLD_MARGIN × the latency within which HOLD_QUANTILE of the
 * deliveries are acknowledged, rounded up to a step (the cap at most): a
 * delivery whose hold runs out just before its PUBACK is written for nothing,
 * so the hold is shortened only where the acks leave room.
 */
export const HOLD_QUANTILE = 0.99;
export const HOLD_MARGIN = 1.5;
/**
 * …and only where that is at most half the cap: a hold a little shorter than
 * the cap saves its losers little latency and turns late winners into writes
 * (with the bench's generator, acks at 2–5 ms against the 5 ms cap, holding
 * for 1.5 × p99 wrote 1.2–2.5% of deliveries against 0.2–1.0% at the cap, and
 * ran more timers).
 */
export const SHORTEN_BELOW = 0.5;
/** Outcomes (acknowledged within the cap or not) that decide a probe. */
export const PROBE_SIZE = 8;
/** Written-first samples before the first re-probe; doubled by each failed probe up to PROBE_MAX. */
export const PROBE_MIN = 16;
export const PROBE_MAX = 4096;
/** A hold that lasted this many samples before it was given up paid: the next probe waits PROBE_MIN again. */
export const PROBE_SETTLED = 64;
/** A new session is held, undecided, for at least this many samples and this long (ms) after its first delivery. */
export const INITIAL_SAMPLES = 32;
export const INITIAL_MS = 200;

/** Geometric steps (ms) a hold can take, the last being the cap. */
const LADDER = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768];

/** The hold lengths (whole ms, ascending, ending with `capMs`) the adaptive hold chooses from. */
export function holdSteps(capMs: number): number[] {
  const steps = LADDER.filter((ms) => ms < capMs);
  steps.push(capMs);
  return steps;
}

/** What the store decided for a session: hold for steps[step] ms, or write at once. */
export const WRITE_FIRST = -1;

export class AckPace {
  /** Decayed sample counts: [i] = acknowledged within steps[i] ms (and after steps[i-1]); last = later than the cap. */
  readonly counts: Uint32Array;
  total = 0;
  /** Index into the steps to hold for, or WRITE_FIRST. While probing: the cap. */
  step: number;
  /** performance.now() of the last delivery enqueued for it (idle sessions are pruned). */
  lastUsed = 0;
  /** A probe is running. */
  probing = false;
  /** Samples seen, up to INITIAL_SAMPLES. */
  #seen = 0;
  /** Still in the initial hold (INITIAL_SAMPLES, INITIAL_MS). */
  #young = true;
  #probeSamples = 0;
  /** performance.now() the probe started at: only deliveries enqueued since are its samples. */
  #probeFrom = -Infinity;
  #sinceDecision = 0;
  /** Samples since the session last went from held to written first or back. */
  #sinceSwitch = 0;
  /** Written-first samples before the next probe (backoff). */
  #probeAfter = PROBE_MIN;
  /** Held deliveries in a row that ran out unacknowledged. */
  #timeoutRun = 0;

  constructor(
    readonly clientId: string,
    private readonly steps: readonly number[],
    /** performance.now() of its first delivery. */
    private readonly bornAt = 0,
  ) {
    this.counts = new Uint32Array(steps.length + 1);
    this.step = steps.length - 1;
  }

  /** A delivery enqueued at `since` was acknowledged `ms` later. Returns true if the session went from held to written first or back. */
  sample(ms: number, since: number): boolean {
    if (this.probing && since < this.#probeFrom) return false; // from before the probe: not its outcome
    const steps = this.steps;
    let i = 0;
    while (i < steps.length && ms > steps[i]!) i++;
    this.#timeoutRun = 0;
    return this.#add(i);
  }

  /** A delivery held for steps[step] ms was not acknowledged within it (censored: later than that). */
  timedOut(step: number, since: number): boolean {
    if (this.probing && since < this.#probeFrom) return false;
    // a run of timeouts at the cap: it stopped acknowledging (at a shorter hold they only lengthen it)
    if (step === this.steps.length - 1 && ++this.#timeoutRun >= TIMEOUT_RUN && !this.#young && !this.probing && this.step !== WRITE_FIRST) {
      this.#timeoutRun = 0;
      this.#add(step + 1);
      if (this.step === WRITE_FIRST) return true; // the regular decision already gave up
      this.#giveUp();
      return true;
    }
    return this.#add(step + 1);
  }

  #add(bucket: number): boolean {
    this.counts[bucket]!++;
    this.total++;
    this.#sinceSwitch++;
    if (this.total >= DECAY_AT) this.#halve();
    const wasWritingFirst = this.step === WRITE_FIRST;
    if (this.#young) {
      if (++this.#seen < INITIAL_SAMPLES || performance.now() - this.bornAt < INITIAL_MS) return false;
      this.#young = false;
    }
    if (this.probing) {
      if (++this.#probeSamples >= PROBE_SIZE) this.#endProbe(this.#decide(HOLD_MIN_SHARE) !== WRITE_FIRST);
    } else if (++this.#sinceDecision >= DECIDE_EVERY) {
      this.#sinceDecision = 0;
      const next = this.#decide(wasWritingFirst ? HOLD_MIN_SHARE : HOLD_KEEP_SHARE);
      if (wasWritingFirst) {
        if (next !== WRITE_FIRST && this.#sinceSwitch >= this.#probeAfter) this.#startProbe();
      } else if (next === WRITE_FIRST) {
        this.#giveUp();
      } else {
        this.step = next; // held: about as long as its acks take
      }
    }
    return wasWritingFirst !== (this.step === WRITE_FIRST);
  }

  /** Stop holding. A hold that had lasted paid: the next probe waits the least again. */
  #giveUp(): void {
    if (this.#sinceSwitch >= PROBE_SETTLED) this.#probeAfter = PROBE_MIN;
    this.step = WRITE_FIRST;
    this.#sinceSwitch = 0;
    this.#sinceDecision = 0;
  }

  #startProbe(): void {
    this.probing = true;
    this.#probeSamples = 0;
    this.#probeFrom = performance.now();
    this.counts.fill(0); // the probe's outcomes alone decide
    this.total = 0;
    this.step = this.steps.length - 1; // does it beat the cap?
    this.#sinceSwitch = 0;
  }

  #endProbe(holds: boolean): void {
    this.probing = false;
    this.#sinceDecision = 0;
    this.#sinceSwitch = 0;
    if (holds) {
      this.step = this.#decide(HOLD_MIN_SHARE);
    } else {
      this.step = WRITE_FIRST;
      this.#probeAfter = Math.min(PROBE_MAX, this.#probeAfter * 2);
    }
  }

  #halve(): void {
    let t = 0;
    for (let i = 0; i < this.counts.length; i++) t += this.counts[i] = this.counts[i]! >>> 1;
    this.total = t;
  }

  /** Write first if fewer than `share` of the samples beat the cap, else the step to hold for. */
  #decide(share: number): number {
    const counts = this.counts;
    const within = this.total - counts[counts.length - 1]!;
    if (within < this.total * share) return WRITE_FIRST;
    const want = this.total * HOLD_QUANTILE;
    let cum = 0;
    for (let i = 0; i < this.steps.length; i++) {
      cum += counts[i]!;
      if (cum >= want) {
        const ms = this.steps[i]! * HOLD_MARGIN;
        const cap = this.steps.length - 1;
        if (ms > this.steps[cap]! * SHORTEN_BELOW) return cap;
        let j = i;
        while (j < cap && this.steps[j]! < ms) j++;
        return j;
      }
    }
    return this.steps.length - 1; // fewer than HOLD_QUANTILE within the cap: hold for the cap
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
      p = new AckPace(clientId, this.steps, now);
      this.#paces.set(clientId, p);
    }
    p.lastUsed = now;
    return p;
  }

  /** `p`'s delivery enqueued at `since` was acknowledged `ms` later. */
  sample(p: AckPace, ms: number, since: number): void {
    if (p.sample(ms, since)) this.#changed(p);
  }

  /** `p`'s delivery enqueued at `since`, held for steps[step] ms, was not acknowledged within it. */
  timedOut(p: AckPace, step: number, since: number): void {
    if (p.timedOut(step, since)) this.#changed(p);
  }

  /** `p` went from held to written first or back: keep the count right (a pace already forgotten no longer counts). */
  #changed(p: AckPace): void {
    if (this.#paces.get(p.clientId) !== p) return;
    this.writingFirst += p.step === WRITE_FIRST ? 1 : -1;
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
