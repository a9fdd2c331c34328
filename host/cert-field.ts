/**
 * The connect hook's client certificate as the `client_cert` host import hands
 * it to a Wasm plugin: one field at a time, as bytes, so a plugin that never
 * asks pays nothing and one that asks for the fingerprint copies 64 bytes.
 */
import { CertField } from "./abi.js";
import type { ClientCertificate } from "./message.js";

/** client_cert's answer when the call has no certificate (no TLS, none presented, not the connect hook). */
export const NO_CERTIFICATE = -1;
/** client_cert's answer for a field number this host does not know (a plugin built for a later ABI). */
export const UNKNOWN_FIELD = -2;

// Each certificate's fields are encoded once, on the first request; a plugin
// that reads the whole certificate makes nine calls per CONNECT.
const encoded = new WeakMap<ClientCertificate, (Uint8Array | undefined)[]>();

/** The bytes of one field, or null when the field number is unknown. */
export function certFieldBytes(cert: ClientCertificate, field: number): Uint8Array | null {
  let fields = encoded.get(cert);
  if (!fields) {
    fields = [];
    encoded.set(cert, fields);
  }
  const cached = fields[field];
  if (cached) return cached;
  const bytes = encodeField(cert, field);
  if (bytes) fields[field] = bytes;
  return bytes;
}

function encodeField(cert: ClientCertificate, field: number): Uint8Array | null {
  switch (field) {
    case CertField.subject:
      return Buffer.from(cert.subject, "utf8");
    case CertField.subjectCommonName:
      return Buffer.from(cert.subjectCommonName, "utf8");
    case CertField.issuer:
      return Buffer.from(cert.issuer, "utf8");
    case CertField.issuerCommonName:
      return Buffer.from(cert.issuerCommonName, "utf8");
    case CertField.subjectAltNames:
      return Buffer.from(cert.subjectAltNames.join("\n"), "utf8");
    case CertField.notBefore:
      return f64(cert.notBefore);
    case CertField.notAfter:
      return f64(cert.notAfter);
    case CertField.fingerprint:
      return Buffer.from(cert.fingerprint, "utf8");
    case CertField.serialNumber:
      return Buffer.from(cert.serialNumber, "utf8");
    default:
      return null;
  }
}

function f64(value: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value, 0);
  return b;
}
