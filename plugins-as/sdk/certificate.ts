// The connect hook's verified client certificate (mutual TLS), read from the
// host on demand through the client_cert import. Mirrors host/native's
// Certificate (host/message.ts ClientCertificate): same names, same values.
import { CertField } from "./abi";
import { client_cert } from "./imports";

export class Certificate {
  /** Subject distinguished name, most specific first (RFC 4514 order): "CN=dev-1,O=Acme,C=DE". */
  subject: string = "";
  /** The subject's common name (CN), "" when it has none. */
  subjectCommonName: string = "";
  issuer: string = "";
  issuerCommonName: string = "";
  /** As OpenSSL prints them: "DNS:dev-1.example", "IP Address:10.0.0.1", "URI:…". */
  subjectAltNames: string[] = [];
  /** Validity, milliseconds since the epoch. */
  notBefore: f64 = 0;
  notAfter: f64 = 0;
  /** SHA-256 of the DER certificate: 64 lowercase hex digits, no separators. */
  fingerprint: string = "";
  /** Serial number, uppercase hex. */
  serialNumber: string = "";
}

const SCRATCH_SIZE: i32 = 256;
const scratch = memory.data(256, 16);

function text(field: i32): string {
  const n = client_cert(field, scratch, SCRATCH_SIZE);
  if (n <= 0) return "";
  if (n <= SCRATCH_SIZE) return String.UTF8.decodeUnsafe(scratch, <usize>n);
  const buf = new ArrayBuffer(n);
  client_cert(field, changetype<usize>(buf), n);
  return String.UTF8.decode(buf);
}

function time(field: i32): f64 {
  return client_cert(field, scratch, SCRATCH_SIZE) == 8 ? load<f64>(scratch) : 0;
}

/** Whether the current call carries a verified client certificate; copies nothing. */
export function hasCertificate(): bool {
  return client_cert(CertField.fingerprint, 0, 0) >= 0;
}

/** The current call's certificate, or null (no TLS, none presented, or not the connect hook). */
export function readCertificate(): Certificate | null {
  if (!hasCertificate()) return null;
  const c = new Certificate();
  c.subject = text(CertField.subject);
  c.subjectCommonName = text(CertField.subjectCommonName);
  c.issuer = text(CertField.issuer);
  c.issuerCommonName = text(CertField.issuerCommonName);
  const sans = text(CertField.subjectAltNames);
  c.subjectAltNames = sans.length ? sans.split("\n") : [];
  c.notBefore = time(CertField.notBefore);
  c.notAfter = time(CertField.notAfter);
  c.fingerprint = text(CertField.fingerprint);
  c.serialNumber = text(CertField.serialNumber);
  return c;
}
