import type { MessageV5 } from "./message-v5.js";
export type { MessageV5, UserProperty } from "./message-v5.js";

/**
 * One message as the chain sees it, independent of the broker. The broker fills
 * the fields its hook has; the rest stay empty. Plugins later in the chain see
 * the changes of plugins earlier in it, because the chain edits this object.
 */
export interface HookMessage {
  topic: string;
  payload: Uint8Array;
  clientId: string;
  /** null when the client sent none. */
  username: string | null;
  /** connect only; null when the client sent none. */
  password: Uint8Array | null;
  qos: number;
  retain: boolean;
  dup: boolean;
  /** connect: ConnectFlag bits; persist: PersistKind. */
  flags: number;
  /** deliver: the publishing client's id; persist (offline queue): the publisher. */
  peer: string;
  /**
   * connect only: the client certificate the TLS layer verified (mutual TLS),
   * or null/absent when the client presented none or connected without TLS.
   */
  cert?: ClientCertificate | null;
  /** MQTT 5 fields and the protocol level (ABI v2, message-v5.ts); absent = a 3.1.1 message with none. */
  v5?: MessageV5;
  /** auth hook: the exchange state the plugin kept for this connection (abi-auth.ts); absent or empty = none. */
  authState?: Uint8Array | null;
  /**
   * auth hook (v2-r4): the connection's `tls-exporter` channel binding (RFC 9266:
   * 32 bytes of the TLS exporter, label "EXPORTER-Channel-Binding", empty
   * context), or null/absent when it has none (not TLS 1.3).
   */
  tlsExporter?: Uint8Array | null;
}

/**
 * A verified client certificate as plugins see it (Wasm `msg.certificate()`,
 * native `msg.certificate()`): plain data, filled by the broker from the TLS
 * socket. Names are the SDKs' names.
 */
export interface ClientCertificate {
  /** Subject distinguished name, most specific first (RFC 4514 order): "CN=dev-1,O=Acme,C=DE". */
  subject: string;
  /** The subject's common name (CN), "" when it has none. */
  subjectCommonName: string;
  /** Issuer distinguished name, same format as subject. */
  issuer: string;
  issuerCommonName: string;
  /** Subject alternative names as OpenSSL prints them: "DNS:dev-1.example", "IP Address:10.0.0.1", "URI:spiffe://…". */
  subjectAltNames: string[];
  /** Validity, milliseconds since the epoch. */
  notBefore: number;
  notAfter: number;
  /** SHA-256 of the DER certificate, 64 lowercase hex digits without separators. */
  fingerprint: string;
  /** Serial number, uppercase hex as OpenSSL prints it. */
  serialNumber: string;
}

/** A message a plugin asks the broker to publish in addition (routing, fan-out, tick output). */
export interface InjectedMessage {
  plugin: string;
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** ABI v2 publishWithProperties: the MQTT 5 properties it carries. */
  v5?: MessageV5;
}

/** The chain's decision for one hook call. */
export interface HookOutcome {
  /** Verdict.Continue, Verdict.Drop or Verdict.Deny. */
  verdict: number;
  /** CONNACK return code when a connect is denied. */
  returnCode: number;
  /** Some plugin changed topic, payload, qos or retain (the message object holds the new values). */
  modified: boolean;
  /** persist: seconds to keep the message, 0 = no expiry. */
  ttlSec: number;
  /** The plugin that decided a Drop or Deny, for logs and metrics. */
  decidedBy: string | null;
  /**
   * MQTT 5 reason code a v2 plugin chose with its Drop or Deny (0x80 and
   * above), 0 when it chose none (the broker's default answers: returnCode
   * mapped, 0x87 for a refused publish or subscription).
   */
  reasonCode: number;
  /** Reason string a v2 plugin set for its refusal (v5 clients), or null. */
  reasonString: string | null;
  /** Some plugin changed a v5 field (user properties, content type, ...): msg.v5 holds the new values. */
  propertiesModified: boolean;
}

export function emptyMessage(): HookMessage {
  // Every field, the optional ones too (undefined = absent): the broker's hooks
  // set cert, v5 and authState on some messages, and messages that all share one
  // hidden class keep the host's per-call property reads monomorphic.
  return {
    topic: "",
    payload: EMPTY,
    clientId: "",
    username: null,
    password: null,
    qos: 0,
    retain: false,
    dup: false,
    flags: 0,
    peer: "",
    cert: undefined,
    v5: undefined,
    authState: undefined,
    tlsExporter: undefined,
  };
}

export const EMPTY = new Uint8Array(0);

