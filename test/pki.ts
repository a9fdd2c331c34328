// A throw-away PKI made with the openssl CLI for the mutual-TLS tests: a root
// CA (with `openssl ca`, so it can revoke and publish a CRL), a server
// certificate, client certificates (valid, expired, revoked) and a second,
// unrelated CA whose clients the broker must not trust.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Issued {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it ("AB:CD:…"). */
  opensslFingerprint: string;
}

function openssl(args: string[], cwd: string): string {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error) throw new Error(`cannot run openssl: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

// EC keys: much faster to generate than RSA, and every client here speaks them.
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function caConfig(dir: string): string {
  return `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = policy_any
unique_subject = no
copy_extensions = copy
[ policy_any ]
commonName = supplied
organizationName = optional
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
`;
}

export class TestCa {
  readonly dir: string;
  readonly certFile: string;
  readonly config: string;
  private issued = 0;

  constructor(parent: string, name: string, readonly commonName: string) {
    this.dir = join(parent, name);
    mkdirSync(join(this.dir, "issued"), { recursive: true });
    writeFileSync(join(this.dir, "index.txt"), "");
    writeFileSync(join(this.dir, "serial"), "1000\n");
    writeFileSync(join(this.dir, "crlnumber"), "1000\n");
    this.config = join(this.dir, "ca.cnf");
    writeFileSync(this.config, caConfig(this.dir));
    this.certFile = join(this.dir, "ca.pem");
    openssl(
      ["req", "-x509", ...NEW_KEY, "-days", "2", "-subj", `/O=wasmq tests/CN=${commonName}`, "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
      this.dir,
    );
  }

  get cert(): Buffer {
    return readFileSync(this.certFile);
  }

  /**
   * Issue a certificate. `validity` as `openssl ca -startdate/-enddate`
   * (YYYYMMDDHHMMSSZ) makes one that is expired today; `sans` are copied
   * from the request ("DNS:x,URI:y").
   */
  issue(commonName: string, opts: { server?: boolean; validity?: { start: string; end: string }; sans?: string } = {}): Issued {
    const base = `leaf-${++this.issued}`;
    const keyFile = join(this.dir, `${base}.key`);
    const csr = join(this.dir, `${base}.csr`);
    const certFile = join(this.dir, `${base}.pem`);
    openssl(["req", "-new", ...NEW_KEY, "-subj", `/O=wasmq devices/CN=${commonName}`, "-keyout", keyFile, "-out", csr, ...(opts.sans ? ["-addext", `subjectAltName=${opts.sans}`] : [])], this.dir);
    openssl(
      ["ca", "-batch", "-notext", "-config", this.config, "-in", csr, "-out", certFile, "-extensions", opts.server ? "server_ext" : "client_ext",
        ...(opts.validity ? ["-startdate", opts.validity.start, "-enddate", opts.validity.end] : [])],
      this.dir,
    );
    const fp = openssl(["x509", "-in", certFile, "-noout", "-fingerprint", "-sha256"], this.dir).trim();
    return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile), opensslFingerprint: fp.slice(fp.indexOf("=") + 1) };
  }

  revoke(leaf: Issued): void {
    openssl(["ca", "-config", this.config, "-revoke", leaf.certFile], this.dir);
  }

  /** Write the current CRL (PEM) and return its path. */
  crl(): string {
    const file = join(this.dir, "crl.pem");
    openssl(["ca", "-config", this.config, "-gencrl", "-out", file], this.dir);
    return file;
  }
}

/** openssl's own reading of a certificate's fields, to compare with what plugins see. */
export function opensslDescribe(certFile: string): { subject: string; issuer: string; serial: string; notBefore: number; notAfter: number } {
  const out = openssl(["x509", "-in", certFile, "-noout", "-subject", "-issuer", "-serial", "-startdate", "-enddate", "-nameopt", "RFC2253"], ".");
  const get = (key: string) => {
    const line = out.split("\n").find((l) => l.startsWith(`${key}=`));
    if (!line) throw new Error(`openssl printed no ${key}: ${out}`);
    return line.slice(key.length + 1).trim();
  };
  return { subject: get("subject"), issuer: get("issuer"), serial: get("serial"), notBefore: Date.parse(get("notBefore")), notAfter: Date.parse(get("notAfter")) };
}
