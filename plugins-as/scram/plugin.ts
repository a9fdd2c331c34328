// scram: MQTT 5 enhanced authentication with SCRAM-SHA-256 (RFC 5802, RFC 7677)
// as Authentication Method "SCRAM-SHA-256". The broker keeps no password: each
// user is configured with what RFC 5802 section 3 calls the server's stored
// credentials — salt, iteration count, StoredKey and ServerKey (base64) —
// derived once from the password by `wasmq scram credential USER` (credentials.ts).
//
//   CONNECT  (data: client-first-message  "n,,n=alice,r=<client nonce>")
//   AUTH 0x18 ← server-first-message      "r=<client+server nonce>,s=<salt>,i=<iterations>"
//   AUTH 0x18 → client-final-message      "c=biws,r=<nonce>,p=<ClientProof>"
//   CONNACK 0x00 ← server-final-message   "v=<ServerSignature>"
//
// Re-authentication (AUTH 0x19) runs the same exchange, ending in AUTH 0x00.
// A wrong proof or an unknown user is refused with 0x86 Bad User Name or
// Password, at the same step and after the same work (an unknown user gets a
// decoy salt), so the answers do not tell which; a message that does not follow
// RFC 5802 with 0x87 Not authorized. The server nonce comes from the host's CSPRNG.
//
// SCRAM-SHA-256-PLUS (config channelBinding, default true): the same exchange
// with gs2 header "p=tls-exporter,," and c= = base64(gs2 header ‖ the TLS 1.3
// connection's tls-exporter value, RFC 9266), so a proof made over another TLS
// connection (a man in the middle that terminates TLS) does not verify. Without
// TLS 1.3 the PLUS method is refused (0x87); a "y" flag on a connection where
// PLUS is offered is a downgrade and refused too (RFC 5802 section 6).
//
// On success the SCRAM user is named as the client's identity (auth.setIdentity):
// the broker makes it the username and holds the CONNECT and re-authentication to it.
// Credentials are derived (with SASLprep) by credentials.ts / `wasmq scram credential`.
import { AuthStep, Config, ConnectFlag, Message, ReasonCode, Verdict, auth, base64, crypto, deny, log } from "../sdk";
export * from "../sdk/exports";

const METHOD = "SCRAM-SHA-256";
// RFC 5802 section 6 / RFC 9266: the same exchange bound to the TLS connection (tls-exporter)
const METHOD_PLUS = "SCRAM-SHA-256-PLUS";
const CB_FLAG = "p=tls-exporter";
const KEY_BYTES: i32 = 32;
const NONCE_BYTES: i32 = 18;
const MIN_ITERATIONS: i32 = 4096; // RFC 7677 section 4
const MAX_ITERATIONS: i32 = 10_000_000;

class User {
  constructor(
    public salt: Uint8Array,
    public iterations: i32,
    public storedKey: Uint8Array,
    public serverKey: Uint8Array,
  ) {}
}

let users = new Map<string, User>();
// Unknown users get a salt derived from their name under this secret (stable per instance) and the first user's iterations.
let decoySecret = new Uint8Array(0);
// required: every client must have completed SCRAM (the connect hook refuses the others)
let required = true;
// channelBinding: offer SCRAM-SHA-256-PLUS (default true)
let channelBindingOffered = true;
let decoyIterations: i32 = MIN_ITERATIONS;

function bytesOf(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function parseIterations(v: f64): i32 {
  if (v != Math.floor(v) || v < <f64>MIN_ITERATIONS || v > <f64>MAX_ITERATIONS) return -1;
  return <i32>v;
}

export function init(config: Config): bool {
  const n = config.arrayLength("users");
  if (n < 0) {
    log.error("scram: users must be an array");
    return false;
  }
  for (let i = 0; i < n; i++) {
    const at = "users." + i.toString();
    const name = config.string(at + ".username", "");
    const salt = base64.decode(config.string(at + ".salt", ""));
    const storedKey = base64.decode(config.string(at + ".storedKey", ""));
    const serverKey = base64.decode(config.string(at + ".serverKey", ""));
    const iterations = parseIterations(config.number(at + ".iterations", 0));
    if (name.length == 0) {
      log.error("scram: " + at + ".username must be a non-empty string");
      return false;
    }
    if (salt === null || salt.length < 8) {
      log.error("scram: " + at + ".salt must be base64 of at least 8 bytes");
      return false;
    }
    if (storedKey === null || storedKey.length != KEY_BYTES || serverKey === null || serverKey.length != KEY_BYTES) {
      log.error("scram: " + at + ".storedKey and .serverKey must be base64 of 32 bytes");
      return false;
    }
    if (iterations < 0) {
      log.error("scram: " + at + ".iterations must be an integer from 4096 to 10000000");
      return false;
    }
    if (i == 0) decoyIterations = iterations;
    users.set(name, new User(salt, iterations, storedKey, serverKey));
  }
  required = config.bool("required", true);
  channelBindingOffered = config.bool("channelBinding", true);
  decoySecret = crypto.randomBytes(KEY_BYTES)!;
  auth.declareMethod(METHOD);
  if (channelBindingOffered) auth.declareMethod(METHOD_PLUS);
  return true;
}

/** RFC 5802 saslname: "=2C" is ',', "=3D" is '='; any other '=' makes it invalid (null). */
function decodeSaslName(s: string): string | null {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c == 0x2c) return null;
    if (c != 0x3d) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    const esc = s.substr(i, 3);
    if (esc == "=2C") out += ",";
    else if (esc == "=3D") out += "=";
    else return null;
    i += 3;
  }
  return out;
}

/** A nonce is printable ASCII without ',' (RFC 5802 section 7). */
function validNonce(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c == 0x2c) return false;
  }
  return true;
}

function refuse(why: string): i32 {
  log.info("scram: " + why);
  return auth.failure(ReasonCode.NotAuthorized);
}

function credentialsFor(name: string): User {
  if (users.has(name)) return users.get(name);
  const salt = crypto.hmacSha256(decoySecret, bytesOf(name)).subarray(0, 16);
  return new User(salt, decoyIterations, new Uint8Array(KEY_BYTES), new Uint8Array(KEY_BYTES));
}

/** client-first-message → server-first-message; keeps "gs2 header \n client-first-bare \n server-first". */
function first(data: string, plus: bool): i32 {
  // gs2-header = cbind-flag "," [authzid] ","; an authzid is not supported
  const flagEnd = data.indexOf(",");
  if (flagEnd < 0 || data.indexOf(",", flagEnd + 1) != flagEnd + 1) return refuse("the gs2 header is not \"<flag>,,\" (an authzid is not supported)");
  const flag = data.substring(0, flagEnd);
  const gs2 = data.substring(0, flagEnd + 2);
  const bare = data.substring(flagEnd + 2);
  if (plus) {
    if (flag != CB_FLAG) return refuse(METHOD_PLUS + " needs the gs2 header \"" + CB_FLAG + ",,\"");
    if (auth.channelBinding() === null) return refuse("channel binding tls-exporter is not available on this connection (TLS 1.3 only)");
  } else if (flag == "y") {
    // RFC 5802 section 6: "y" says the client could bind but thinks the server cannot; here it can: a downgrade
    if (channelBindingOffered && auth.channelBinding() !== null) return refuse("gs2 flag \"y\" where " + METHOD_PLUS + " is offered (a downgrade, RFC 5802 section 6)");
  } else if (flag != "n") return refuse("channel binding (gs2 flag \"p=\") needs the method " + METHOD_PLUS + " and " + CB_FLAG);
  const parts = bare.split(",");
  if (parts.length < 2 || !parts[0].startsWith("n=") || !parts[1].startsWith("r=")) return refuse("client-first-message is not \"n=<user>,r=<nonce>\"");
  const name = decodeSaslName(parts[0].substring(2));
  const clientNonce = parts[1].substring(2);
  if (name === null || name.length == 0) return refuse("invalid user name in client-first-message");
  if (!validNonce(clientNonce)) return refuse("invalid client nonce");
  const user = credentialsFor(name);
  const serverNonce = base64.encode(crypto.randomBytes(NONCE_BYTES)!);
  const serverFirst = "r=" + clientNonce + serverNonce + ",s=" + base64.encode(user.salt) + ",i=" + user.iterations.toString();
  auth.keepState(bytesOf(gs2 + "\n" + bare + "\n" + serverFirst));
  return auth.challenge(bytesOf(serverFirst));
}

/** client-final-message → server-final-message, against the state of the first step. */
function final(data: string, state: string): i32 {
  const lines = state.split("\n");
  if (lines.length != 3) return refuse("no exchange in progress");
  const gs2 = lines[0];
  const bare = lines[1];
  const serverFirst = lines[2];
  const cut = data.lastIndexOf(",p=");
  if (cut < 0) return refuse("client-final-message has no proof");
  const withoutProof = data.substring(0, cut);
  const proof = base64.decode(data.substring(cut + 3));
  const parts = withoutProof.split(",");
  // c= is base64(gs2 header ‖ channel binding data), the data only with flag "p=" (RFC 5802 section 7)
  let cbind = bytesOf(gs2);
  if (gs2.startsWith("p=")) {
    const found = auth.channelBinding();
    if (found === null) return refuse("channel binding tls-exporter is not available on this connection (TLS 1.3 only)");
    const cb = found!;
    const joined = new Uint8Array(cbind.length + cb.length);
    joined.set(cbind, 0);
    joined.set(cb, cbind.length);
    cbind = joined;
  }
  if (parts.length < 2 || parts[0] != "c=" + base64.encode(cbind)) return refuse("channel binding data does not match the gs2 header");
  const nonce = serverFirst.substring(2, serverFirst.indexOf(","));
  if (parts[1] != "r=" + nonce) return refuse("nonce does not match");
  if (proof === null || proof.length != KEY_BYTES) return refuse("the proof is not base64 of 32 bytes");
  const name = decodeSaslName(bare.split(",")[0].substring(2))!;
  const user = credentialsFor(name);
  // RFC 5802 section 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey
  const authMessage = bytesOf(bare + "," + serverFirst + "," + withoutProof);
  const signature = crypto.hmacSha256(user.storedKey, authMessage);
  const clientKey = new Uint8Array(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i++) clientKey[i] = proof[i] ^ signature[i];
  const known = users.has(name);
  if (!crypto.timingSafeEqual(crypto.sha256(clientKey), user.storedKey) || !known) {
    log.info("scram: authentication failed for " + name);
    return auth.failure(ReasonCode.BadUserNameOrPassword);
  }
  auth.keepState(new Uint8Array(0));
  // The SCRAM user is who the client is: the broker makes it the client's username and
  // refuses a CONNECT User Name that differs (0x86), or a re-authentication as someone else.
  auth.setIdentity(name);
  const serverSignature = crypto.hmacSha256(user.serverKey, authMessage);
  return auth.success(bytesOf("v=" + base64.encode(serverSignature)));
}

/** With `required` (the default), a client that did not authenticate with SCRAM (3.1.1, or MQTT 5 without the method) is refused: 0x87 / return code 5. */
export function onConnect(msg: Message): i32 {
  if (!required || (msg.flags & ConnectFlag.enhancedAuth) != 0) return Verdict.Continue;
  msg.setReasonString(METHOD + " authentication is required");
  return deny(ReasonCode.NotAuthorized);
}

export function onAuth(msg: Message): i32 {
  const method = msg.authenticationMethod;
  if (method != METHOD && method != METHOD_PLUS) return refuse("not " + METHOD + " or " + METHOD_PLUS);
  const data = String.UTF8.decodeUnsafe(msg.payloadPtr, <usize>msg.payloadLength);
  if (msg.authStep == AuthStep.continue_) {
    const state = msg.authState;
    return final(data, String.UTF8.decodeUnsafe(state.dataStart, <usize>state.length));
  }
  return first(data, method == METHOD_PLUS);
}
