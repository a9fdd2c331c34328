/**
 * TLS settings shared by the MQTT-over-TLS and MQTT-over-secure-WebSocket
 * listeners: server certificate, client certificates (mutual TLS) verified
 * against a CA bundle and an optional CRL, minimum protocol version. Also the
 * checks that turn unreadable or mismatched PEM files into a config error
 * naming the key, and the extraction of a verified client certificate into the
 * plain data plugins see.
 */
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContextOptions, type TLSSocket, type TlsOptions } from "node:tls";
import type { ClientCertificate } from "../../host/index.js";

/**
 * none: no client certificate is asked for. request: asked for; one that is
 * presented must verify, a client without one still connects. require: the
 * handshake fails without a certificate that verifies (Mosquitto's
 * require_certificate).
 */
export type ClientCertMode = "none" | "request" | "require";

export interface TlsSettings {
  host: string;
  port: number;
  cert: string;
  key: string;
  /** CA bundle (PEM) that client certificates must chain to. */
  ca?: string;
  /** Certificate revocation list(s) (PEM), checked for every client certificate. */
  crl?: string;
  clientCert: ClientCertMode;
  /** The client certificate's subject CN replaces the CONNECT username (and the password is dropped). */
  useIdentityAsUsername: boolean;
  minVersion: "TLSv1.2" | "TLSv1.3";
  /** MQTT over WebSocket over TLS (wss://) with the same settings, or null. */
  wsPort: number | null;
  wsPath: string;
}

/** Node TLS server options for these settings; reads the PEM files now. */
export function serverTlsOptions(s: TlsSettings, handshakeTimeout: number): TlsOptions {
  const asking = s.clientCert !== "none";
  return {
    cert: readFileSync(s.cert),
    key: readFileSync(s.key),
    ...(s.ca ? { ca: readFileSync(s.ca) } : {}),
    ...(s.crl ? { crl: readFileSync(s.crl) } : {}),
    minVersion: s.minVersion,
    requestCert: asking,
    // "request" mode lets a client without a certificate finish the handshake;
    // refuseUnverified() then drops one that presented a certificate that fails.
    rejectUnauthorized: s.clientCert === "require",
    handshakeTimeout,
  };
}

/**
 * "request" mode: a client that presented a certificate that does not verify
 * (untrusted, expired, revoked) is dropped before any MQTT byte is read.
 * Returns false when the socket was destroyed.
 */
export function refuseUnverified(socket: TLSSocket, mode: ClientCertMode): boolean {
  if (mode !== "request" || socket.authorized) return true;
  if (!socket.getPeerX509Certificate()) return true; // none presented: allowed in this mode
  socket.destroy();
  return false;
}

/** The verified client certificate of a TLS socket, or null when none was presented or it did not verify. */
export function verifiedClientCertificate(socket: TLSSocket): ClientCertificate | null {
  if (!socket.authorized) return null;
  const x = socket.getPeerX509Certificate();
  return x ? describeCertificate(x) : null;
}

export function describeCertificate(x: X509Certificate): ClientCertificate {
  const subject = distinguishedName(x.subject);
  const issuer = distinguishedName(x.issuer);
  return {
    subject: subject.text,
    subjectCommonName: subject.cn,
    issuer: issuer.text,
    issuerCommonName: issuer.cn,
    subjectAltNames: x.subjectAltName ? splitAltNames(x.subjectAltName) : [],
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
    fingerprint: createHash("sha256").update(x.raw).digest("hex"),
    serialNumber: x.serialNumber.toUpperCase(),
  };
}

/**
 * Node prints a name one attribute per line, least specific first, values
 * escaped as RFC 4514 asks (`O=Acme\, Inc.`): joined in reverse with ","
 * that is the RFC 4514 string `openssl x509 -nameopt RFC2253` prints. The CN
 * is returned unescaped: it is what becomes a username.
 */
function distinguishedName(lines: string): { text: string; cn: string } {
  const parts = lines.split("\n").filter((l) => l.length > 0);
  const cn = [...parts].reverse().find((p) => p.startsWith("CN="));
  return { text: parts.reverse().join(","), cn: cn ? unescapeDnValue(cn.slice(3)) : "" };
}

/** RFC 4514 section 2.4: `\X` stands for the character X, `\HH` for the byte 0xHH (UTF-8). */
function unescapeDnValue(value: string): string {
  if (!value.includes("\\")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === "\\" && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const ch = c === "\\" && i + 1 < value.length ? value[++i]! : c;
      bytes.push(...Buffer.from(ch, "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** "DNS:a, IP Address:1.2.3.4"; Node quotes entries that contain ", " (JSON string syntax). */
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  const re = /([^,:]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(text); m && m[0].length > 0; m = re.exec(text)) {
    const value = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    out.push(`${m[1]!.trim()}:${value}`);
  }
  return out;
}

/**
 * Read every PEM file the way the listener will, so a bad file is refused at
 * start-up naming its key rather than failing on the first handshake.
 * Returns the key (below "tls.") and the problem, or null.
 */
export function checkTlsMaterial(s: TlsSettings): { key: string; problem: string } | null {
  const attempt = (key: string, fn: () => unknown, what: string): { key: string; problem: string } | null => {
    try {
      fn();
      return null;
    } catch (err) {
      return { key, problem: `${what} (${(err as Error).message})` };
    }
  };
  const context = (o: SecureContextOptions) => () => createSecureContext(o);
  return (
    attempt("cert", () => new X509Certificate(readFileSync(s.cert)), `${s.cert} is not a PEM certificate`) ??
    attempt("key", () => createPrivateKey(readFileSync(s.key)), `${s.key} is not a PEM private key (or it is encrypted)`) ??
    attempt("key", context({ cert: readFileSync(s.cert), key: readFileSync(s.key) }), `${s.key} is not the private key of ${s.cert}`) ??
    (s.ca ? attempt("ca", () => caBundle(readFileSync(s.ca!)), `${s.ca} is not a PEM CA bundle`) : null) ??
    (s.crl ? attempt("crl", context({ crl: readFileSync(s.crl) }), `${s.crl} is not a PEM certificate revocation list`) : null)
  );
}

/** Every certificate in a PEM bundle must parse, and there must be at least one. */
function caBundle(pem: Buffer): void {
  const blocks = pem.toString("latin1").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new Error("no certificate in it");
  for (const block of blocks) new X509Certificate(block);
  createSecureContext({ ca: pem });
}
