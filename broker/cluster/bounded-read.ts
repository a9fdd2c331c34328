/**
 * Reads for operators (admin API, metrics, $SYS) go through the Redis link's
 * offline queue, which holds a command until Redis answers — for as long as an
 * outage lasts when the link has not yet noticed it is down. Those readers must
 * answer anyway, so each read gets a deadline and falls back to what this node
 * knows on its own.
 */
export const OPERATOR_READ_TIMEOUT_MS = 2_000;

export class RedisReadTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`Redis did not answer ${what} within ${ms} ms`);
    this.name = "RedisReadTimeout";
  }
}

/** `read`'s result, or `fallback()` when it fails or takes longer than `ms`. */
export async function readOr<T>(read: Promise<T>, fallback: () => T, ms = OPERATOR_READ_TIMEOUT_MS): Promise<T> {
  try {
    return await within(read, "a read", ms);
  } catch {
    return fallback();
  }
}

/** `read`'s result, or a RedisReadTimeout after `ms`. */
export function within<T>(read: Promise<T>, what: string, ms = OPERATOR_READ_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisReadTimeout(what, ms)), ms);
    timer.unref();
  });
  read.catch(() => {}); // a late failure after the deadline is not an unhandled rejection
  return Promise.race([read, deadline]).finally(() => clearTimeout(timer));
}
