/**
 * A SUBSCRIBE or UNSUBSCRIBE that does not complete within
 * `limits.subscribeTimeoutMs` is answered with failure and undone, so it cannot
 * hold its client's later packets (packet-order.ts makes it a barrier).
 *
 * Where one can hang: every step of aedes' SUBSCRIBE/UNSUBSCRIBE that waits for
 * something else — the authorizer chain (authorizeSubscribe), the persistent
 * session's store (persistence.addSubscriptions / removeSubscriptions: in a
 * cluster, Redis commands wait in ioredis' offline queue while Redis is down,
 * and forever while a Redis host is frozen; LMDB waits for the disk), and the
 * subscription's routing (aedes.subscribe / unsubscribe: mqemitter-redis waits
 * for Redis' (P)SUBSCRIBE reply; a cluster's $share groups record members in
 * Redis). Those steps are wrapped here; the SUBACK/UNSUBACK write itself is
 * not (a client that does not read is aedes' drainTimeout's business).
 *
 * On the deadline, with a step still pending:
 * - the packet is abandoned: each wrapped step drops its continuation when it
 *   completes, so aedes' handling of that packet never goes on (no late SUBACK,
 *   no late subscription, no retained messages);
 * - what it already changed is undone: listeners it added to or removed from
 *   the router are removed/re-added, `client.subscriptions` gets back the
 *   entries it had, and a persistent session's store is told the old state
 *   (queued right behind the abandoned write on the same connection / write
 *   queue, so the store ends where it started whenever the store comes back);
 * - the client is answered: SUBACK with 0x80 for every filter ([MQTT-3.9.3-2]
 *   3.1.1 "Failure"; v5 0x80 Unspecified error [MQTT-3.9.3-1]), or for v5 an
 *   UNSUBACK with 0x80 per filter. A 3.1.1 UNSUBACK has no way to say
 *   "failed" ([MQTT-3.10.4-5]: it would claim the subscriptions are gone),
 *   so a 3.1.1 client's connection is closed instead;
 * - the barrier is released: the client's later packets proceed.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Aedes, Client } from "aedes";
import { recordSubackCode } from "./mqtt5/plugin-verdicts.js";
import { Reason } from "./mqtt5/reason-codes.js";
import { v5Of } from "./mqtt5/state.js";

type Done = (err?: Error | null) => void;
type Listener = (...args: unknown[]) => void;

interface LiveSubscription {
  qos: number;
  func: Listener;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
}

/** The aedes client fields this reads and restores (aedes 1.2: lib/client.js, lib/handlers/subscribe.js). */
interface BarrierClient {
  id: string;
  clean: boolean;
  closed: boolean;
  subscriptions: Record<string, LiveSubscription>;
  close(done?: () => void): void;
  conn: { destroy(): void };
}

interface BarrierPacket {
  cmd: string;
  messageId?: number;
  subscriptions?: { topic: string }[];
  unsubscriptions?: string[];
}

interface SubscriptionStore {
  addSubscriptions(client: unknown, subs: object[]): Promise<unknown>;
  removeSubscriptions(client: unknown, topics: string[]): Promise<unknown>;
  cleanSubscriptions(client: unknown): Promise<unknown>;
}

// aedes' own packet writer (lib/write.js: through mqtt-packet to the client's stream, where the v5 encoder sits).
const writeModule = join(dirname(createRequire(import.meta.url).resolve("aedes")), "lib", "write.js");
const write = ((await import(pathToFileURL(writeModule).href)) as { default: (client: unknown, packet: object, done: Done) => void }).default;

const noop = () => {};

export type BarrierKind = "subscribe" | "unsubscribe";

export interface BarrierTimeout {
  kind: BarrierKind;
  clientId: string;
  filters: string[];
  /** What was pending: "authorize", "store", "route". */
  waitingOn: string[];
  /** 3.1.1 UNSUBSCRIBE: the connection was closed instead of answered. */
  closed: boolean;
}

export interface BarrierDeadlineOptions {
  timeoutMs: number;
  onTimeout(timeout: BarrierTimeout): void;
  onStoreRepairError(err: Error, clientId: string): void;
}

/** One SUBSCRIBE/UNSUBSCRIBE being handled under a deadline. */
class Barrier {
  abandoned = false;
  timer: NodeJS.Timeout | null = null;
  /** Steps issued and not completed, by kind. */
  readonly pending = { authorize: 0, store: 0, route: 0 };
  /** Its calls into the subscription store (the store's own promises, settled or not). */
  readonly storeCalls: Promise<unknown>[] = [];
  /** Router changes it made, in order (undone in reverse). */
  readonly routed: { added: boolean; topic: string; func: Listener }[] = [];
  /** Each filter's `client.subscriptions` entry before the packet started (undefined: none). */
  readonly prior = new Map<string, LiveSubscription | undefined>();
  /** Filters in the packet as sent (aedes drops repeated ones later; the SUBACK answers each, [MQTT-3.9.3-1]). */
  readonly count: number;

  constructor(
    readonly client: BarrierClient,
    readonly packet: BarrierPacket,
    readonly kind: BarrierKind,
  ) {
    const filters = kind === "subscribe" ? (packet.subscriptions ?? []).map((s) => s.topic) : (packet.unsubscriptions ?? []);
    for (const f of filters) this.prior.set(f, client.subscriptions[f]);
    this.count = filters.length;
  }

  /** `done` of a wrapped step: dropped once the packet is abandoned. */
  step<A extends unknown[]>(kind: keyof Barrier["pending"], done: (...args: A) => void): (...args: A) => void {
    this.pending[kind]++;
    let called = false;
    return (...args: A) => {
      if (called) return;
      called = true;
      this.pending[kind]--;
      if (!this.abandoned) done(...args);
    };
  }
}

const deadlines = new WeakMap<object, BarrierDeadline>();

/** The deadline installed on this client's broker, if any (packet-order.ts asks for each barrier). */
export function deadlineOf(broker: object): BarrierDeadline | undefined {
  return deadlines.get(broker);
}

export class BarrierDeadline {
  /** Barriers running now, by client (one at a time per client: packet-order.ts). */
  private readonly running = new Map<BarrierClient, Barrier>();
  /** Client ids (a session outlives its connection) whose abandoned store calls have not settled and been repaired yet. */
  private readonly repairs = new Map<string, Promise<void>>();
  private readonly subscribe: Aedes["subscribe"];
  private readonly unsubscribe: Aedes["unsubscribe"];
  private readonly store: SubscriptionStore;
  private readonly storeAdd: SubscriptionStore["addSubscriptions"];
  private readonly storeRemove: SubscriptionStore["removeSubscriptions"];

  constructor(
    aedes: Aedes,
    private readonly opts: BarrierDeadlineOptions,
  ) {
    deadlines.set(aedes, this);
    this.subscribe = aedes.subscribe.bind(aedes);
    this.unsubscribe = aedes.unsubscribe.bind(aedes);
    const authorize = aedes.authorizeSubscribe;
    aedes.authorizeSubscribe = (client, sub, done) => {
      const b = this.running.get(client as unknown as BarrierClient);
      authorize.call(aedes, client, sub, b ? b.step("authorize", done) : done);
    };
    // The router: the barrier is the running one whose client holds this listener under this filter (aedes sets it first).
    aedes.subscribe = (topic, func, done) => {
      const b = this.owner(topic, func as Listener);
      if (!b) return this.subscribe(topic, func, done);
      b.routed.push({ added: true, topic, func: func as Listener });
      this.subscribe(topic, func, b.step("route", done ?? noop));
    };
    aedes.unsubscribe = (topic, func, done) => {
      const b = this.owner(topic, func as Listener);
      if (!b) return this.unsubscribe(topic, func, done);
      b.routed.push({ added: false, topic, func: func as Listener });
      this.unsubscribe(topic, func, b.step("route", done ?? noop));
    };
    this.store = (aedes as unknown as { persistence: SubscriptionStore }).persistence;
    this.storeAdd = this.store.addSubscriptions.bind(this.store);
    this.storeRemove = this.store.removeSubscriptions.bind(this.store);
    this.store.addSubscriptions = (client, subs) => this.stored(client, () => this.storeAdd(client, subs));
    this.store.removeSubscriptions = (client, topics) => this.stored(client, () => this.storeRemove(client, topics));
    // A clean start's wipe too: a repair landing after it would bring back what the client discarded.
    const storeClean = this.store.cleanSubscriptions.bind(this.store);
    this.store.cleanSubscriptions = (client) => this.stored(client, () => storeClean(client));
  }

  private owner(topic: string, func: Listener): Barrier | undefined {
    if (this.running.size === 0) return undefined;
    for (const b of this.running.values()) if (b.client.subscriptions[topic]?.func === func) return b;
    return undefined;
  }

  /**
   * A call into the subscription store. While an abandoned packet's store
   * calls and their repair are outstanding, the client's later calls wait
   * behind them: a store call can be several commands issued one after the
   * other (aedes-persistence-redis: SADD, then HMSET, then a broadcast), so
   * only "after it settled" orders a later write after all of it.
   */
  private stored(client: unknown, run: () => Promise<unknown>): Promise<unknown> {
    const repair = this.repairs.get((client as BarrierClient).id);
    const result = repair ? repair.then(run) : run();
    const b = this.running.get(client as BarrierClient);
    if (!b) return result;
    b.storeCalls.push(result);
    return new Promise((resolve, reject) => {
      const settled = b.step("store", (ok: boolean, value: unknown) => (ok ? resolve(value) : reject(value)));
      result.then(
        (value) => settled(true, value),
        (err: unknown) => settled(false, err),
      );
    });
  }

  /**
   * A barrier starts: returns the `done` to hand aedes' handler (the
   * packet-order `done` unless the deadline fires first).
   */
  watch(client: Client, packet: BarrierPacket, done: Done): Done {
    const c = client as unknown as BarrierClient;
    const b = new Barrier(c, packet, packet.cmd === "subscribe" ? "subscribe" : "unsubscribe");
    this.running.set(c, b);
    b.timer = setTimeout(() => this.expire(b, done), this.opts.timeoutMs);
    b.timer.unref(); // a broker that is closing does not wait for it
    return (err) => {
      if (b.abandoned) return;
      this.finish(b);
      done(err);
    };
  }

  private finish(b: Barrier): void {
    if (b.timer) clearTimeout(b.timer);
    b.timer = null;
    if (this.running.get(b.client) === b) this.running.delete(b.client);
  }

  private expire(b: Barrier, done: Done): void {
    b.timer = null;
    // aedes never calls back a closed client's SUBSCRIBE (lib/handlers/subscribe.js, addSubs): forget it, or it holds the client forever
    if (b.client.closed) return this.finish(b);
    const waitingOn = (Object.keys(b.pending) as (keyof Barrier["pending"])[]).filter((k) => b.pending[k] > 0);
    // Nothing of ours pending: it waits for its SUBACK/UNSUBACK to drain (aedes' drainTimeout bounds that).
    if (waitingOn.length === 0) return;
    this.finish(b);
    b.abandoned = true;
    const { client, packet } = b;
    const messageId = packet.messageId;
    this.undo(b);
    const filters = [...b.prior.keys()];
    const codes = Array.from({ length: b.count }, () => 0x80);
    const v5 = v5Of(client as unknown as Client);
    let closed = false;
    if (messageId !== undefined) {
      if (b.kind === "subscribe") {
        if (v5) codes.forEach((_, i) => recordSubackCode(v5, messageId, i, Reason.UnspecifiedError, "subscription timed out"));
        write(client, { cmd: "suback", messageId, granted: codes }, noop);
      } else if (v5) {
        v5.unsubackCodes.set(messageId, codes.map(() => Reason.UnspecifiedError));
        write(client, { cmd: "unsuback", messageId }, noop);
      } else closed = true;
    }
    this.opts.onTimeout({ kind: b.kind, clientId: client.id, filters, waitingOn, closed });
    // aedes' close() ends the socket only after unsubscribing everything, which may hang on the same store: cut it first.
    if (closed) {
      client.conn.destroy();
      client.close();
    } else done(null);
  }

  /** Put the router, the client's subscriptions and a persistent session's store back as they were. */
  private undo(b: Barrier): void {
    const { client } = b;
    for (let i = b.routed.length - 1; i >= 0; i--) {
      const r = b.routed[i]!;
      if (r.added) this.unsubscribe(r.topic, r.func as never, noop);
      else this.subscribe(r.topic, r.func as never, noop);
    }
    for (const [topic, prior] of b.prior) {
      if (prior) client.subscriptions[topic] = prior;
      else delete client.subscriptions[topic];
    }
    if (b.storeCalls.length === 0 || client.clean) return;
    const restore: object[] = [];
    const drop: string[] = [];
    for (const [topic, prior] of b.prior) {
      if (prior) restore.push({ topic, qos: prior.qos, rh: prior.rh, rap: prior.rap, nl: prior.nl });
      else if (b.kind === "subscribe") drop.push(topic);
    }
    // Once the abandoned writes have landed (or failed), write the state from before the packet.
    const repair: Promise<void> = Promise.allSettled(b.storeCalls)
      .then(async () => {
        if (restore.length > 0) await this.storeAdd(client, restore);
        if (drop.length > 0) await this.storeRemove(client, drop);
      })
      .catch((err: Error) => this.opts.onStoreRepairError(err, client.id))
      .finally(() => {
        if (this.repairs.get(client.id) === repair) this.repairs.delete(client.id);
      });
    this.repairs.set(client.id, repair);
  }
}

export function installBarrierDeadline(aedes: Aedes, opts: BarrierDeadlineOptions): BarrierDeadline | null {
  return opts.timeoutMs > 0 ? new BarrierDeadline(aedes, opts) : null;
}
