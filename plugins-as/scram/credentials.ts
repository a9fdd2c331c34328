// The stored credentials of one SCRAM-SHA-256 user (RFC 5802 section 3, RFC 7677),
// as the scram plugin's config takes them: the broker never holds a password.
//
// The password is prepared with SASLprep (RFC 4013, the stringprep profile RFC
// 5802 section 2.2 names for Normalize()) before PBKDF2, as every standard
// SCRAM client prepares it before deriving its proof: a password with a
// non-ASCII space (U+00A0 becomes U+0020), a soft hyphen (mapped to nothing) or
// a compatibility character ("ﬁ" becomes "fi") derives the keys such a client
// can match. A password SASLprep prohibits (control characters, private use,
// unassigned code points, mixed bidirectional text) is refused here with the
// reason, instead of producing keys no standard client can ever reach.
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { saslprep } from "@mongodb-js/saslprep";

const KEY_BYTES = 32;
/** RFC 7677 section 4: at least 4096; the plugin's config takes at most 10,000,000 (its pbkdf2 import's cap). */
export const MIN_ITERATIONS = 4096;
export const MAX_ITERATIONS = 10_000_000;
const MIN_SALT_BYTES = 8;

/** A credential that cannot be made as asked; the message says which input and why. */
export class CredentialError extends Error {
  override name = "CredentialError";
}

/** One entry of the scram config's `users`. */
export interface ScramCredential {
  username: string;
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/** SASLprep as a stored string (RFC 4013 section 2: unassigned code points are refused), naming `what` on refusal. */
function prepare(what: string, value: string): string {
  let prepared: string;
  try {
    prepared = saslprep(value);
  } catch (err) {
    // @mongodb-js/saslprep 1.x throws a TypeError (reading its first character) for a
    // non-empty string that maps to nothing (only soft hyphens, joiners...); its own
    // refusals are plain Errors.
    if (err instanceof TypeError) throw new CredentialError(`the ${what} is empty after SASLprep (RFC 4013)`);
    throw new CredentialError(`the ${what} is refused by SASLprep (RFC 4013): ${(err as Error).message.replace(/, see .*$/, "")}`);
  }
  if (prepared.length === 0) throw new CredentialError(`the ${what} is empty after SASLprep (RFC 4013)`);
  return prepared;
}

/**
 * The stored credentials for `password` (RFC 5802 section 3):
 * SaltedPassword := Hi(SASLprep(password), salt, i); StoredKey := H(HMAC(SaltedPassword, "Client Key"));
 * ServerKey := HMAC(SaltedPassword, "Server Key").
 *
 * The user name is kept as given — it is compared byte for byte with the
 * (saslname-decoded) name of the client-first-message, and becomes the
 * client's MQTT username — but it must be one SASLprep leaves unchanged:
 * RFC 5802 section 5.1 has clients prepare it, so a name that preparation
 * would change would arrive differently from clients that do and clients that
 * do not; such a name is refused, naming its prepared form.
 */
export function deriveCredentials(username: string, password: string, iterations = MIN_ITERATIONS, salt: Uint8Array = globalThis.crypto.getRandomValues(new Uint8Array(16))): ScramCredential {
  if (typeof username !== "string" || username.length === 0) throw new CredentialError("the username must be a non-empty string");
  const preparedName = prepare("username", username);
  if (preparedName !== username) {
    throw new CredentialError(`the username ${JSON.stringify(username)} is not stable under SASLprep (RFC 4013): clients that prepare it send ${JSON.stringify(preparedName)}; use that form`);
  }
  if (typeof password !== "string") throw new CredentialError("the password must be a string");
  const prepared = prepare("password", password);
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new CredentialError(`iterations must be an integer from ${MIN_ITERATIONS} to ${MAX_ITERATIONS} (got ${iterations})`);
  }
  if (salt.length < MIN_SALT_BYTES) throw new CredentialError(`the salt must have at least ${MIN_SALT_BYTES} bytes (got ${salt.length})`);
  const salted = pbkdf2Sync(Buffer.from(prepared, "utf8"), salt, iterations, KEY_BYTES, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const entry: ScramCredential = {
    username,
    salt: Buffer.from(salt).toString("base64"),
    iterations,
    storedKey: createHash("sha256").update(clientKey).digest("base64"),
    serverKey: createHmac("sha256", salted).update("Server Key").digest("base64"),
  };
  salted.fill(0);
  clientKey.fill(0);
  return entry;
}
