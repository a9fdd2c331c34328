/**
 * The message each `bench:hooks` case sends, and the call that sends it: shared by the
 * bench (bench/hooks.ts) and the fuel A/B's child processes (bench/hook-fuel-child.ts),
 * so both measure exactly the same call.
 */
import { emptyMessage, PersistKind, Verdict, type HookMessage, type PluginChain } from "../host/index.js";
import type { BaseChain } from "./hooks-baseline.js";
import { payloadTemplate, stamp } from "./payload.js";
import { BENCH_TOPIC_FILTER, BENCH_USER, benchTopic } from "./plugins.js";
import type { MessageHook } from "./hook-goals.js";

/** What `caller` needs of a chain: the current PluginChain or an older build's. */
export type RunChain = Pick<PluginChain, "run"> | BaseChain;

export function buildMessage(hook: MessageHook, size: number | null): HookMessage {
  const m = emptyMessage();
  const publisher = "bench-pub-0";
  m.topic = hook === "subscribe" ? BENCH_TOPIC_FILTER : benchTopic(0);
  m.clientId = hook === "deliver" ? "bench-sub-0" : publisher;
  m.username = BENCH_USER.username;
  m.qos = hook === "subscribe" ? 1 : 0;
  if (hook === "connect") m.password = Buffer.from(BENCH_USER.password);
  if (hook === "deliver") m.peer = publisher;
  if (hook === "persist") {
    m.flags = PersistKind.retained;
    m.retain = true;
    m.peer = publisher;
  }
  if (size !== null) {
    const p = payloadTemplate(size);
    stamp(p, 0, 1_000_000, 0, 1);
    m.payload = p;
  }
  return m;
}

export function verdictName(v: number): string {
  return v === Verdict.Continue ? "continue" : v === Verdict.Drop ? "drop" : "deny";
}


/** One call with a fresh copy of the input (a plugin may have modified the last one). */
export function caller(chain: RunChain, hook: MessageHook, template: HookMessage): () => number {
  const msg = { ...template };
  return () => {
    msg.topic = template.topic;
    msg.payload = template.payload;
    msg.qos = template.qos;
    msg.retain = template.retain;
    return chain.run(hook, msg).verdict;
  };
}

/**
 * Run a call for a while before measuring it: V8 first runs Wasm with its
 * baseline compiler and tiers hot functions up in the background, so without
 * this the first variant measured could be running slower code than the next.
 */
export function warm(call: () => number, ms: number): void {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end || n < 100) {
    call();
    n++;
  }
}

