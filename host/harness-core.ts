/**
 * The harness's message format and result shape, and one step of a run: what
 * `npm run harness` (harness.ts, over a PluginChain) and the dashboard's
 * playground (playground.ts, in a browser) share, so the two report a message
 * the same way. No node: imports.
 */
import { HOOKS, Verdict, type HookName } from "./abi.js";
import { emptyMessage, type ClientCertificate, type HookMessage, type HookOutcome, type InjectedMessage } from "./message.js";
import { harnessV5, v5Changes, v5Shown, type HarnessV5Fields } from "./harness-v5.js";
import { runAuthStep, type AuthRunner, type HarnessAuthResult } from "./harness-auth.js";

/** One input. `payload` may be a string, a JSON value (serialised), or { base64 }. MQTT 5 fields: HarnessV5Fields. */
export interface HarnessMessage extends HarnessV5Fields {
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
  /** auth: the exchange state to start from (default: what the last auth step of this client id kept). */
  authState?: string | { base64: string };
  /** auth: the connection's tls-exporter channel binding (RFC 9266) the plugin sees; absent = none (not TLS 1.3). */
  tlsExporter?: string | { base64: string };
}

export interface HarnessResult {
  index: number;
  hook: HookName;
  verdict: "continue" | "drop" | "deny";
  returnCode?: number;
  /** ABI v2: the MQTT 5 reason code and reason string a refusal carries. */
  reasonCode?: number;
  reasonString?: string;
  /** Fields the plugin changed, with their new values (v5 fields too: null = removed). */
  changed?: { topic?: string; payload?: string; qos?: number; retain?: boolean } & Record<string, unknown>;
  ttlSec?: number;
  published: { topic: string; payload: string; qos: number; retain: boolean; properties?: Record<string, unknown> }[];
  logs: string[];
  /** The trap kind when the plugin failed on this message (the verdict is then its failure policy's). */
  trap?: string;
  /** auth hook: the step's answer (harness-auth.ts). */
  auth?: HarnessAuthResult;
}

/** What a harness runs messages through: a plugin chain, or the playground's single plugin. */
export interface HarnessTarget {
  run(hook: Exclude<HookName, "tick">, msg: HookMessage): HookOutcome;
  tick(nowMs: number): void;
  /** auth: one step with the plugin that declared the method (absent: this target cannot run it). */
  authenticate?: AuthRunner;
}

/** What the target reported during one message: filled by its event handlers, reset by runStep. */
export interface HarnessCollector {
  published: InjectedMessage[];
  logs: string[];
  trap: string | undefined;
  /** The message's `now`, for the target's clock. */
  pinnedNow: number | undefined;
  /** auth: the state each client id's exchange kept. */
  authStates: Map<string, Uint8Array | null>;
}

export function newCollector(): HarnessCollector {
  return { published: [], logs: [], trap: undefined, pinnedNow: undefined, authStates: new Map() };
}

const LEVEL_NAMES = ["trace", "debug", "info", "warn", "error"];

/** A plugin log line as the harness prints it. */
export function harnessLogLine(level: number, message: string): string {
  return `${LEVEL_NAMES[level] ?? level}: ${message}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin);
}

export function payloadBytes(payload: HarnessMessage["payload"]): Uint8Array {
  if (payload === undefined) return new Uint8Array(0);
  if (typeof payload === "string") return encoder.encode(payload);
  if (payload && typeof payload === "object" && "base64" in payload && typeof (payload as { base64: unknown }).base64 === "string") {
    return base64ToBytes((payload as { base64: string }).base64);
  }
  return encoder.encode(JSON.stringify(payload));
}

/** Printable form of bytes: UTF-8 when it round-trips, else base64 with a prefix. */
export function showBytes(bytes: Uint8Array): string {
  try {
    const text = decoder.decode(bytes);
    // A BOM is dropped by the decoder: such bytes do not round-trip as text.
    if (encoder.encode(text).length === bytes.length) return text;
  } catch {
    // not UTF-8
  }
  return `base64:${bytesToBase64(bytes)}`;
}

export function toHookMessage(m: HarnessMessage): HookMessage {
  const msg = emptyMessage();
  msg.topic = m.topic ?? "";
  msg.payload = payloadBytes(m.payload);
  msg.clientId = m.clientId ?? "harness";
  msg.username = m.username ?? null;
  msg.password = m.password === undefined || m.password === null ? null : encoder.encode(m.password);
  msg.qos = m.qos ?? 0;
  msg.retain = m.retain ?? false;
  msg.dup = m.dup ?? false;
  msg.flags = m.flags ?? 0;
  msg.peer = m.peer ?? "";
  msg.cert = m.cert ?? null;
  const v5 = harnessV5(m, payloadBytes);
  if (v5) msg.v5 = v5;
  return msg;
}

/** Run one message through the target and describe what happened. */
export function runStep(target: HarnessTarget, collector: HarnessCollector, message: HarnessMessage, index: number): HarnessResult {
  const hook = message.hook ?? "publish";
  if (!HOOKS.includes(hook)) throw new Error(`message ${index}: unknown hook "${hook}"`);
  collector.published.length = 0;
  collector.logs.length = 0;
  collector.trap = undefined;
  collector.pinnedNow = message.now;
  const result: HarnessResult = { index, hook, verdict: "continue", published: [], logs: [] };
  if (hook === "tick") {
    target.tick(message.now ?? Date.now());
  } else if (hook === "auth") {
    const msg = toHookMessage(message);
    if (message.authState !== undefined) msg.authState = payloadBytes(message.authState);
    if (message.tlsExporter !== undefined) msg.tlsExporter = payloadBytes(message.tlsExporter);
    result.auth = runAuthStep(target.authenticate, msg, collector.authStates, showBytes);
    if (result.auth.result === "failure") {
      result.verdict = "deny";
      result.reasonCode = result.auth.reasonCode!;
    }
  } else {
    const msg = toHookMessage(message);
    const before = { topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, v5: msg.v5 };
    const out = target.run(hook, msg);
    result.verdict = out.verdict === Verdict.Continue ? "continue" : out.verdict === Verdict.Drop ? "drop" : "deny";
    if (out.verdict === Verdict.Deny && hook === "connect") result.returnCode = out.returnCode;
    if (out.verdict !== Verdict.Continue && out.reasonCode) result.reasonCode = out.reasonCode;
    if (out.verdict !== Verdict.Continue && out.reasonString !== null) result.reasonString = out.reasonString;
    if (out.modified) {
      const changed: NonNullable<HarnessResult["changed"]> = {};
      if (msg.topic !== before.topic) changed.topic = msg.topic;
      if (msg.payload !== before.payload) changed.payload = showBytes(msg.payload);
      if (msg.qos !== before.qos) changed.qos = msg.qos;
      if (msg.retain !== before.retain) changed.retain = msg.retain;
      if (Object.keys(changed).length) result.changed = changed;
    }
    if (out.propertiesModified) result.changed = { ...result.changed, ...v5Changes(before.v5, msg.v5!, showBytes) };
    if (out.ttlSec > 0) result.ttlSec = out.ttlSec;
  }
  result.published = collector.published.map((p) => ({ topic: p.topic, payload: showBytes(p.payload), qos: p.qos, retain: p.retain, ...(p.v5 ? { properties: v5Shown(p.v5, showBytes) } : {}) }));
  result.logs = collector.logs.slice();
  if (collector.trap !== undefined) result.trap = collector.trap;
  return result;
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
