/**
 * A message crossing a bridge meets the plugin chain as client `$bridge/<name>`:
 * outbound the `deliver` hook (acl/filter/transform plugins decide what leaves),
 * inbound the `publish` hook (what arrives is published locally like any
 * client's message). Both fill the bridge's reusable message the same way and
 * read back the same changes; the caller decides what a changed topic means.
 */
import { Verdict, type HookMessage, type PluginChain } from "../../host/index.js";
import { applyPublishFields, publishFields } from "../protocol/mqtt5/plugin-fields.js";

/** A PUBLISH's v5 fields as the bridge carries them (properties, and the expiry as a deadline). */
export interface CrossingFields {
  properties?: Record<string, unknown>;
  messageExpiry?: number;
}

export interface Crossing {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  /** Who published it locally (outbound), "" for the upstream (inbound). */
  peer: string;
  fields: CrossingFields;
}

export interface Crossed {
  /** A plugin changed topic, payload, QoS or retain: `topic`, `payload`, `qos` and `retain` are its. */
  modified: boolean;
  topic: string;
  payload: Buffer;
  /** Never above the QoS it came with. */
  qos: 0 | 1 | 2;
  retain: boolean;
  /** The plugin's v5 fields when it changed them, else null (keep what came). */
  fields: CrossingFields | null;
}

/**
 * Run `hook` on a crossing message; null when a plugin kept it from crossing.
 * `m` is the bridge's reusable message, `protocolVersion` the bridge's (the
 * plugin sees the v5 fields at that level).
 */
export function crossChain(chain: PluginChain, hook: "deliver" | "publish", m: HookMessage, clientId: string, protocolVersion: 4 | 5, c: Crossing): Crossed | null {
  m.topic = c.topic;
  m.payload = c.payload;
  m.clientId = clientId;
  m.username = null;
  m.password = null;
  m.qos = c.qos;
  m.retain = c.retain;
  m.dup = c.dup;
  m.flags = 0;
  m.peer = c.peer;
  m.v5 = publishFields(c.fields, protocolVersion);
  const out = chain.run(hook, m);
  if (out.verdict !== Verdict.Continue) return null;
  let fields: CrossingFields | null = null;
  if (out.propertiesModified) {
    fields = {};
    applyPublishFields(fields, m.v5);
  }
  if (!out.modified) return { modified: false, topic: c.topic, payload: c.payload, qos: c.qos, retain: c.retain, fields };
  return {
    modified: true,
    topic: m.topic,
    payload: Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload),
    qos: Math.min(c.qos, m.qos) as 0 | 1 | 2,
    retain: m.retain,
    fields,
  };
}
