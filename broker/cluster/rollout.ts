/**
 * Plugin rollout across the cluster: `wasmq admin deploy NAME FILE` on any node
 * runs the same build on every node.
 *
 *   wasmq:build:<sha256>            the build's bytes (content-addressed)
 *   wasmq:deploy:current            hash: plugin name → sha256 every node should run
 *   wasmq:deploy:history:<name>     list of sha256, newest first (current at the head), 20 kept
 *
 * deploy: the receiving node first swaps the build in itself (compile, meter,
 * init — host/plugin-slot.ts); a build it refuses is refused for the whole
 * cluster and never stored, the old one serving everywhere. An accepted build
 * is stored, recorded as current, and announced; every node fetches it by
 * digest, checks the digest and swaps it in. rollback: the previous digest in
 * the history becomes current the same way. A node that starts (or whose Redis
 * link comes back) applies every current digest that differs from what it
 * runs, so a node that joins later runs the current set. Builds are not
 * written over the plugins' files: Redis is the cluster's source of truth.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { PluginChain } from "../../host/index.js";
import { CHANNELS, type Notices } from "./notices.js";

const buildKey = (sha: string) => `wasmq:build:${sha}`;
const CURRENT = "wasmq:deploy:current";
const historyKey = (name: string) => `wasmq:deploy:history:${name}`;
const HISTORY_KEPT = 20;

export class RolloutError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "RolloutError";
  }
}

export interface DeployOutcome {
  plugin: string;
  sha256: string;
  previous: string | null;
}

const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

export class Rollout {
  /** Per plugin: the last digest this node failed to apply, and why. */
  readonly failures = new Map<string, { sha256: string; error: string }>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly notices: Notices,
    private readonly chain: PluginChain,
    private readonly opts: { node: string; logger: Logger },
  ) {}

  async start(): Promise<void> {
    await this.notices.on(CHANNELS.deploy, (m) => {
      let n: { plugin: string; sha256: string; from: string };
      try {
        n = JSON.parse(m.toString()) as typeof n;
      } catch {
        return;
      }
      if (n.from !== this.opts.node) this.serially(() => this.apply(n.plugin, n.sha256));
    });
    await this.sync();
  }

  /** Apply every current digest that differs from what runs here. */
  sync(): Promise<void> {
    return this.serially(async () => {
      const current = await this.redis.hgetall(CURRENT);
      for (const [plugin, sha] of Object.entries(current)) await this.apply(plugin, sha);
    });
  }

  /** What every node should run: plugin → sha256. */
  current(): Promise<Record<string, string>> {
    return this.redis.hgetall(CURRENT);
  }

  async deploy(plugin: string, bytes: Uint8Array): Promise<DeployOutcome> {
    const sha256 = sha256Of(bytes);
    return this.serially(async () => {
      const previous = this.slotFor(plugin).sha256;
      await this.swap(plugin, bytes, sha256);
      await this.redis.set(buildKey(sha256), Buffer.from(bytes));
      await this.redis.multi().hset(CURRENT, plugin, sha256).lpush(historyKey(plugin), sha256).ltrim(historyKey(plugin), 0, HISTORY_KEPT - 1).exec();
      await this.announce(plugin, sha256);
      this.opts.logger.info({ plugin, sha256 }, `cluster: plugin ${plugin} deployed to every node (sha256 ${sha256})`);
      return { plugin, sha256, previous };
    });
  }

  async rollback(plugin: string): Promise<DeployOutcome> {
    return this.serially(async () => {
      this.slotFor(plugin);
      const [current, previous] = await this.redis.lrange(historyKey(plugin), 0, 1);
      if (!current || !previous) throw new RolloutError(409, `plugin "${plugin}" has no earlier deployed build to roll back to`);
      const bytes = await this.redis.getBuffer(buildKey(previous));
      if (!bytes) throw new RolloutError(409, `the build ${previous} of plugin "${plugin}" is no longer stored in Redis`);
      await this.swap(plugin, bytes, previous);
      await this.redis.multi().lpop(historyKey(plugin)).hset(CURRENT, plugin, previous).exec();
      await this.announce(plugin, previous);
      this.opts.logger.info({ plugin, sha256: previous, from: current }, `cluster: plugin ${plugin} rolled back on every node (sha256 ${previous})`);
      return { plugin, sha256: previous, previous: current };
    });
  }

  private slotFor(plugin: string) {
    const slot = this.chain.slot(plugin);
    if (!slot) throw new RolloutError(404, `no plugin named "${plugin}"`);
    if (slot.kind !== "wasm") throw new RolloutError(409, `plugin "${plugin}" is native: it is loaded from its module, not deployed`);
    return slot;
  }

  private async swap(plugin: string, bytes: Uint8Array, sha256: string): Promise<void> {
    const [result] = await this.chain.reload(plugin, { bytes, save: false });
    if (!result!.ok) throw new RolloutError(422, `build ${sha256} of plugin "${plugin}" refused: ${result!.error ?? "refused"}; the previous build keeps running on every node`);
  }

  private announce(plugin: string, sha256: string): Promise<number> {
    return this.notices.publish(CHANNELS.deploy, JSON.stringify({ plugin, sha256, from: this.opts.node }));
  }

  /** Fetch a digest and swap it in here; failures are logged and reported, never thrown. */
  private async apply(plugin: string, sha256: string): Promise<void> {
    const slot = this.chain.slot(plugin);
    if (!slot || slot.kind !== "wasm") {
      this.failures.set(plugin, { sha256, error: slot ? "plugin is native here" : "no such plugin in this node's config" });
      this.opts.logger.warn({ plugin, sha256 }, `cluster: cannot run deployed plugin ${plugin} here: ${this.failures.get(plugin)!.error}`);
      return;
    }
    if (slot.sha256 === sha256) {
      this.failures.delete(plugin);
      return;
    }
    const bytes = await this.redis.getBuffer(buildKey(sha256));
    let error: string | null = null;
    if (!bytes) error = "build not found in Redis";
    else if (sha256Of(bytes) !== sha256) error = "stored build does not match its digest";
    else {
      const [result] = await this.chain.reload(plugin, { bytes, save: false });
      if (!result!.ok) error = result!.error ?? "refused";
    }
    if (error) {
      this.failures.set(plugin, { sha256, error });
      this.opts.logger.error({ plugin, sha256, err: error }, `cluster: deployed build of plugin ${plugin} not applied here; the previous build keeps running`);
    } else {
      this.failures.delete(plugin);
      this.opts.logger.info({ plugin, sha256 }, `cluster: plugin ${plugin} now runs the deployed build`);
    }
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.then(
      () => {},
      () => {},
    );
    return run;
  }
}
