import { HEADER_SIZE, Presence, RecordFlag, SubscriptionOption, V5Presence } from "./abi";
import {
  payload_fetch, set_content_type, set_correlation_data, set_message_expiry, set_payload, set_payload_format, set_qos, set_reason_string,
  set_response_topic, set_retain, set_topic, set_ttl, user_property_add, user_property_remove, user_property_set,
} from "./imports";
import { bytesEqualString, copyBytes, decodeString } from "./bytes";
import { JsonIndex, JsonType, jsonBool, jsonHas, jsonNumber, jsonString, jsonTrustNext, jsonValid } from "./json";
import { captureOfValidName, matchesValidName, templateMatchesValidName, topicLevel, topicLevelCount, validTopicName } from "./topic";
import { filterCoversBytes, filterCoversTemplate } from "./topic-cover";
import { Certificate, hasCertificate, readCertificate } from "./certificate";
import { handOutSecret } from "./secrets";

/** Bits of the record's callScratch byte (host/ABI.md §2.2): zero when a call starts. */
const enum Scratch {
  /** The payload was validated as JSON in this call: later json* readers reuse that. */
  jsonChecked = 1,
  /** The topic was checked with validTopicName in this call ... */
  topicChecked = 2,
  /** ... and found valid. */
  topicValid = 4,
}

/**
 * The message of the current hook call, read in place from the record the host
 * wrote into this plugin's memory (ABI v2 header, then client id, username,
 * password, peer, topic and payload bytes, then the MQTT 5 byte fields:
 * content type, response topic, correlation data, user properties). Reading fields through the
 * *Ptr/*Len accessors and the match/json helpers allocates nothing; the string
 * getters decode on demand. Changes take effect when the hook returns Continue.
 */
@unmanaged
export class Message {
  _topicLen: u32;
  _payloadLen: u32;
  _clientIdLen: u32;
  _usernameLen: u32;
  _passwordLen: u32;
  _peerLen: u32;
  _qos: u8;
  _retain: u8;
  _dup: u8;
  _flags: u8;
  _presence: u8;
  _reserved0: u8;
  _reserved1: u8;
  _reserved2: u8;
  // ABI v2 (host/abi-v2.ts FieldV2), offsets 32..71
  _contentTypeLen: u32;
  _responseTopicLen: u32;
  _correlationDataLen: u32;
  _userPropertiesLen: u32;
  _messageExpiry: u32;
  _sessionExpiry: u32;
  _subscriptionIdentifier: u32;
  _userPropertyCount: u16;
  _protocolVersion: u8;
  _payloadFormat: u8;
  _v5Presence: u8;
  _subscriptionOptions: u8;
  _recordFlags: u8;
  /** Zeroed by the host for every call: what this call has already worked out (Scratch bits). */
  _callScratch: u8;
  // auth hook only (host/abi-auth.ts FieldAuth): the exchange state's length
  _authStateLen: u32;

  @inline get clientIdPtr(): usize { return changetype<usize>(this) + HEADER_SIZE; }
  @inline get clientIdLen(): i32 { return <i32>this._clientIdLen; }
  @inline get usernamePtr(): usize { return this.clientIdPtr + <usize>this._clientIdLen; }
  @inline get usernameLen(): i32 { return <i32>this._usernameLen; }
  @inline get passwordPtr(): usize { return this.usernamePtr + <usize>this._usernameLen; }
  @inline get passwordLen(): i32 { return <i32>this._passwordLen; }
  @inline get peerPtr(): usize { return this.passwordPtr + <usize>this._passwordLen; }
  @inline get peerLen(): i32 { return <i32>this._peerLen; }
  @inline get topicPtr(): usize { return this.peerPtr + <usize>this._peerLen; }
  @inline get topicLen(): i32 { return <i32>this._topicLen; }
  /**
   * Address of the payload's bytes. A large payload reaches the plugin only
   * when it first asks for it here (the host defers it, RecordFlag.payloadDeferred):
   * plugins that never read the payload never pay for copying it.
   */
  @inline get payloadPtr(): usize {
    if (this._recordFlags & RecordFlag.payloadDeferred) payload_fetch();
    return this.payloadSlot;
  }
  @inline get payloadLength(): i32 { return <i32>this._payloadLen; }
  /** Where the payload's bytes are (or will be, once fetched): what the fields after it are laid out from. */
  @inline private get payloadSlot(): usize { return this.topicPtr + <usize>this._topicLen; }
  @inline get contentTypePtr(): usize { return this.payloadSlot + <usize>this._payloadLen; }
  @inline get contentTypeLen(): i32 { return <i32>this._contentTypeLen; }
  @inline get responseTopicPtr(): usize { return this.contentTypePtr + <usize>this._contentTypeLen; }
  @inline get responseTopicLen(): i32 { return <i32>this._responseTopicLen; }
  @inline get correlationDataPtr(): usize { return this.responseTopicPtr + <usize>this._responseTopicLen; }
  @inline get correlationDataLen(): i32 { return <i32>this._correlationDataLen; }
  @inline get userPropertiesPtr(): usize { return this.correlationDataPtr + <usize>this._correlationDataLen; }

  get topic(): string { return decodeString(this.topicPtr, this.topicLen); }
  get payload(): Uint8Array { return copyBytes(this.payloadPtr, this.payloadLength); }
  get payloadString(): string { return decodeString(this.payloadPtr, this.payloadLength); }
  get clientId(): string { return decodeString(this.clientIdPtr, this.clientIdLen); }
  get username(): string { return decodeString(this.usernamePtr, this.usernameLen); }
  get hasUsername(): bool { return (this._presence & Presence.username) != 0; }
  /** Valid during this hook call only: the host has it zeroed afterwards (secrets.ts). */
  get password(): Uint8Array { return handOutSecret(copyBytes(this.passwordPtr, this.passwordLen)); }
  get hasPassword(): bool { return (this._presence & Presence.password) != 0; }
  /** deliver: the publisher's client id. */
  get peer(): string { return decodeString(this.peerPtr, this.peerLen); }
  @inline get qos(): i32 { return <i32>this._qos; }
  @inline get retain(): bool { return this._retain != 0; }
  @inline get dup(): bool { return this._dup != 0; }
  @inline get flags(): i32 { return <i32>this._flags; }
  /**
   * connect: the client certificate the TLS listener verified (mutual TLS), or
   * null when the client presented none or did not connect over TLS. Read from
   * the host on demand: plugins that never ask pay nothing.
   */
  certificate(): Certificate | null { return readCertificate(); }
  /** connect: whether certificate() would return one, without copying anything. */
  get hasCertificate(): bool { return hasCertificate(); }

  // ---- ABI v2: MQTT 5 fields (absent on 3.1.1 messages) ----

  /** MQTT protocol level of the client: 3, 4 (3.1.1) or 5. */
  @inline get protocolVersion(): i32 { return <i32>this._protocolVersion; }
  @inline get userPropertyCount(): i32 { return <i32>this._userPropertyCount; }
  /** Address of user property `index` in the blob: u16 name length, u16 value length, name, value. */
  private userPropertyAt(index: i32): usize {
    let p = this.userPropertiesPtr;
    for (let i = 0; i < index; i++) p += 4 + <usize>load<u16>(p) + <usize>load<u16>(p, 2);
    return p;
  }
  userPropertyName(index: i32): string {
    if (index < 0 || index >= this.userPropertyCount) return "";
    const p = this.userPropertyAt(index);
    return decodeString(p + 4, <i32>load<u16>(p));
  }
  userPropertyValue(index: i32): string {
    if (index < 0 || index >= this.userPropertyCount) return "";
    const p = this.userPropertyAt(index);
    return decodeString(p + 4 + <usize>load<u16>(p), <i32>load<u16>(p, 2));
  }
  /** Address of the first property called `name`, 0 when none. Allocates nothing for ASCII names. */
  private findUserProperty(name: string): usize {
    let p = this.userPropertiesPtr;
    for (let i = 0, n = this.userPropertyCount; i < n; i++) {
      const nameLen = <i32>load<u16>(p);
      if (bytesEqualString(p + 4, nameLen, name)) return p;
      p += 4 + <usize>nameLen + <usize>load<u16>(p, 2);
    }
    return 0;
  }
  /** The first user property called `name`, or null. */
  userProperty(name: string): string | null {
    const p = this.findUserProperty(name);
    return p == 0 ? null : decodeString(p + 4 + <usize>load<u16>(p), <i32>load<u16>(p, 2));
  }
  hasUserProperty(name: string): bool { return this.findUserProperty(name) != 0; }
  /** Is there a user property `name` with this value? Allocates nothing for ASCII strings. */
  userPropertyEquals(name: string, value: string): bool {
    let p = this.userPropertiesPtr;
    for (let i = 0, n = this.userPropertyCount; i < n; i++) {
      const nameLen = <i32>load<u16>(p);
      const valueLen = <i32>load<u16>(p, 2);
      if (bytesEqualString(p + 4, nameLen, name) && bytesEqualString(p + 4 + <usize>nameLen, valueLen, value)) return true;
      p += 4 + <usize>nameLen + <usize>valueLen;
    }
    return false;
  }
  get hasContentType(): bool { return (this._v5Presence & V5Presence.contentType) != 0; }
  get contentType(): string | null { return this.hasContentType ? decodeString(this.contentTypePtr, this.contentTypeLen) : null; }
  get hasResponseTopic(): bool { return (this._v5Presence & V5Presence.responseTopic) != 0; }
  get responseTopic(): string | null { return this.hasResponseTopic ? decodeString(this.responseTopicPtr, this.responseTopicLen) : null; }
  get hasCorrelationData(): bool { return (this._v5Presence & V5Presence.correlationData) != 0; }
  /** A copy. */
  get correlationData(): Uint8Array | null { return this.hasCorrelationData ? copyBytes(this.correlationDataPtr, this.correlationDataLen) : null; }
  /** Payload Format Indicator: 0 bytes, 1 UTF-8, -1 absent. */
  get payloadFormat(): i32 { return (this._v5Presence & V5Presence.payloadFormat) != 0 ? <i32>this._payloadFormat : -1; }
  /** Message Expiry Interval left, seconds; -1 when the message does not expire. */
  get messageExpiry(): i64 { return (this._v5Presence & V5Presence.messageExpiry) != 0 ? <i64>this._messageExpiry : -1; }
  /** connect: the Session Expiry Interval granted, seconds. */
  get sessionExpiry(): i64 { return <i64>this._sessionExpiry; }
  /** subscribe: No Local, Retain As Published, Retain Handling (0..2), Subscription Identifier (0 none). */
  get noLocal(): bool { return (<i32>this._subscriptionOptions & SubscriptionOption.noLocal) != 0; }
  get retainAsPublished(): bool { return (<i32>this._subscriptionOptions & SubscriptionOption.retainAsPublished) != 0; }
  get retainHandling(): i32 { return (<i32>this._subscriptionOptions >> SubscriptionOption.retainHandlingShift) & 3; }
  get subscriptionIdentifier(): i64 { return <i64>this._subscriptionIdentifier; }

  addUserProperty(name: string, value: string): void {
    const n = String.UTF8.encode(name);
    const v = String.UTF8.encode(value);
    user_property_add(changetype<usize>(n), n.byteLength, changetype<usize>(v), v.byteLength);
  }
  /** Replace every property called `name` by this one. */
  setUserProperty(name: string, value: string): void {
    const n = String.UTF8.encode(name);
    const v = String.UTF8.encode(value);
    user_property_set(changetype<usize>(n), n.byteLength, changetype<usize>(v), v.byteLength);
  }
  /** Remove every property called `name`; returns how many there were. */
  removeUserProperty(name: string): i32 {
    const n = String.UTF8.encode(name);
    return user_property_remove(changetype<usize>(n), n.byteLength);
  }
  /** null removes it. */
  setContentType(value: string | null): void {
    if (value === null) return set_content_type(0, -1);
    const b = String.UTF8.encode(value);
    set_content_type(changetype<usize>(b), b.byteLength);
  }
  setResponseTopic(topic: string | null): void {
    if (topic === null) return set_response_topic(0, -1);
    const b = String.UTF8.encode(topic);
    set_response_topic(changetype<usize>(b), b.byteLength);
  }
  setCorrelationData(data: Uint8Array | null): void {
    if (data === null) return set_correlation_data(0, -1);
    set_correlation_data(data.dataStart, data.length);
  }
  /** Seconds; -1 removes it. */
  setMessageExpiry(seconds: i64): void { set_message_expiry(<f64>seconds); }
  /** 0 or 1; -1 removes it. */
  setPayloadFormat(format: i32): void { set_payload_format(format); }
  /** The reason string a v5 client gets with this call's refusal (PUBACK, SUBACK, CONNACK). */
  setReasonString(reason: string): void {
    const b = String.UTF8.encode(reason);
    set_reason_string(changetype<usize>(b), b.byteLength);
  }

  // ---- enhanced authentication (onAuth, host/abi-auth.ts) ----

  /** auth: the Authentication Method (the record's topic). */
  get authenticationMethod(): string { return this.topic; }
  /** auth: the Authentication Data of the CONNECT or AUTH packet (a copy). */
  get authenticationData(): Uint8Array { return this.payload; }
  /** auth: AuthStep.start, continue_ or reauthenticate. */
  @inline get authStep(): i32 { return <i32>this._flags; }
  @inline get authStatePtr(): usize { return this.userPropertiesPtr + <usize>this._userPropertiesLen; }
  @inline get authStateLen(): i32 { return <i32>this._authStateLen; }
  /** auth: what the plugin kept with auth.keepState in an earlier step of this connection (a copy; empty when none). */
  get authState(): Uint8Array { return copyBytes(this.authStatePtr, this.authStateLen); }

  topicEquals(topic: string): bool { return bytesEqualString(this.topicPtr, this.topicLen, topic); }
  clientIdEquals(id: string): bool { return bytesEqualString(this.clientIdPtr, this.clientIdLen, id); }
  usernameEquals(name: string): bool { return bytesEqualString(this.usernamePtr, this.usernameLen, name); }
  /** validTopicName of this call's topic, worked out on the first match of the call (a plugin with several rules matches it several times). */
  private topicNameValid(): bool {
    const scratch = this._callScratch;
    if (scratch & Scratch.topicChecked) return (scratch & Scratch.topicValid) != 0;
    const valid = validTopicName(this.topicPtr, this.topicLen);
    this._callScratch = <u8>(scratch | Scratch.topicChecked | (valid ? Scratch.topicValid : 0));
    return valid;
  }
  topicMatches(filter: string): bool { return this.topicNameValid() && matchesValidName(filter, this.topicPtr, this.topicLen); }
  /** topicMatches with "%u" / "%c" in the filter standing for this client's username / client id (see topicMatchesTemplate). */
  topicMatchesTemplate(filter: string): bool {
    const userLen = this.hasUsername ? this.usernameLen : -1;
    return this.topicNameValid() &&
      templateMatchesValidName(filter, this.topicPtr, this.topicLen, this.usernamePtr, userLen, this.clientIdPtr, this.clientIdLen);
  }
  /** subscribe hook: is this subscription filter within `filter` (see filterCovers)? */
  topicWithin(filter: string): bool { return filterCoversBytes(filter, this.topicPtr, this.topicLen); }
  /** topicWithin with "%u" / "%c" in the filter standing for this client's username / client id (see filterCoversTemplate). */
  topicWithinTemplate(filter: string): bool {
    const userLen = this.hasUsername ? this.usernameLen : -1;
    return filterCoversTemplate(filter, this.topicPtr, this.topicLen, this.usernamePtr, userLen, this.clientIdPtr, this.clientIdLen);
  }
  topicLevelCount(): i32 { return topicLevelCount(this.topicPtr, this.topicLen); }
  topicLevel(index: i32): string { return topicLevel(this.topicPtr, this.topicLen, index); }
  topicCapture(filter: string, index: i32): string | null {
    return this.topicNameValid() ? captureOfValidName(filter, this.topicPtr, this.topicLen, index) : null;
  }

  /**
   * The payload, for the json* readers: the first of them in a hook call
   * validates it; the later ones reuse that validation and the root object's
   * member positions it recorded (one pass over the payload per call).
   */
  @inline private jsonPayload(): usize {
    const ptr = this.payloadPtr;
    const scratch = this._callScratch;
    if (scratch & Scratch.jsonChecked) jsonTrustNext();
    else this._callScratch = <u8>(scratch | Scratch.jsonChecked);
    return ptr;
  }
  jsonValid(): bool { return jsonValid(this.jsonPayload(), this.payloadLength); }
  jsonHas(path: string): bool { return jsonHas(this.jsonPayload(), this.payloadLength, path); }
  jsonNumber(path: string, fallback: f64): f64 { return jsonNumber(this.jsonPayload(), this.payloadLength, path, fallback); }
  jsonString(path: string, fallback: string | null): string | null { return jsonString(this.jsonPayload(), this.payloadLength, path, fallback); }
  jsonBool(path: string, fallback: bool): bool { return jsonBool(this.jsonPayload(), this.payloadLength, path, fallback); }

  setTopic(topic: string): void {
    const b = String.UTF8.encode(topic);
    set_topic(changetype<usize>(b), b.byteLength);
  }
  setPayload(payload: Uint8Array): void { set_payload(payload.dataStart, payload.length); }
  setPayloadString(payload: string): void {
    const b = String.UTF8.encode(payload);
    set_payload(changetype<usize>(b), b.byteLength);
  }
  setQos(qos: i32): void { set_qos(qos); }
  setRetain(retain: bool): void { set_retain(retain ? 1 : 0); }
  /** persist: keep the message at most this many seconds (0 = no expiry). */
  setTtl(seconds: i32): void { set_ttl(seconds); }
}

// The config's index, built on the first lookup: init reads the config many
// times, and the host writes nothing into its record until init returns.
let configIndex: JsonIndex | null = null;

function indexed(ptr: usize, len: i32): JsonIndex {
  let index = configIndex;
  if (index === null || index.ptr != ptr || index.len != len) {
    index = new JsonIndex(ptr, len);
    configIndex = index;
  }
  return index;
}

/** The plugin's `config` object from the broker config, read by path ("rules.0.topic"), during init. */
@unmanaged
export class Config {
  _topicLen: u32;
  _payloadLen: u32;
  _clientIdLen: u32;
  _usernameLen: u32;
  _passwordLen: u32;
  _peerLen: u32;

  @inline private get index(): JsonIndex {
    const ptr = changetype<usize>(this) + HEADER_SIZE + <usize>(this._topicLen + this._clientIdLen + this._usernameLen + this._passwordLen + this._peerLen);
    return indexed(ptr, <i32>this._payloadLen);
  }

  has(path: string): bool { return this.index.has(path); }
  number(path: string, fallback: f64): f64 { return this.index.number(path, fallback); }
  string(path: string, fallback: string): string {
    const s = this.index.string(path, fallback);
    return s === null ? fallback : s;
  }
  bool(path: string, fallback: bool): bool { return this.index.bool(path, fallback); }
  /** Array length or object member count at path, -1 when neither. */
  length(path: string): i32 { return this.index.length(path); }
  /** Length of the array at path: 0 when absent, -1 when present but not an array. */
  arrayLength(path: string): i32 {
    const type = this.index.type(path);
    if (type == JsonType.Missing) return 0;
    return type == JsonType.Array ? this.index.length(path) : -1;
  }
}
