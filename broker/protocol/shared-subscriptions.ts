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
  readonly route: Deliver;
}

interface ClientInternals {
  id: string;
  closed: boolean;
  clean: boolean;
  subscriptions: Record<string, { qos: number; func: Deliver }>;
}

export interface SharedSubscriptions {
  /** The session of `clientId` ended: it leaves every group it was away from. */
  forget(clientId: string): void;
  /** Groups and their connected/away member counts (admin, tests). */
  describe(): { topic: string; members: number; away: number }[];
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

  function makeGroup(topic: string, filter: string): Group {
    const group: Group = {
      filter,
      members: [],
      away: new Map(),
      cursor: 0,
      route: (packet, callback) => {
        const n = group.members.length;
        if (n > 0) {
          const func = group.members[group.cursor++ % n]!;
          // the member's own delivery function, at most at its granted QoS ([MQTT-3.8.4-6])
          const granted = ownerOf(topic, func)?.subscriptions[topic]?.qos ?? 0;
          return func(packet.qos > granted ? ({ ...packet, qos: granted } as AedesPublishPacket) : packet, callback);
        }
        if (packet.qos === 0 || group.away.size === 0) return callback();
        const ids = [...group.away.keys()];
        const clientId = ids[group.cursor++ % ids.length]!;
        const qos = Math.min(packet.qos, group.away.get(clientId)!);
        if (qos === 0) return callback();
        broker.persistence.outgoingEnqueue({ clientId }, { ...packet, qos } as AedesPublishPacket).then(callback, callback);
      },
    };
    groups.set(topic, group);
    subscribe(filter, group.route);
    return group;
  }

  broker.subscribe = (topic, func, done) => {
    const share = parseShare(topic);
    if (share === null || share === "invalid") return subscribe(topic, func, done);
    const group = groups.get(topic) ?? makeGroup(topic, share.filter);
    if (!group.members.includes(func)) group.members.push(func);
    const owner = ownerOf(topic, func);
    if (owner) group.away.delete(owner.id);
    done?.();
  };

  broker.unsubscribe = (topic, func, done) => {
    const group = parseShare(topic) ? groups.get(topic) : undefined;
    if (!group) return unsubscribe(topic, func, done);
    const at = group.members.indexOf(func);
    if (at >= 0) group.members.splice(at, 1);
    const owner = ownerOf(topic, func);
    // aedes unsubscribes everything when a connection closes; a persistent session stays a member
    if (owner && owner.closed && !owner.clean) group.away.set(owner.id, owner.subscriptions[topic]?.qos ?? 0);
    if (group.members.length === 0 && group.away.size === 0) {
      groups.delete(topic);
      unsubscribe(group.filter, group.route);
    }
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
  });

  function forget(clientId: string): void {
    for (const [topic, group] of groups) {
      if (!group.away.delete(clientId)) continue;
      if (group.members.length === 0 && group.away.size === 0) {
        groups.delete(topic);
        unsubscribe(group.filter, group.route);
      }
    }
  }

  return {
    forget,
    describe: () => [...groups].map(([topic, g]) => ({ topic, members: g.members.length, away: g.away.size })),
  };
}
