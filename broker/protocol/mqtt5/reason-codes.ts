/**
 * MQTT 5 reason codes (MQTT 5.0 section 2.4, table 2-6) that the broker sends,
 * and the mapping from the 3.1.1 CONNACK return codes plugins choose today.
 */
export const enum Reason {
  Success = 0x00,
  GrantedQoS1 = 0x01,
  GrantedQoS2 = 0x02,
  NoMatchingSubscribers = 0x10,
  NoSubscriptionExisted = 0x11,
  ContinueAuthentication = 0x18,
  ReAuthenticate = 0x19,
  UnspecifiedError = 0x80,
  MalformedPacket = 0x81,
  ProtocolError = 0x82,
  ImplementationSpecificError = 0x83,
  UnsupportedProtocolVersion = 0x84,
  ClientIdentifierNotValid = 0x85,
  BadUserNameOrPassword = 0x86,
  NotAuthorized = 0x87,
  ServerUnavailable = 0x88,
  ServerBusy = 0x89,
  BadAuthenticationMethod = 0x8c,
  KeepAliveTimeout = 0x8d,
  SessionTakenOver = 0x8e,
  TopicFilterInvalid = 0x8f,
  TopicNameInvalid = 0x90,
  ReceiveMaximumExceeded = 0x93,
  TopicAliasInvalid = 0x94,
  PacketTooLarge = 0x95,
  QuotaExceeded = 0x97,
  AdministrativeAction = 0x98,
  SharedSubscriptionsNotSupported = 0x9e,
  SubscriptionIdentifiersNotSupported = 0xa1,
}

/**
 * A 3.1.1 CONNACK return code (what aedes and the plugin ABI v1 produce) as
 * the v5 reason code that means the same ([MQTT-3.2.2-8] for v5 clients).
 */
export function connackReasonFor(returnCode: number): number {
  // a v5 reason code with no 3.1.1 twin, passed through refuseConnect as 0x100 + code (connect.ts)
  if (returnCode >= 0x100) return returnCode - 0x100;
  switch (returnCode) {
    case 0:
      return Reason.Success;
    case 1:
      return Reason.UnsupportedProtocolVersion;
    case 2:
      return Reason.ClientIdentifierNotValid;
    case 3:
      return Reason.ServerUnavailable;
    case 4:
      return Reason.BadUserNameOrPassword;
    case 5:
      return Reason.NotAuthorized;
    default:
      return Reason.UnspecifiedError;
  }
}

/** A SUBACK entry from aedes (granted QoS, or 0x80 refused) as a v5 reason code. */
export function subackReasonFor(granted: number): number {
  return granted === 0x80 ? Reason.NotAuthorized : granted;
}
