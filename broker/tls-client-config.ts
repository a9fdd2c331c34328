/**
 * The client-side TLS keys wasmq reads where it connects out: a bridge to its
 * upstream (`bridges.N.tls`) and a cluster node to Redis (`cluster.tls`). One
 * schema and one resolution, so both read and refuse the same way:
 *
 *   "tls": { "ca": "ca.pem", "cert": "client.pem", "key": "client.key", "rejectUnauthorized": true }
 *
 * Relative paths resolve against the config file's folder; each must name a
 * file when the config is loaded. The error names the key and the file
 * (`invalid config in c.json: key "cluster.tls.ca": file /x/ca.pem does not exist`).
 */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";

const fields = {
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  rejectUnauthorized: z.boolean().optional(),
};

/** `extra`: keys only one side reads (the bridge's `servername`). */
export function tlsClientSchema<Extra extends z.ZodRawShape = Record<never, never>>(extra?: Extra) {
  return (
    z
      .object({ ...fields, ...(extra as Extra) })
      .strict()
      // A certificate without its key is not sent at all (Node drops it): the server would then refuse a client that looks configured.
      .refine((t) => !(t as TlsPair).cert === !(t as TlsPair).key, { message: "cert and key go together: give both (the client certificate and its private key) or neither", path: ["cert"] })
  );
}

type TlsPair = { cert?: string; key?: string };

export interface TlsClientFiles {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

/**
 * Paths resolved with `resolvePath`, each checked to be a file; `fail(key, why)`
 * throws the caller's error naming the config file. `at` is the key of the
 * section ("cluster.tls", "bridges.0.tls").
 */
export function resolveTlsClientFiles(
  raw: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean },
  at: string,
  resolvePath: (p: string) => string,
  fail: (key: string, why: string) => never,
): TlsClientFiles {
  const files: TlsClientFiles = { rejectUnauthorized: raw.rejectUnauthorized ?? true };
  for (const k of ["ca", "cert", "key"] as const) {
    if (raw[k] === undefined) continue;
    const path = resolvePath(raw[k]);
    if (!existsSync(path)) fail(`${at}.${k}`, `file ${path} does not exist`);
    if (!statSync(path).isFile()) fail(`${at}.${k}`, `${path} is not a file`);
    files[k] = path;
  }
  return files;
}
