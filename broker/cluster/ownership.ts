/**
 * Session ownership: one live connection per client id across the cluster.
 *
 * aedes' own mechanism is fire-and-forget — the node where a client connects
 * publishes `$SYS/<node>/new/clients` and every other node closes its client of
 * that id if the notice arrives (aedes#928: a lost notice leaves two live
 * connections). Here every accepted connection first claims the client id in
 * Redis, after authentication and before CONNACK:
 *
 *   wasmq:owner:<client id>   hash {gen, node, since}; gen only ever grows (HINCRBY);
 *                             a released record expires after a day (fleets with
 *                             throw-away client ids would otherwise grow Redis)
 *   wasmq:owned:<node>        the client ids a node incarnation holds (cleared when it dies)
 *
 * The claim (one Lua script, so atomic) increments the generation, records the
 * new owner and publishes {client, node, gen} on the takeover channel. A node
 * holding that client id with a lower generation closes its connection at once
 * — the loser knows it lost. Because pub/sub is at-most-once, every node also
 * re-reads the owner record of each of its clients whenever its Redis link
 * comes back, and closes those another node has claimed since.
 *
 * While Redis is unreachable a connection is admitted unconfirmed (gen 0) and
 * claimed when Redis is back — unless another node claimed the id meanwhile
 * for a connection made later, in which case this one is closed.
 */
import type { Aedes, AuthenticateError, Client } from "aedes";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { CHANNELS, type Notices } from "./notices.js";
import type { RedisLink } from "./redis-link.js";

export const ownerKey = (clientId: string) => `wasmq:owner:${clientId}`;
export const ownedKey = (node: string) => `wasmq:owned:${node}`;

// KEYS: owner hash, owned set of this node. ARGV: node, since, mode, channel, client id.
const CLAIM = `
local cur = redis.call('HGET', KEYS[1], 'node')
if ARGV[3] == 'ifNewer' and cur and cur ~= ARGV[1] then
  local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '0')
  if since > tonumber(ARGV[2]) then return -1 end
end
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'since', ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[4], cjson.encode({c = ARGV[5], n = ARGV[1], g = gen}))
return gen`;

// KEYS: owner hash, owned set of the node. ARGV: node, client id. Releases only if still that node's.
export const RELEASE = `
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'node', 'since')
  redis.call('EXPIRE', KEYS[1], 86400)
  return 1
end
return 0`;

interface OwnershipCommands {
  wasmqClaim(owner: string, owned: string, node: string, since: number, mode: string, channel: string, clientId: string): Promise<number>;
  wasmqRelease(owner: string, owned: string, node: string, clientId: string): Promise<number>;
}

export function defineOwnershipCommands(redis: Redis): Redis & OwnershipCommands {
  redis.defineCommand("wasmqClaim", { numberOfKeys: 2, lua: CLAIM });
  redis.defineCommand("wasmqRelease", { numberOfKeys: 2, lua: RELEASE });
  return redis as Redis & OwnershipCommands;
}

export interface OwnershipOptions {
  aedes: Aedes;
  redis: Redis;
  notices: Notices;
  link: RedisLink;
  /** This node's incarnation (aedes' broker id). */
  node: string;
  logger: Logger;
  /** Called before a client is closed because another node took it over. */
  onTakenOver?(client: Client, byNode: string): void;
}

export interface Ownership {
  /** Clients closed here because another node claimed their id. */
  readonly takenOver: number;
  /** Connections admitted while Redis was unreachable, not yet claimed. */
  readonly unconfirmed: number;
  /** Re-check every local client against Redis (after the link came back). */
  reconcile(): Promise<void>;
  /** Which node incarnation holds a client id, per Redis. */
  ownerOf(clientId: string): Promise<{ node: string | null; gen: number }>;
}

export async function installOwnership(opts: OwnershipOptions): Promise<Ownership> {
  const { aedes, notices, link, node, logger } = opts;
  const redis = defineOwnershipCommands(opts.redis);
  const clients = () => (aedes as unknown as { clients: Record<string, Client> }).clients;
  const gens = new WeakMap<Client, number>();
  const connectedAt = new WeakMap<Client, number>();
  /** Newest claim seen per client id from other nodes, for a claim still in flight here. */
  const recent = new Map<string, number>();
  let takenOver = 0;
  const unconfirmed = new Set<Client>();
  /** Clients claimed here, from the claim on (aedes registers them a few steps later). */
  const claimed = new Map<string, Client>();

  const lose = (client: Client, byNode: string) => {
    takenOver++;
    opts.onTakenOver?.(client, byNode);
    logger.info({ clientId: client.id, by: byNode }, `client ${client.id} connected on another node: closing its connection here`);
    client.close();
  };

  await notices.on(CHANNELS.takeover, (message) => {
    let n: { c: string; n: string; g: number };
    try {
      n = JSON.parse(message.toString()) as typeof n;
    } catch {
      return;
    }
    if (n.n === node) return;
    recent.set(n.c, Math.max(recent.get(n.c) ?? 0, n.g));
    if (recent.size > 10_000) recent.clear(); // only claims racing one in flight matter
    for (const local of new Set([claimed.get(n.c), clients()[n.c]])) {
      if (local && !local.closed && (gens.get(local) ?? 0) < n.g) lose(local, n.n);
    }
  });

  // aedes' own takeover (closeSameClients on $SYS/+/new/clients) closes a client
  // whenever another node *registers* the id, in CONNACK order, not claim order:
  // two racing connections could then close each other and leave none. The
  // ownership record decides instead.
  const mq = (aedes as unknown as { mq: { _matcher: { match(t: string): ((...a: unknown[]) => void)[] }; removeListener(t: string, fn: unknown): void } }).mq;
  const aedesTakeover = mq._matcher.match("$SYS/any/new/clients").filter((fn) => fn.name === "closeSameClients");
  if (aedesTakeover.length === 0) logger.warn("cluster: aedes' own takeover handler (closeSameClients) not found; racing connections may close each other");
  for (const fn of aedesTakeover) mq.removeListener("$SYS/+/new/clients", fn);

  const claim = (client: Client, mode: "force" | "ifNewer") =>
    redis.wasmqClaim(ownerKey(client.id), ownedKey(node), node, connectedAt.get(client) ?? Date.now(), mode, CHANNELS.takeover, client.id);

  const innerAuthenticate = aedes.authenticate;
  aedes.authenticate = (client, username, password, done) => {
    innerAuthenticate.call(aedes, client, username, password, (err, ok) => {
      if (err || !ok) return done(err, ok);
      connectedAt.set(client, Date.now());
      if (!link.up) {
        unconfirmed.add(client);
        gens.set(client, 0);
        return done(null, true);
      }
      recent.delete(client.id);
      claim(client, "force").then(
        (gen) => {
          if ((recent.get(client.id) ?? 0) > gen) {
            // Another node claimed the id after us while our claim was in flight: it is the newer connection.
            const refused = new Error(`client id ${client.id} was taken over by another node`) as AuthenticateError;
            refused.returnCode = 3;
            return done(refused, false);
          }
          gens.set(client, gen);
          claimed.set(client.id, client);
          done(null, true);
        },
        (claimErr: Error) => {
          logger.warn({ clientId: client.id, err: claimErr.message }, "cluster: cannot record session ownership; admitted unconfirmed");
          unconfirmed.add(client);
          gens.set(client, 0);
          done(null, true);
        },
      );
    });
  };

  aedes.on("clientDisconnect", (client) => {
    unconfirmed.delete(client);
    if (claimed.get(client.id) === client) claimed.delete(client.id);
    if (!gens.has(client) || !link.up) return;
    redis.wasmqRelease(ownerKey(client.id), ownedKey(node), node, client.id).catch(() => {});
  });

  async function reconcile(): Promise<void> {
    const local = Object.values(clients()).filter((c) => !c.closed && gens.has(c));
    for (const client of local) {
      if (unconfirmed.has(client)) {
        const gen = await claim(client, "ifNewer");
        unconfirmed.delete(client);
        if (gen < 0) lose(client, "(a newer connection)");
        else gens.set(client, gen);
        continue;
      }
      const [owner, gen] = await redis.hmget(ownerKey(client.id), "node", "gen");
      if (owner !== null && owner !== node && Number(gen) > (gens.get(client) ?? 0)) lose(client, owner);
      else if (owner === null) gens.set(client, await claim(client, "force")); // Redis lost its data (restarted without persistence)
    }
  }

  return {
    get takenOver() {
      return takenOver;
    },
    get unconfirmed() {
      return unconfirmed.size;
    },
    reconcile,
    async ownerOf(clientId) {
      const [owner, gen] = await redis.hmget(ownerKey(clientId), "node", "gen");
      return { node: owner, gen: Number(gen ?? 0) };
    },
  };
}
