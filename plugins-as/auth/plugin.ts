// auth: username/password check at CONNECT against salted PBKDF2-HMAC-SHA256
// hashes from the config, with the right CONNACK code for each refusal.
// Hashes are written "pbkdf2-sha256$<iterations>$<salt base64>$<key base64>"
// (native.ts exports hashPassword() to produce them). PBKDF2 is the SDK's
// crypto.pbkdf2Sha256, which the host computes and charges fuel for.
import { Config, Message, ReturnCode, Verdict, base64, crypto, deny, log } from "../sdk";
export * from "../sdk/exports";

const SCHEME = "pbkdf2-sha256";
const MAX_ITERATIONS: i32 = 10_000_000;
const MIN_KEY: i32 = 16;
const MAX_KEY: i32 = 64;
const MAX_SALT: i32 = 256;

class User {
  constructor(
    public name: string,
    public salt: Uint8Array,
    public key: Uint8Array,
    public iterations: i32,
  ) {}
}

let users = new Map<string, User>();
let allowAnonymous = false;
// Every check with a password does the same PBKDF2 work, that of the costliest
// user (`maxWork`), so the time taken reveals neither whether a name exists
// nor how many iterations its hash has: an unknown name is checked against
// that user (`decoy`), and a cheaper user's check is topped up with throwaway
// PBKDF2 iterations (`padWork`).
let decoy: User | null = null;
let maxWork: i32 = 0;
const PAD_SALT = new Uint8Array(16);
// clientIdPattern without its trailing '*', split around "%u".
let clientIdParts: string[] = [];
let clientIdExact = true;
let checkClientId = false;



function parseIterations(s: string): i32 {
  if (s.length == 0 || s.length > 8 || s.charCodeAt(0) == 0x30) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n <= MAX_ITERATIONS ? n : -1;
}

/** A user from "pbkdf2-sha256$<iterations>$<salt>$<key>", or null with the reason logged. */
function parseHash(where: string, name: string, hash: string): User | null {
  const parts = hash.split("$");
  if (parts.length != 4 || parts[0] != SCHEME) {
    log.error(where + " must look like " + SCHEME + "$<iterations>$<salt base64>$<key base64>");
    return null;
  }
  const iterations = parseIterations(parts[1]);
  if (iterations < 1) {
    log.error(where + ": iterations must be a whole number from 1 to " + MAX_ITERATIONS.toString());
    return null;
  }
  const salt = base64.decode(parts[2]);
  if (salt === null || salt.length > MAX_SALT) {
    log.error(where + ": the salt must be base64 of at most " + MAX_SALT.toString() + " bytes");
    return null;
  }
  const key = base64.decode(parts[3]);
  if (key === null || key.length < MIN_KEY || key.length > MAX_KEY) {
    log.error(where + ": the key must be base64 of " + MIN_KEY.toString() + " to " + MAX_KEY.toString() + " bytes");
    return null;
  }
  return new User(name, salt, key, iterations);
}

/** "%u-*": the client id must be the username followed by "-" and anything. */
function parseClientIdPattern(pattern: string): bool {
  if (pattern.length == 0) {
    log.error("config.clientIdPattern must be a non-empty string");
    return false;
  }
  const star = pattern.indexOf("*");
  if (star >= 0 && star != pattern.length - 1) {
    log.error("config.clientIdPattern may contain '*' only at its end");
    return false;
  }
  clientIdExact = star < 0;
  clientIdParts = (clientIdExact ? pattern : pattern.substring(0, star)).split("%u");
  return true;
}

export function init(config: Config): bool {
  users = new Map<string, User>();
  decoy = null;
  maxWork = 0;
  const n = config.length("users");
  // (An object of users has a member count but no element 0.)
  if (config.has("users") && (n < 0 || (n > 0 && !config.has("users.0")))) {
    log.error("config.users must be an array of { username, hash }");
    return false;
  }
  for (let i = 0; i < n; i++) {
    const base = "users." + i.toString();
    const name = config.string(base + ".username", "");
    if (name.length == 0) {
      log.error(base + ".username must be a non-empty string");
      return false;
    }
    if (users.has(name)) {
      log.error(base + ".username: " + name + " is listed twice");
      return false;
    }
    const user = parseHash(base + ".hash", name, config.string(base + ".hash", ""));
    if (user === null) return false;
    users.set(name, user);
    if (work(user) > maxWork) {
      maxWork = work(user);
      decoy = user;
    }
  }
  allowAnonymous = config.bool("allowAnonymous", false);
  if (users.size == 0 && !allowAnonymous) {
    log.error("config.users is empty and allowAnonymous is false: nobody could connect");
    return false;
  }
  checkClientId = config.has("clientIdPattern");
  if (checkClientId && !parseClientIdPattern(config.string("clientIdPattern", ""))) return false;
  return true;
}

/** PBKDF2 cost of checking this user: two SHA-256 compressions per iteration per 32-byte block of key. */
function work(user: User): i32 {
  return user.iterations * ((user.key.length + 31) / 32);
}

/** Throwaway PBKDF2 (one 32-byte block) that brings a check of `user` up to maxWork. */
function padWork(user: User, msg: Message): void {
  let remaining = maxWork - work(user);
  while (remaining > 0) {
    const n = remaining < MAX_ITERATIONS ? remaining : MAX_ITERATIONS;
    crypto.pbkdf2Sha256(msg.password, PAD_SALT, n, 32);
    remaining -= n;
  }
}

function passwordMatches(user: User, msg: Message): bool {
  const derived = crypto.pbkdf2Sha256(msg.password, user.salt, user.iterations, user.key.length);
  return derived !== null && crypto.timingSafeEqual(derived, user.key);
}

function clientIdAllowed(msg: Message, username: string): bool {
  // (Not replaceAll: AssemblyScript 0.28's overflows its buffer when the
  // replacement is over twice the length of the string.)
  const expected = clientIdParts.join(username);
  const id = msg.clientId;
  return clientIdExact ? id == expected : id.startsWith(expected);
}

export function onConnect(msg: Message): i32 {
  if (!msg.hasUsername) {
    if (allowAnonymous) return Verdict.Continue;
    log.info("refused an anonymous client: allowAnonymous is false");
    return deny(ReturnCode.NotAuthorized);
  }
  const name = msg.username;
  if (!msg.hasPassword) {
    log.info("refused " + name + ": no password");
    return deny(ReturnCode.BadUsernameOrPassword);
  }
  const known = users.has(name);
  const user = known ? users.get(name) : decoy;
  let matches = false;
  if (user !== null) {
    matches = passwordMatches(user, msg);
    padWork(user, msg);
  }
  if (!known) {
    log.info("refused " + name + ": unknown user");
    return deny(ReturnCode.BadUsernameOrPassword);
  }
  if (!matches) {
    log.info("refused " + name + ": wrong password");
    return deny(ReturnCode.BadUsernameOrPassword);
  }
  if (checkClientId && !clientIdAllowed(msg, name)) {
    log.info("refused " + name + ": client id does not fit clientIdPattern");
    return deny(ReturnCode.IdentifierRejected);
  }
  return Verdict.Continue;
}
