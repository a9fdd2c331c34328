// The wasmq plugin SDK for AssemblyScript. A plugin:
//
//   import { Message, Config, Verdict, log } from "../sdk";
//   export * from "../sdk/exports";          // ABI entry points the host needs
//
//   export function init(config: Config): bool { ... }
//   export function onPublish(msg: Message): i32 { return Verdict.Continue; }
//
// Hooks: onConnect, onSubscribe, onPublish, onDeliver, onPersist (msg: Message): i32,
// onTick(nowMs: f64): void, and onAuth(msg: Message): i32 (enhanced authentication, see auth.ts). Its native TypeScript twin imports the same names
// from host/native/index.ts.
export { ABI_VERSION, Verdict, ReturnCode, ReasonCode, ConnectFlag, PersistKind, SubscriptionOption, deny, drop } from "./abi";
export { Message, Config } from "./message";
export { Certificate } from "./certificate";
export { now, publish, publishWithProperties, log, kv } from "./host";
export { crypto } from "./crypto";
export { auth } from "./auth";
export { Hook, declareIdle } from "./idle";
export { base64 } from "./base64";
export { AuthStep, AuthResult, ChannelBinding } from "./abi";
export * from "./json";
export { validTopicFilter, validTopicName, topicMatches, topicMatchesTemplate, topicLevelCount, topicLevel, topicCapture, filterCovers } from "./topic";
export * from "./topic-cover";
export { bytesEqualString, copyBytes, decodeString } from "./bytes";
