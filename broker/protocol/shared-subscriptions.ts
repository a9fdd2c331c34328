/**
 * Shared subscriptions, `$share/{ShareName}/{filter}` (MQTT 5.0 section
 * 4.8.2), for MQTT 5 and — as EMQX and HiveMQ do — 3.1.1 clients alike.
 *
 * aedes 1.2 knows nothing of them: it would subscribe the literal filter
 * "$share/g/a/b", which no topic matches. Everything else about the
 * subscription stays aedes' (SUBACK, the session's stored subscriptions,
 * unsubscribe, the per-client delivery function with its QoS, No Local and
 * Retain As Published handling). Only the router registration is replaced:
 * aedes.subscribe/unsubscribe of a `$share/` filter adds or removes the client
 * as a member of its group, and the group has one router listener on the
 * real filter that hands each message to ONE member, round robin
 * ([MQTT-4.8.2-?]: "each message is sent to only one of the sessions").
 *
 * Persistent sessions: a member whose session outlives its connection stays
 * in the group while away. When no member is connected, a QoS 1/2 message is
 * stored in the queue of one away member (round robin), which gets it when it
 * returns; a QoS 0 message is dropped. A message already sent to a member that
 * disconnects before acknowledging it stays in that member's session and is
 * redelivered to it when it returns (not to another member; the spec allows
 * either, [MQTT-4.8.2-4..5]); a clean member's unacknowledged messages are lost
 * with its session. Group membership of away sessions is in memory: after a
 * broker restart a group knows a member again once it reconnects.
 *
 * Retained messages are not sent for a shared subscription ([MQTT-3.8.4-?]):
 * aedes looks them up by the literal "$share/..." filter and finds none.
 *
 * In cluster mode a ShareDispatcher (broker/cluster/shared-groups.ts) makes
 * the choice over the members of every node, and records membership changes
 * in Redis; this module then still owns the local members and delivers to
 * them (deliverTo, enqueueFor), and falls back to the choice above while
 * Redis is unreachable (deliverLocally).
 */
import type { Aedes, AedesPublishPacket, Client } from "aedes";

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

export interface ShareName {
  group: string;
  filter: string;
}

/** `$share/{group}/{filter}` split, or null when `topic` is not a shared subscription; `invalid` when it is malformed ([MQTT-4.8.2-1/2]). */
export function parseShare(topic: string): ShareName | "invalid" | null {
  if (!topic.startsWith("$share/")) return null;
  const rest = topic.slice(7);
  const slash = rest.indexOf("/");
  if (slash <= 0) return "invalid";
  const group = rest.slice(0, slash);
  const filter = rest.slice(slash + 1);
  if (group.includes("+") || group.includes("#") || filter.length === 0) return "invalid";
  return { group, filter };
}

/** The filter a subscription matches topics with (the shared subscription's own filter for `$share/`). */
export function matchingFilter(subscription: string): string {
  const share = parseShare(subscription);
  return share && share !== "invalid" ? share.filter : subscription;
}

interface Group {
  readonly filter: string;
  readonly members: Deliver[];
  /** Away members with persistent sessions: client id → granted QoS. */
  readonly away: Map<string, number>;
  cursor: number;
  /** Kept by the cluster: the group has members on other nodes (its route must stay). */
  held: boolean;
  readonly route: Deliver;
}

interface ClientInternals {
  id: string;
  closed: boolean;
  clean: boolean;
  subscriptions: Record<string, { qos: number; func: Deliver }>;
}

/**
 * Who decides which member gets a message when several brokers share the
 * groups (cluster mode, broker/cluster/shared-groups.ts). Without one, the
 * members of this broker are the whole group.
 */
export interface ShareDispatcher {
  /** A message matched the group's filter here; hand it to one member of the whole group, then call `done` once. */
  dispatch(topic: string, packet: AedesPublishPacket, done: () => void): void;
  /** A member joined here (SUBSCRIBE, or a persistent session restored on connect); resolves when recorded. */
  joined(topic: string, clientId: string, qos: number, persistent: boolean): Promise<void>;
  /** A member left here: unsubscribed (`awayQos` null) or its persistent session's connection closed. */
  left(topic: string, clientId: string, awayQos: number | null): void;
  /** The session of `clientId` ended (or it connected with a clean session): it leaves every group. */
  sessionEnded(clientId: string): void;
}

export interface SharedSubscriptions {
  /** The session of `clientId` ended: it leaves every group it was away from. */
  forget(clientId: string): void;
  /** Groups and their connected/away member counts (admin, tests). */
  describe(): { topic: string; members: number; away: number }[];
  /** Cluster mode: decide through `dispatcher` from now on. */
  setDispatcher(dispatcher: ShareDispatcher | null): void;
  /** The single-broker choice: a connected member here, else a QoS 1/2 message queued for an away one. */
  deliverLocally(topic: string, packet: AedesPublishPacket, done: () => void): void;
  /** Deliver to this member if it is connected here and still in the group; false (done not called) if not. */
  deliverTo(topic: string, clientId: string, packet: AedesPublishPacket, done: () => void): boolean;
  /** Queue a QoS 1/2 message in the session of an away member, at most at `grantedQos`. */
  enqueueFor(clientId: string, grantedQos: number, packet: AedesPublishPacket, done: () => void): void;
  /** Keep (or stop keeping) a route for a group whose members are on other brokers. */
  hold(topic: string, held: boolean): void;
  /** Members connected here and away members known here, per group (to record them again). */
  localMembers(): { topic: string; clientId: string; qos: number; persistent: boolean; away: boolean }[];
}

export function installSharedSubscriptions(aedes: Aedes): SharedSubscriptions {
  const broker = aedes as unknown as {
    subscribe(topic: string, func: Deliver, done?: (err?: Error) => void): void;
    unsubscribe(topic: string, func: Deliver, done?: (err?: Error) => void): void;
    clients: Record<string, Client>;
    persistence: { outgoingEnqueue(sub: { clientId: string }, packet: AedesPublishPacket): Promise<void> };
  };
  const groups = new Map<string, Group>();
  /** Which client a member's delivery function belongs to. */
  const owners = new WeakMap<Deliver, ClientInternals>();
  let dispatcher: ShareDispatcher | null = null;

  const ownerOf = (topic: string, func: Deliver): ClientInternals | undefined => {
    let owner = owners.get(func);
    if (owner) return owner;
    for (const c of Object.values(broker.clients)) {
      const ci = c as unknown as ClientInternals;
      if (ci.subscriptions[topic]?.func === func) owner = ci;
    }
    if (owner) owners.set(func, owner);
    return owner;
  };

  const subscribe = broker.subscribe.bind(aedes);
  const unsubscribe = broker.unsubscribe.bind(aedes);

  // the member's own delivery function, at most at its granted QoS ([MQTT-3.8.4-6])
  const capped = (packet: AedesPublishPacket, granted: number) => (packet.qos > granted ? ({ ...packet, qos: granted } as AedesPublishPacket) : packet);

  function enqueueFor(clientId: string, granted: number, packet: AedesPublishPacket, done: () => void): void {
    const qos = Math.min(packet.qos, granted);
    if (qos === 0) return done();
    broker.persistence.outgoingEnqueue({ clientId }, { ...packet, qos } as AedesPublishPacket).then(done, done);
  }

  function deliverLocally(topic: string, packet: AedesPublishPacket, done: () => void): void {
    const group = groups.get(topic);
    if (!group) return done();
    const n = group.members.length;
    if (n > 0) {
      const func = group.members[group.cursor++ % n]!;
      return func(capped(packet, ownerOf(topic, func)?.subscriptions[topic]?.qos ?? 0), done);
    }
    if (packet.qos === 0 || group.away.size === 0) return done();
    const ids = [...group.away.keys()];
    const clientId = ids[group.cursor++ % ids.length]!;
    enqueueFor(clientId, group.away.get(clientId)!, packet, done);
  }

  function makeGroup(topic: string, filter: string): Group {
    const group: Group = {
      filter,
      members: [],
      away: new Map(),
      cursor: 0,
      held: false,
      route: (packet, callback) => (dispatcher ? dispatcher.dispatch(topic, packet, callback) : deliverLocally(topic, packet, callback)),
    };
    groups.set(topic, group);
    subscribe(filter, group.route);
    return group;
  }

  function dropIfIdle(topic: string, group: Group): void {
    if (group.members.length > 0 || group.away.size > 0 || group.held) return;
    groups.delete(topic);
    unsubscribe(group.filter, group.route);
  }

  broker.subscribe = (topic, func, done) => {
    const share = parseShare(topic);
    if (share === null || share === "invalid") return subscribe(topic, func, done);
    const group = groups.get(topic) ?? makeGroup(topic, share.filter);
    if (!group.members.includes(func)) group.members.push(func);
    const owner = ownerOf(topic, func);
    if (owner) group.away.delete(owner.id);
    // A restored subscription's client is not registered yet: it joins on the "client" event.
    if (!dispatcher || !owner) return done?.();
    dispatcher.joined(topic, owner.id, owner.subscriptions[topic]?.qos ?? 0, !owner.clean).then(
      () => done?.(),
      () => done?.(),
    );
  };

  broker.unsubscribe = (topic, func, done) => {
    const group = parseShare(topic) ? groups.get(topic) : undefined;
    if (!group) return unsubscribe(topic, func, done);
    const at = group.members.indexOf(func);
    if (at >= 0) group.members.splice(at, 1);
    const owner = ownerOf(topic, func);
    // aedes unsubscribes everything when a connection closes; a persistent session stays a member
    const away = !!owner && owner.closed && !owner.clean;
    const qos = owner?.subscriptions[topic]?.qos ?? 0;
    if (owner && away) group.away.set(owner.id, qos);
    if (owner && at >= 0) dispatcher?.left(topic, owner.id, away ? qos : null);
    dropIfIdle(topic, group);
    done?.();
  };

  // [MQTT-4.8.2-1/2] a malformed share name is a protocol violation, like any invalid filter
  const authorizeSubscribe = aedes.authorizeSubscribe;
  aedes.authorizeSubscribe = (client, sub, done) => {
    if (parseShare(sub.topic) === "invalid") return done(new Error(`invalid shared subscription ${JSON.stringify(sub.topic)}: $share/{ShareName}/{filter}`), null);
    authorizeSubscribe.call(aedes, client, sub, done);
  };

  aedes.on("subscribe", (subs, client) => {
    for (const s of subs) {
      const sub = (client as unknown as ClientInternals).subscriptions[s.topic];
      if (sub && parseShare(s.topic)) owners.set(sub.func, client as unknown as ClientInternals);
    }
  });
  aedes.on("client", (client) => {
    const c = client as unknown as ClientInternals;
    if (c.clean) forget(c.id);
    // Subscriptions restored from a persistent session were made before the client was registered.
    for (const topic in c.subscriptions) {
      const group = parseShare(topic) ? groups.get(topic) : undefined;
      const sub = c.subscriptions[topic]!;
      if (!group || !group.members.includes(sub.func)) continue;
      owners.set(sub.func, c);
      group.away.delete(c.id);
      void dispatcher?.joined(topic, c.id, sub.qos, !c.clean).catch(() => {});
    }
  });

  function forget(clientId: string): void {
    dispatcher?.sessionEnded(clientId);
    for (const [topic, group] of groups) {
      if (group.away.delete(clientId)) dropIfIdle(topic, group);
    }
  }

  return {
    forget,
    describe: () => [...groups].map(([topic, g]) => ({ topic, members: g.members.length, away: g.away.size })),
    setDispatcher: (d) => {
      dispatcher = d;
    },
    deliverLocally,
    deliverTo(topic, clientId, packet, done) {
      const group = groups.get(topic);
      const client = broker.clients[clientId] as unknown as ClientInternals | undefined;
      const sub = client && !client.closed ? client.subscriptions[topic] : undefined;
      if (!group || !sub || !group.members.includes(sub.func)) return false;
      sub.func(capped(packet, sub.qos), done);
      return true;
    },
    enqueueFor,
    hold(topic, held) {
      const share = parseShare(topic);
      if (!share || share === "invalid") return;
      const group = groups.get(topic) ?? (held ? makeGroup(topic, share.filter) : undefined);
      if (!group) return;
      group.held = held;
      dropIfIdle(topic, group);
    },
    localMembers() {
      const out: ReturnType<SharedSubscriptions["localMembers"]> = [];
      for (const [topic, group] of groups) {
        for (const func of group.members) {
          const owner = ownerOf(topic, func);
          if (owner) out.push({ topic, clientId: owner.id, qos: owner.subscriptions[topic]?.qos ?? 0, persistent: !owner.clean, away: false });
        }
        for (const [clientId, qos] of group.away) out.push({ topic, clientId, qos, persistent: true, away: true });
      }
      return out;
    },
  };
}
