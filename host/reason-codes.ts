/**
 * MQTT 5 reason codes a plugin may choose (ABI v2), which packet may carry
 * which (MQTT 5.0 §3.2.2.2, §3.4.2.1, §3.5.2.1, §3.9.3), and the nearest
 * 3.1.1 CONNACK return code for old clients. A plugin's code is output like
 * any other: one its refusal's packet cannot carry is refused (invalid-output).
 */
import type { HookName } from "./abi.js";
import { InvalidOutputError } from "./output-rules.js";

export const ReasonCode = {
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  BadAuthenticationMethod: 0x8c,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;

const R = ReasonCode;
/** [MQTT-3.2.2-*] CONNACK reason codes (failures). */
const CONNACK = new Set<number>([R.UnspecifiedError, R.MalformedPacket, R.ProtocolError, R.ImplementationSpecificError, R.UnsupportedProtocolVersion, R.ClientIdentifierNotValid, R.BadUserNameOrPassword, R.NotAuthorized, R.ServerUnavailable, R.ServerBusy, R.Banned, R.BadAuthenticationMethod, R.TopicNameInvalid, R.PacketTooLarge, R.QuotaExceeded, R.PayloadFormatInvalid, R.RetainNotSupported, R.QoSNotSupported, R.UseAnotherServer, R.ServerMoved, R.ConnectionRateExceeded]);
/** §3.4.2.1 / §3.5.2.1: PUBACK and PUBREC failure codes. */
const PUBACK = new Set<number>([R.UnspecifiedError, R.ImplementationSpecificError, R.NotAuthorized, R.TopicNameInvalid, R.PacketIdentifierInUse, R.QuotaExceeded, R.PayloadFormatInvalid]);
/** §3.9.3: SUBACK failure codes. */
const SUBACK = new Set<number>([R.UnspecifiedError, R.ImplementationSpecificError, R.NotAuthorized, R.TopicFilterInvalid, R.PacketIdentifierInUse, R.QuotaExceeded, R.SharedSubscriptionsNotSupported, R.SubscriptionIdentifiersNotSupported, R.WildcardSubscriptionsNotSupported]);

/** A code below 0x80 in a verdict is a 3.1.1 return code (1..5), as in ABI v1. */
export function isReasonCode(code: number): boolean {
  return code >= 0x80;
}

/**
 * Check a v2 plugin's chosen code against the packet its hook answers with.
 * deliver and persist answer no one: any code is accepted (and unused).
 */
export function checkReasonCode(plugin: string, hook: HookName, code: number): void {
  if (!isReasonCode(code)) return;
  const allowed = hook === "connect" ? CONNACK : hook === "publish" ? PUBACK : hook === "subscribe" ? SUBACK : null;
  if (allowed && !allowed.has(code)) {
    const packet = hook === "connect" ? "CONNACK" : hook === "publish" ? "PUBACK/PUBREC" : "SUBACK";
    throw new InvalidOutputError(plugin, `reason code 0x${code.toString(16)} cannot be sent in a ${packet}`);
  }
}

/** The 3.1.1 CONNACK return code closest in meaning to a v5 refusal, for 3.1.1 clients. */
export function returnCodeFor(reasonCode: number): number {
  switch (reasonCode) {
    case R.UnsupportedProtocolVersion:
      return 1;
    case R.ClientIdentifierNotValid:
      return 2;
    case R.ServerUnavailable:
    case R.ServerBusy:
    case R.QuotaExceeded:
    case R.UseAnotherServer:
    case R.ServerMoved:
    case R.ConnectionRateExceeded:
      return 3;
    case R.BadUserNameOrPassword:
    case R.BadAuthenticationMethod:
      return 4;
    default:
      return 5;
  }
}

/** Longest reason string a plugin may set (an MQTT UTF-8 string, §1.5.4). */
export const MAX_REASON_STRING_BYTES = 65535;
