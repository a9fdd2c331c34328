import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";

/**
 * Log refused TLS handshakes (untrusted, expired or revoked client
 * certificates, protocol mismatches) with the peer and OpenSSL's reason, at
 * most one line per second: a scanner must not flood the log. The next line
 * says how many were not logged.
 */
export function tlsRefusalLogger(logger: Logger, intervalMs = 1000): (err: Error, socket: TLSSocket) => void {
  let last = 0;
  let skipped = 0;
  return (err, socket) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      skipped++;
      return;
    }
    last = now;
    // A client certificate that fails verification ends the socket without an
    // error of its own ("socket hang up"); OpenSSL's verdict is on the socket.
    const verify = (socket as TLSSocket & { authorizationError?: string | Error }).authorizationError;
    const code = verify ? String(verify) : (err as NodeJS.ErrnoException).code;
    logger.info(
      { peer: socket.remoteAddress, reason: verify ? `client certificate: ${String(verify)}` : err.message, ...(code ? { code } : {}), ...(skipped ? { notLogged: skipped } : {}) },
      "TLS handshake refused",
    );
    skipped = 0;
  };
}
