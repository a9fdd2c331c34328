/**
 * When a QoS 1 publisher may get its PUBACK, decided per message rather than
 * per write (broker/OPERATIONS.md "Durability model", "Deliveries acknowledged
 * before they were written").
 *
 * The rule a PUBACK keeps with durability "sync": every persistent session
 * that must receive the message has it on disk, OR has already received it
 * and acknowledged it (its PUBACK reached the broker). In the second case a
 * crash can lose nothing the subscriber still needs, so the write is not
 * needed at all. The store (lmdb/queues.ts) therefore holds a delivery to a
 * connected session back from the disk for a few milliseconds; if the
 * subscriber's PUBACK arrives first the put is dropped unwritten, otherwise it
 * is written and the publisher waits for its flush as before.
 *
 * A ticket is the publisher's side of that: opened when the publish starts
 * (hooks.ts, publishBeforePuback), given one count per delivery the store
 * holds or writes, and sealed when aedes finished routing the message. It
 * completes once every delivery was written+flushed or acknowledged, and never
 * before the publisher's previous ticket: PUBACKs go out in the order the
 * PUBLISH packets arrived [MQTT-4.6.0-2]. Tickets chain per publisher only, so
 * a slow subscriber of one publisher's messages never delays another's PUBACK.
 */

/** Completion of one published message's durability: see the module comment. */
export class AckTicket {
  /** Deliveries not yet written+flushed or acknowledged, plus one until sealed. */
  #pending = 1;
  #error: unknown;
  #done: ((err?: unknown) => void) | undefined;
  /** The same publisher's next ticket, waiting for this one. */
  #next: AckTicket | undefined;
  /** The previous ticket of the same publisher has not finished yet. */
  #behind = false;
  finished = false;

  constructor(
    readonly brokerId: string,
    readonly counter: number,
    /** Whether a session is connected now (a delivery to it may be acknowledged soon). */
    readonly isOnline: (clientId: string) => boolean,
  ) {}

  /** One more delivery this message waits for. */
  add(): void {
    this.#pending++;
  }

  /** A delivery was written and flushed, or acknowledged by its subscriber. */
  settleOne(): void {
    if (--this.#pending === 0) this.#finish();
  }

  /** A delivery's write failed: the publisher gets the error (aedes then closes it), once the rest settled. */
  fail(err: unknown): void {
    this.#error ??= err;
    this.settleOne();
  }

  /** Routing is over (no more deliveries will be added): `done` runs when the ticket completes. */
  seal(done: (err?: unknown) => void): void {
    this.#done = done;
    this.settleOne();
  }

  /** Called by the gate: this ticket completes only after `prev`. */
  follow(prev: AckTicket): void {
    this.#behind = true;
    prev.#next = this;
  }

  #finish(): void {
    // Iterative: a flush can complete a long run of one publisher's tickets at once.
    let t: AckTicket | undefined = this;
    while (t && t.#pending === 0 && !t.#behind && !t.finished) {
      t.finished = true;
      const done = t.#done;
      t.#done = undefined;
      done?.(t.#error);
      const next: AckTicket | undefined = t.#next;
      t.#next = undefined;
      if (next) next.#behind = false;
      t = next;
    }
  }
}

/** Opens tickets for publishers and hands them to the store's enqueue (by the message's broker id + counter). */
export class AckGate {
  /** Tickets opened and not yet sealed, by the message's broker counter. */
  readonly #open = new Map<number, AckTicket>();
  /** Each publisher's last ticket. */
  readonly #last = new WeakMap<object, AckTicket>();

  /**
   * Start a ticket for `packet`, published by `publisher`. Gives the packet
   * its broker id and counter now (aedes would on publish; aedes-packet keeps
   * those already set), so the store can tell which enqueue is this message's.
   */
  open(
    packet: { brokerId?: string; brokerCounter?: number },
    broker: { id: string; counter: number },
    publisher: object,
    isOnline: (clientId: string) => boolean,
  ): AckTicket {
    const counter = ++broker.counter;
    packet.brokerId = broker.id;
    packet.brokerCounter = counter;
    const t = new AckTicket(broker.id, counter, isOnline);
    const prev = this.#last.get(publisher);
    if (prev && !prev.finished) t.follow(prev);
    this.#last.set(publisher, t);
    this.#open.set(counter, t);
    return t;
  }

  /** The open ticket of the message an enqueue is for, if its publisher waits on one. */
  claim(packet: { brokerId?: unknown; brokerCounter?: unknown }): AckTicket | undefined {
    const t = this.#open.get(packet.brokerCounter as number);
    return t !== undefined && t.brokerId === packet.brokerId ? t : undefined;
  }

  /** Routing of `t`'s message is over (or failed): no more deliveries join it. */
  seal(t: AckTicket, done: (err?: unknown) => void): void {
    this.#open.delete(t.counter);
    t.seal(done);
  }
}
