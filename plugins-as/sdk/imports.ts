// Host imports of ABI v1 (module "wasmq"). Plugin code uses the wrappers in host.ts and message.ts.

// @ts-ignore: decorator
@external("wasmq", "log")
export declare function log_(level: i32, ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "now_ms")
export declare function now_ms(): f64;
// @ts-ignore: decorator
@external("wasmq", "publish")
export declare function publish_(topicPtr: usize, topicLen: i32, payloadPtr: usize, payloadLen: i32, qos: i32, retain: i32): i32;
// @ts-ignore: decorator
@external("wasmq", "set_topic")
export declare function set_topic(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_payload")
export declare function set_payload(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_qos")
export declare function set_qos(qos: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_retain")
export declare function set_retain(retain: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_ttl")
export declare function set_ttl(seconds: i32): void;
// @ts-ignore: decorator
@external("wasmq", "kv_get")
export declare function kv_get(keyPtr: usize, keyLen: i32, outPtr: usize, outCap: i32): i32;
// @ts-ignore: decorator
@external("wasmq", "kv_put")
export declare function kv_put(keyPtr: usize, keyLen: i32, valPtr: usize, valLen: i32): i32;
// @ts-ignore: decorator
@external("wasmq", "kv_delete")
export declare function kv_delete(keyPtr: usize, keyLen: i32): i32;
// @ts-ignore: decorator
@external("wasmq", "sha256")
export declare function sha256_(dataPtr: usize, dataLen: i32, outPtr: usize): void;
// @ts-ignore: decorator
@external("wasmq", "hmac_sha256")
export declare function hmac_sha256(keyPtr: usize, keyLen: i32, dataPtr: usize, dataLen: i32, outPtr: usize): void;
// @ts-ignore: decorator
@external("wasmq", "pbkdf2_sha256")
export declare function pbkdf2_sha256(passwordPtr: usize, passwordLen: i32, saltPtr: usize, saltLen: i32, iterations: i32, outPtr: usize, outLen: i32): i32;
// Added to ABI v1 (see host/abi.ts): binaries that never call it do not import it.
// @ts-ignore: decorator
@external("wasmq", "client_cert")
export declare function client_cert(field: i32, outPtr: usize, outCap: i32): i32;
// ABI v2 (host/abi-v2.ts): MQTT 5 fields. Charged per byte, validated like client input.
// @ts-ignore: decorator
@external("wasmq", "user_property_add")
export declare function user_property_add(namePtr: usize, nameLen: i32, valuePtr: usize, valueLen: i32): void;
// @ts-ignore: decorator
@external("wasmq", "user_property_set")
export declare function user_property_set(namePtr: usize, nameLen: i32, valuePtr: usize, valueLen: i32): void;
// @ts-ignore: decorator
@external("wasmq", "user_property_remove")
export declare function user_property_remove(namePtr: usize, nameLen: i32): i32;
// @ts-ignore: decorator
@external("wasmq", "set_content_type")
export declare function set_content_type(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_response_topic")
export declare function set_response_topic(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_correlation_data")
export declare function set_correlation_data(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_message_expiry")
export declare function set_message_expiry(seconds: f64): void;
// @ts-ignore: decorator
@external("wasmq", "set_payload_format")
export declare function set_payload_format(format: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_reason_string")
export declare function set_reason_string(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "publish_with_properties")
export declare function publish_with_properties(topicPtr: usize, topicLen: i32, payloadPtr: usize, payloadLen: i32, qos: i32, retain: i32): i32;
// Enhanced authentication (host/abi-auth.ts); imported only by plugins that use it.
// @ts-ignore: decorator
@external("wasmq", "auth_method")
export declare function auth_method(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_auth_data")
export declare function set_auth_data(ptr: usize, len: i32): void;
// @ts-ignore: decorator
@external("wasmq", "set_auth_state")
export declare function set_auth_state(ptr: usize, len: i32): void;
// v2-r4: on Success, the identity the client authenticated as (becomes its username).
// @ts-ignore: decorator
@external("wasmq", "set_auth_identity")
export declare function set_auth_identity(ptr: usize, len: i32): void;
// v2-r4: the connection's channel binding data (e.g. tls-exporter); its length, copied when it fits; -1 none, -2 unknown kind.
// @ts-ignore: decorator
@external("wasmq", "channel_binding")
export declare function channel_binding(kind: i32, outPtr: usize, outCap: i32): i32;
// @ts-ignore: decorator
@external("wasmq", "random_bytes")
export declare function random_bytes(ptr: usize, len: i32): i32;
// Added to ABI v2 (host/deferred-payload.ts): writes a deferred payload into the record.
// @ts-ignore: decorator
@external("wasmq", "payload_fetch")
export declare function payload_fetch(): i32;
// Idle hooks (ABI v2-r3, host/abi-idle.ts); imported only by plugins that use it.
// @ts-ignore: decorator
@external("wasmq", "hook_idle")
export declare function hook_idle(hook: i32): void;
