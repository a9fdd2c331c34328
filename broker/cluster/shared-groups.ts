/**
 * `$share/{group}/{filter}` once per group across the whole cluster
 * ([MQTT-4.8.2]: "each message is sent to only one of the sessions"), on
 * Redis primitives: hashes for the membership, one Lua script for the choice,
 * a reliable list per node for the hand-over.
 *
 *   wasmq:share:groups          set of every group (`$share/g/filter`) with a member anywhere
 *   wasmq:share:m:<group>       hash client id → "L <node> <qos>" (connected, clean session),
 *                               "P <node> <qos>" (connected, persistent), "A - <qos>" (away, persistent)
 *   wasmq:share:rr:<group>      the group's round-robin counter
 *   wasmq:share:of:<node>       groups a node incarnation had members in (cleaned when it dies)
 *   wasmq:share:c:<client id>   groups a client is a member of (its session's end removes them)
 *   wasmq:share:in:<node>       messages handed to a node for one of its members
 *   wasmq:share:run:<node>      the same while being delivered (BLMOVE; survivors recover both)
 *
 * The node where a message is published decides (every other node ignores its
 * copy from the pub/sub fan-out): one PICK script takes the next member in
 * round-robin order over the connected members of every live node — a node
 * whose alive key (membership.ts) expired is skipped — and, when the member is
 * on another node, pushes the message onto that node's list in the same atomic
 * step. One Redis round trip per shared message, on one node. That node
 * answers the publisher's PUBACK only after the push, so a QoS 1/2 message is
 * in Redis before it is acknowledged. The receiving node moves each message to
 * its `run` list while it delivers it (BLMOVE), so a node killed with messages
 * waiting has them recovered by the survivor that takes over its wills and
 * chosen again among the members left: a message is never swallowed by a node
 * that cannot deliver it (at-least-once: a message the dead node had already
 * written to its member may be delivered a second time).
 *
 * With no member connected anywhere, a QoS 1/2 message is queued in the session
 * of one away persistent member (round robin), which gets it when it comes
 * back on any node; QoS 0 is dropped — the single-node semantics. A member that
 * left between the choice and the delivery is skipped and another one chosen.
 *
 * Every node keeps a router entry for every group (the `groups` set, kept in
 * step by notices on `wasmq:notice:share` and re-read when the link comes
 * back), so a message published on a node without members still finds the
 * group. While Redis is unreachable a node delivers to its own members only
 * (the single-node choice) and counts it: members on other nodes miss those
 * messages, as every subscriber on another node does (DESIGN: pub/sub is
 * at-most-once). The scripts touch keys they compute, so this needs a
 * standalone Redis (or a Sentinel-managed one), not Redis Cluster.
 */
import type { Aedes, AedesPublishPacket } from "aedes";
import type { Redis } from "ioredis";
import { createRequire } from "node:module";
import type { Logger } from "pino";
import type { SharedSubscriptions, ShareDispatcher } from "../protocol/shared-subscriptions.js";
import { CHANNELS, type Notices } from "./notices.js";
import type { RedisLink } from "./redis-link.js";

const msgpack = createRequire(createRequire(import.meta.url).resolve("mqemitter-redis"))("msgpack-lite") as { encode(v: unknown): Buffer; decode(b: Buffer): unknown };

const GROUPS = "wasmq:share:groups";
const membersKey = (group: string) => `wasmq:share:m:${group}`;
const cursorKey = (group: string) => `wasmq:share:rr:${group}`;
const ofNodeKey = (node: string) => `wasmq:share:of:${node}`;
const clientKey = (clientId: string) => `wasmq:share:c:${clientId}`;
const inboxKey = (node: string) => `wasmq:share:in:${node}`;
const runKey = (node: string) => `wasmq:share:run:${node}`;
/** A message re-chosen this many times (its member kept leaving) is delivered here or queued. */
const MAX_HOPS = 3;
/** Messages taken from the inbox per round trip once one arrived. */
const BATCH = 64;

// Shared by the scripts: drop a group nobody is in any more, and tell every node.
const DROP_IF_EMPTY = `
local function dropIfEmpty(group, channel)
  if redis.call('HLEN', 'wasmq:share:m:' .. group) == 0 then
    redis.call('SREM', '${GROUPS}', group)
    redis.call('DEL', 'wasmq:share:rr:' .. group)
    redis.call('PUBLISH', channel, '-' .. group)
  end
end`;

// KEYS: members, of-node, client. ARGV: group, client id, value, channel, "nx" to keep an existing entry.
const JOIN = `
if ARGV[5] == 'nx' then redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
if redis.call('SADD', '${GROUPS}', ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[4], '+' .. ARGV[1]) end
return 1`;

// KEYS: members, client. ARGV: group, client id, away value or '', channel, node.
// Only the node whose connection the entry names may change it: a newer connection elsewhere wins.
const LEAVE = `${DROP_IF_EMPTY}
local v = redis.call('HGET', KEYS[1], ARGV[2])
if not v then return 0 end
local kind, node = string.match(v, '^(%a) (%S+)')
if kind == 'A' or node ~= ARGV[5] then return 0 end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
dropIfEmpty(ARGV[1], ARGV[4])
return 1`;

// KEYS: client. ARGV: client id, channel.
const FORGET = `${DROP_IF_EMPTY}
for _, group in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('HDEL', 'wasmq:share:m:' .. group, ARGV[1])
  dropIfEmpty(group, ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1`;

// KEYS: of-node. ARGV: the dead node, channel. Its persistent members become away, clean ones leave.
const NODE_GONE = `${DROP_IF_EMPTY}
for _, group in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = 'wasmq:share:m:' .. group
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local kind, node, qos = string.match(all[i + 1], '^(%a) (%S+) (%d)$')
    if node == ARGV[1] then
      if kind == 'P' then redis.call('HSET', key, all[i], 'A - ' .. qos)
      else
        redis.call('HDEL', key, all[i])
        redis.call('SREM', 'wasmq:share:c:' .. all[i], group)
      end
    end
  end
  dropIfEmpty(group, ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1`;

// KEYS: members, cursor. ARGV: calling node, encoded hand-over, message QoS, client id to skip ('' none).
// Returns {client, node, 'L'|'A', granted QoS} or nil.
const PICK = `
local all = redis.call('HGETALL', KEYS[1])
local live, away, alive = {}, {}, {}
for i = 1, #all, 2 do
  local id = all[i]
  local kind, node, qos = string.match(all[i + 1], '^(%a) (%S+) (%d)$')
  if id == ARGV[4] then
    -- not connected where recorded: still a candidate to queue for if its session persists
    if kind == 'A' or kind == 'P' then away[#away + 1] = {id, '-', qos} end
  else
    if kind == 'A' then away[#away + 1] = {id, '-', qos}
    elseif kind then
      local up = alive[node]
      if up == nil then
        up = node == ARGV[1] or redis.call('EXISTS', 'wasmq:alive:' .. node) == 1
        alive[node] = up
      end
      if up then live[#live + 1] = {id, node, qos}
      elseif kind == 'P' then away[#away + 1] = {id, '-', qos} end
    end
  end
end
local byId = function(a, b) return a[1] < b[1] end
if #live > 0 then
  table.sort(live, byId)
  local m = live[(redis.call('INCR', KEYS[2]) - 1) % #live + 1]
  -- the member's id goes first, length-prefixed: "<bytes>:<client id><hand-over>"
  if m[2] ~= ARGV[1] then redis.call('LPUSH', 'wasmq:share:in:' .. m[2], #m[1] .. ':' .. m[1] .. ARGV[2]) end
  return {m[1], m[2], 'L', m[3]}
end
if ARGV[3] == '0' or #away == 0 then return false end
table.sort(away, byId)
local m = away[(redis.call('INCR', KEYS[2]) - 1) % #away + 1]
return {m[1], '-', 'A', m[3]}`;

interface ShareCommands {
  wasmqShareJoin(members: string, ofNode: string, client: string, group: string, clientId: string, value: string, channel: string, mode: string): Promise<number>;
  wasmqShareLeave(members: string, client: string, group: string, clientId: string, away: string, channel: string, node: string): Promise<number>;
  wasmqShareForget(client: string, clientId: string, channel: string): Promise<number>;
  wasmqShareNodeGone(ofNode: string, node: string, channel: string): Promise<number>;
  wasmqSharePick(members: string, cursor: string, node: string, handover: Buffer, qos: string, skip: string): Promise<[string, string, "L" | "A", string] | null>;
}

/** What travels in a node's list (after the chosen member's id): the group, the message, how often it was re-chosen. */
interface Handover {
  g: string;
  p: AedesPublishPacket;
  h: number;
}

/** Split a list entry "<bytes>:<client id><msgpack hand-over>". */
function parseEntry(raw: Buffer): { clientId: string; handover: Handover } {
  const colon = raw.indexOf(0x3a);
  const length = Number(raw.subarray(0, colon).toString("latin1"));
  if (colon < 1 || !Number.isInteger(length)) throw new Error("no member id");
  return { clientId: raw.subarray(colon + 1, colon + 1 + length).toString("utf8"), handover: msgpack.decode(raw.subarray(colon + 1 + length)) as Handover };
}

export interface SharedGroupFigures {
  /** Messages this node chose a member for, through Redis. */
  chosen: number;
  /** Messages handed over to another node's member. */
  forwarded: number;
  /** Messages delivered here for another node's choice. */
  received: number;
  /** Messages queued for an away member (no member connected anywhere). */
  queued: number;
  /** Messages delivered to this node's members only, because Redis was unreachable. */
  localOnly: number;
  /** Messages chosen again because their member had left (or its node died). */
  rechosen: number;
}

export interface SharedGroups extends ShareDispatcher {
  readonly figures: SharedGroupFigures;
  /** Record this node's members again and re-read the groups (after the link came back). */
  resync(): Promise<void>;
  /** A node died: its clean members leave, persistent ones become away, its waiting messages are chosen again. */
  nodeGone(node: string): Promise<void>;
  close(): Promise<void>;
}

export async function installSharedGroups(opts: {
  aedes: Aedes;
  shared: SharedSubscriptions;
  link: RedisLink;
  /** The records connection (commands, scripts). */
  redis: Redis;
  notices: Notices;
  /** This node's incarnation. */
  node: string;
  logger: Logger;
}): Promise<SharedGroups> {
  const { shared, link, notices, node, logger } = opts;
  const redis = opts.redis as Redis & ShareCommands;
  redis.defineCommand("wasmqShareJoin", { numberOfKeys: 3, lua: JOIN });
  redis.defineCommand("wasmqShareLeave", { numberOfKeys: 2, lua: LEAVE });
  redis.defineCommand("wasmqShareForget", { numberOfKeys: 1, lua: FORGET });
  redis.defineCommand("wasmqShareNodeGone", { numberOfKeys: 1, lua: NODE_GONE });
  redis.defineCommand("wasmqSharePick", { numberOfKeys: 2, lua: PICK });
  const channel = CHANNELS.share;
  const figures: SharedGroupFigures = { chosen: 0, forwarded: 0, received: 0, queued: 0, localOnly: 0, rechosen: 0 };
  const warn = (what: string) => (err: Error) => logger.warn({ err: err.message }, `cluster: shared subscriptions: ${what}`);

  await notices.on(channel, (message) => {
    const text = message.toString();
    shared.hold(text.slice(1), text[0] === "+");
  });

  const value = (kind: "L" | "P" | "A", qos: number) => `${kind} ${kind === "A" ? "-" : node} ${qos}`;

  /** Choose a member for `packet` (from this node) and deliver, hand over or queue it; `done` once. */
  function choose(group: string, packet: AedesPublishPacket, hops: number, skip: string, done: () => void): void {
    if (!link.up) {
      figures.localOnly++;
      return shared.deliverLocally(group, packet, done);
    }
    figures.chosen++;
    // The script pushes the hand-over for the member it chooses, so the message goes along with the call.
    const handover = msgpack.encode({ g: group, p: packet, h: hops } satisfies Handover);
    redis.wasmqSharePick(membersKey(group), cursorKey(group), node, handover, String(packet.qos), skip).then(
      (picked) => {
        if (!picked) return done();
        const [clientId, at, kind, granted] = picked;
        if (kind === "A") {
          figures.queued++;
          return shared.enqueueFor(clientId, Number(granted), packet, done);
        }
        if (at !== node) {
          figures.forwarded++;
          return done();
        }
        if (shared.deliverTo(group, clientId, packet, done)) return;
        // Recorded here but gone (it left while the choice was made): choose again without it.
        rechoose(group, packet, hops, clientId, done);
      },
      (err: Error) => {
        warn("choosing a member failed; delivering to this node's members")(err);
        figures.localOnly++;
        shared.deliverLocally(group, packet, done);
      },
    );
  }

  function rechoose(group: string, packet: AedesPublishPacket, hops: number, skip: string, done: () => void): void {
    figures.rechosen++;
    if (hops + 1 >= MAX_HOPS) return shared.deliverLocally(group, packet, done);
    choose(group, packet, hops + 1, skip, done);
  }

  const inbox = link.connect(`wasmq-share-inbox:${node}`);
  let closed = false;
  /** Hand-overs being delivered here (base64 of the list entry), so a resync does not start them twice. */
  const delivering = new Set<string>();

  async function deliverHandover(raw: Buffer): Promise<void> {
    let entry: ReturnType<typeof parseEntry>;
    try {
      entry = parseEntry(raw);
    } catch (err) {
      warn("an undecodable hand-over was dropped")(err as Error);
      await redis.lrem(runKey(node), 1, raw);
      return;
    }
    figures.received++;
    const { clientId, handover: h } = entry;
    const key = raw.toString("base64");
    delivering.add(key);
    try {
      await new Promise<void>((resolve) => {
        const done = () => resolve();
        if (shared.deliverTo(h.g, clientId, h.p, done)) return;
        rechoose(h.g, h.p, h.h, clientId, done);
      });
      await redis.lrem(runKey(node), 1, raw);
    } finally {
      delivering.delete(key);
    }
  }

  async function consume(): Promise<void> {
    while (!closed) {
      let first: Buffer | null;
      try {
        first = (await inbox.callBuffer("BLMOVE", inboxKey(node), runKey(node), "RIGHT", "LEFT", "1")) as Buffer | null;
      } catch (err) {
        if (closed) return;
        warn("reading the hand-over list failed")(err as Error);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (!first) continue;
      const more = await inbox
        .pipeline(Array.from({ length: BATCH - 1 }, () => ["lmoveBuffer", inboxKey(node), runKey(node), "RIGHT", "LEFT"]))
        .exec()
        .catch(() => null);
      const batch = [first, ...(more ?? []).map(([, v]) => v as Buffer | null).filter((v): v is Buffer => !!v)];
      // In order; each delivery is started before the next (a client's own write order), not waited for.
      for (const raw of batch) void deliverHandover(raw).catch(warn("delivering a hand-over failed"));
    }
  }
  void consume();

  return {
    figures,
    dispatch(group, packet, done) {
      // Another node's message: the node it was published on chose a member for it.
      if (packet.brokerId && packet.brokerId !== node) return done();
      choose(group, packet, 0, "", done);
    },
    async joined(group, clientId, qos, persistent) {
      if (!link.up) return; // recorded by resync() when the link is back
      await redis.wasmqShareJoin(membersKey(group), ofNodeKey(node), clientKey(clientId), group, clientId, value(persistent ? "P" : "L", qos), channel, "set");
    },
    left(group, clientId, awayQos) {
      if (!link.up) return;
      redis
        .wasmqShareLeave(membersKey(group), clientKey(clientId), group, clientId, awayQos === null ? "" : value("A", awayQos), channel, node)
        .catch(warn("recording a member that left failed"));
    },
    sessionEnded(clientId) {
      if (!link.up) return;
      redis.wasmqShareForget(clientKey(clientId), clientId, channel).catch(warn("removing an ended session from its groups failed"));
    },
    async resync() {
      const local = shared.localMembers();
      // Members that left here while the link was down are still recorded as connected here: they leave now.
      const connectedHere = new Set(local.filter((m) => !m.away).map((m) => `${m.topic}\n${m.clientId}`));
      for (const group of await redis.smembers(ofNodeKey(node))) {
        const members = await redis.hgetall(membersKey(group));
        for (const [clientId, v] of Object.entries(members)) {
          const [kind, at, qos] = v.split(" ");
          if (at !== node || kind === "A" || connectedHere.has(`${group}\n${clientId}`)) continue;
          await redis.wasmqShareLeave(membersKey(group), clientKey(clientId), group, clientId, kind === "P" ? value("A", Number(qos)) : "", channel, node);
        }
      }
      for (const m of local) {
        const v = m.away ? value("A", m.qos) : value(m.persistent ? "P" : "L", m.qos);
        await redis.wasmqShareJoin(membersKey(m.topic), ofNodeKey(node), clientKey(m.clientId), m.topic, m.clientId, v, channel, m.away ? "nx" : "set");
      }
      // A BLMOVE whose reply a lost connection swallowed left its entry in the run list: deliver it now.
      for (const raw of (await redis.lrangeBuffer(runKey(node), 0, -1)) as Buffer[]) {
        if (!delivering.has(raw.toString("base64"))) void deliverHandover(raw).catch(warn("delivering a hand-over failed"));
      }
      const groups = new Set(await redis.smembers(GROUPS));
      for (const g of shared.describe()) if (!groups.has(g.topic)) shared.hold(g.topic, false);
      for (const g of groups) shared.hold(g, true);
    },
    async nodeGone(dead) {
      await redis.wasmqShareNodeGone(ofNodeKey(dead), dead, channel);
      // Its waiting messages, one at a time into this node's run list (each taken by exactly one survivor).
      let recovered = 0;
      for (const from of [runKey(dead), inboxKey(dead)]) {
        for (;;) {
          const raw = (await redis.lmoveBuffer(from, runKey(node), "RIGHT", "LEFT")) as Buffer | null;
          if (!raw) break;
          recovered++;
          await deliverHandover(raw);
        }
      }
      if (recovered > 0) logger.info({ node: dead, messages: recovered }, `cluster: ${recovered} shared-subscription message(s) waiting for node ${dead} chosen again`);
    },
    async close() {
      closed = true;
      inbox.disconnect();
    },
  };
}
