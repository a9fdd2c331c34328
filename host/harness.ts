/**
 * Run a plugin (Wasm or native) against a list of messages without a broker and
 * report each verdict: what plugin authors use in their tests and from the
 * command line (`npm run harness`), and what the differential tests use to
 * compare a plugin with its native twin.
 */
import { HOOKS, Verdict, type HookName } from "./abi.js";
import { PluginChain } from "./chain.js";
import { MemoryKvStore, type KvStore } from "./kv.js";
import { emptyMessage, type ClientCertificate, type HookMessage, type InjectedMessage } from "./message.js";
import type { PluginSpec } from "./plugin-slot.js";

/** One input. `payload` may be a string, a JSON value (serialised), or { base64 }. */
export interface HarnessMessage {
  hook?: HookName;
  topic?: string;
  payload?: string | { base64: string } | unknown;
  clientId?: string;
  username?: string | null;
  password?: string | null;
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  flags?: number;
  peer?: string;
  /** connect: the verified client certificate the plugin sees (mutual TLS); absent = none. */
  cert?: ClientCertificate | null;
  /** The time the plugin sees (now() and onTick's argument), ms; defaults to the real clock. */
  now?: number;
}

export interface HarnessResult {
  index: number;
  hook: HookName;
  verdict: "continue" | "drop" | "deny";
  returnCode?: number;
  /** Fields the plugin changed, with their new values. */
  changed?: { topic?: string; payload?: string; qos?: number; retain?: boolean };
  ttlSec?: number;
  published: { topic: string; payload: string; qos: number; retain: boolean }[];
  logs: string[];
  /** The trap kind when the plugin failed on this message (the verdict is then its failure policy's). */
  trap?: string;
}

export interface Harness {
  run(message: HarnessMessage, index?: number): HarnessResult;
  close(): void;
}

function payloadBytes(payload: HarnessMessage["payload"]): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  if (typeof payload === "string") return Buffer.from(payload, "utf8");
  if (payload && typeof payload === "object" && "base64" in payload && typeof (payload as { base64: unknown }).base64 === "string") {
    return Buffer.from((payload as { base64: string }).base64, "base64");
  }
  return Buffer.from(JSON.stringify(payload), "utf8");
}

/** Printable form of bytes: UTF-8 when it round-trips, else base64 with a prefix. */
function showBytes(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString("utf8");
  return Buffer.from(text, "utf8").equals(buf) ? text : `base64:${buf.toString("base64")}`;
}

function toHookMessage(m: HarnessMessage): HookMessage {
  const msg = emptyMessage();
  msg.topic = m.topic ?? "";
  msg.payload = payloadBytes(m.payload);
  msg.clientId = m.clientId ?? "harness";
  msg.username = m.username ?? null;
  msg.password = m.password === undefined || m.password === null ? null : Buffer.from(m.password, "utf8");
  msg.qos = m.qos ?? 0;
  msg.retain = m.retain ?? false;
  msg.dup = m.dup ?? false;
  msg.flags = m.flags ?? 0;
  msg.peer = m.peer ?? "";
  msg.cert = m.cert ?? null;
  return msg;
}

/** Load one plugin for repeated runs; its state (and its key-value store) persists across them. */
export async function createHarness(spec: PluginSpec, opts: { kv?: KvStore; meterFuel?: boolean } = {}): Promise<Harness> {
  const published: InjectedMessage[] = [];
  const logs: string[] = [];
  let trap: string | undefined;
  let pinned: number | undefined;
  const chain = await PluginChain.load([spec], {
    clock: () => pinned ?? Date.now(),
    kv: opts.kv ?? new MemoryKvStore(),
    publish: (m) => published.push(m),
    meterFuel: opts.meterFuel ?? true,
  });
  chain.on("log", (_plugin, level, message) => logs.push(`${["trace", "debug", "info", "warn", "error"][level] ?? level}: ${message}`));
  chain.on("trap", (_plugin, _hook, kind) => {
    trap = kind;
  });
  return {
    run(message, index = 0) {
      const hook = message.hook ?? "publish";
      if (!HOOKS.includes(hook)) throw new Error(`message ${index}: unknown hook "${hook}"`);
      published.length = 0;
      logs.length = 0;
      trap = undefined;
      pinned = message.now;
      const result: HarnessResult = { index, hook, verdict: "continue", published: [], logs: [] };
      if (hook === "tick") {
        chain.tick(message.now ?? Date.now());
      } else {
        const msg = toHookMessage(message);
        const before = { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain };
        const out = chain.run(hook, msg);
        result.verdict = out.verdict === Verdict.Continue ? "continue" : out.verdict === Verdict.Drop ? "drop" : "deny";
        if (out.verdict === Verdict.Deny && hook === "connect") result.returnCode = out.returnCode;
        if (out.modified) {
          const changed: NonNullable<HarnessResult["changed"]> = {};
          if (msg.topic !== before.topic) changed.topic = msg.topic;
          if (msg.payload !== before.payload) changed.payload = showBytes(msg.payload);
          if (msg.qos !== before.qos) changed.qos = msg.qos;
          if (msg.retain !== before.retain) changed.retain = msg.retain;
          if (Object.keys(changed).length) result.changed = changed;
        }
        if (out.ttlSec > 0) result.ttlSec = out.ttlSec;
      }
      result.published = published.map((p) => ({ topic: p.topic, payload: showBytes(p.payload), qos: p.qos, retain: p.retain }));
      result.logs = logs.slice();
      if (trap !== undefined) result.trap = trap;
      return result;
    },
    close() {
      chain.close();
    },
  };
}

/** Run a plugin over a list of messages in order and return every verdict. */
export async function runPlugin(spec: PluginSpec, messages: HarnessMessage[], opts: { kv?: KvStore; meterFuel?: boolean } = {}): Promise<HarnessResult[]> {
  const harness = await createHarness(spec, opts);
  try {
    return messages.map((m, i) => harness.run(m, i));
  } finally {
    harness.close();
  }
}

/** Parse a message file: a JSON array, or JSON Lines (one message per line, # comments allowed). */
export function parseMessages(text: string, source: string): HarnessMessage[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed) as HarnessMessage[];
    } catch (err) {
      throw new Error(`${source}: not valid JSON: ${(err as Error).message}`);
    }
  }
  const out: HarnessMessage[] = [];
  text.split("\n").forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith("#")) return;
    try {
      out.push(JSON.parse(l) as HarnessMessage);
    } catch (err) {
      throw new Error(`${source}:${i + 1}: not valid JSON: ${(err as Error).message}`);
    }
  });
  return out;
}
