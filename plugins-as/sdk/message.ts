import { HEADER_SIZE, Presence } from "./abi";
import { set_payload, set_qos, set_retain, set_topic, set_ttl } from "./imports";
import { bytesEqualString, copyBytes, decodeString } from "./bytes";
import { JsonIndex, JsonType, jsonBool, jsonHas, jsonNumber, jsonString, jsonValid } from "./json";
import { filterCovers, topicCapture, topicLevel, topicLevelCount, topicMatches, topicMatchesTemplate } from "./topic";
import { Certificate, hasCertificate, readCertificate } from "./certificate";

/**
 * The message of the current hook call, read in place from the record the host
 * wrote into this plugin's memory (ABI v1 header, then client id, username,
 * password, peer, topic and payload bytes). Reading fields through the
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
  @inline get payloadPtr(): usize { return this.topicPtr + <usize>this._topicLen; }
  @inline get payloadLength(): i32 { return <i32>this._payloadLen; }

  get topic(): string { return decodeString(this.topicPtr, this.topicLen); }
  get payload(): Uint8Array { return copyBytes(this.payloadPtr, this.payloadLength); }
  get payloadString(): string { return decodeString(this.payloadPtr, this.payloadLength); }
  get clientId(): string { return decodeString(this.clientIdPtr, this.clientIdLen); }
  get username(): string { return decodeString(this.usernamePtr, this.usernameLen); }
  get hasUsername(): bool { return (this._presence & Presence.username) != 0; }
  get password(): Uint8Array { return copyBytes(this.passwordPtr, this.passwordLen); }
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

  topicEquals(topic: string): bool { return bytesEqualString(this.topicPtr, this.topicLen, topic); }
  clientIdEquals(id: string): bool { return bytesEqualString(this.clientIdPtr, this.clientIdLen, id); }
  usernameEquals(name: string): bool { return bytesEqualString(this.usernamePtr, this.usernameLen, name); }
  topicMatches(filter: string): bool { return topicMatches(filter, this.topicPtr, this.topicLen); }
  /** topicMatches with "%u" / "%c" in the filter standing for this client's username / client id (see topicMatchesTemplate). */
  topicMatchesTemplate(filter: string): bool {
    const userLen = this.hasUsername ? this.usernameLen : -1;
    return topicMatchesTemplate(filter, this.topicPtr, this.topicLen, this.usernamePtr, userLen, this.clientIdPtr, this.clientIdLen);
  }
  /** subscribe hook: is this subscription filter within `filter` (see filterCovers)? */
  topicWithin(filter: string): bool { return filterCovers(filter, this.topic); }
  topicLevelCount(): i32 { return topicLevelCount(this.topicPtr, this.topicLen); }
  topicLevel(index: i32): string { return topicLevel(this.topicPtr, this.topicLen, index); }
  topicCapture(filter: string, index: i32): string | null { return topicCapture(filter, this.topicPtr, this.topicLen, index); }

  jsonValid(): bool { return jsonValid(this.payloadPtr, this.payloadLength); }
  jsonHas(path: string): bool { return jsonHas(this.payloadPtr, this.payloadLength, path); }
  jsonNumber(path: string, fallback: f64): f64 { return jsonNumber(this.payloadPtr, this.payloadLength, path, fallback); }
  jsonString(path: string, fallback: string | null): string | null { return jsonString(this.payloadPtr, this.payloadLength, path, fallback); }
  jsonBool(path: string, fallback: bool): bool { return jsonBool(this.payloadPtr, this.payloadLength, path, fallback); }

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
