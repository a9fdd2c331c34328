// The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677), written here from the
// RFC with node:crypto, to drive the scram plugin from real MQTT clients.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import type { TLSSocket } from "node:tls";
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from "mqtt";

export class ScramClient {
  readonly nonce = randomBytes(18).toString("base64");
  readonly first: string;
  private serverFirst = "";
  private serverSignature: Buffer | null = null;

  /**
   * `binding`: the gs2 header ("n,," without channel binding, "y,," to claim
   * support for it, "p=tls-exporter,," for SCRAM-SHA-256-PLUS) and, for "p=",
   * where the channel binding data comes from at the final step.
   */
  constructor(
    private readonly username: string,
    private readonly password: string,
    private readonly binding: { gs2: string; data?: () => Buffer } = { gs2: "n,," },
  ) {
    this.first = `${binding.gs2}${this.bare()}`;
  }

  private bare(): string {
    return `n=${this.username.replace(/=/g, "=3D").replace(/,/g, "=2C")},r=${this.nonce}`;
  }

  /** client-first-message, the CONNECT's Authentication Data. */
  clientFirst(): Buffer {
    return Buffer.from(this.first);
  }

  /** server-first-message → client-final-message. */
  clientFinal(serverFirst: Buffer | string): Buffer {
    this.serverFirst = String(serverFirst);
    const attrs = new Map(this.serverFirst.split(",").map((kv) => [kv[0]!, kv.slice(2)] as const));
    const nonce = attrs.get("r")!;
    if (!nonce.startsWith(this.nonce)) throw new Error(`server nonce ${nonce} does not extend ours`);
    const salted = pbkdf2Sync(this.password, Buffer.from(attrs.get("s")!, "base64"), Number(attrs.get("i")), 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    // c= is base64(gs2 header ‖ channel binding data) (RFC 5802 section 7)
    const cbind = Buffer.concat([Buffer.from(this.binding.gs2), this.binding.data?.() ?? Buffer.alloc(0)]);
    const withoutProof = `c=${cbind.toString("base64")},r=${nonce}`;
    const authMessage = `${this.bare()},${this.serverFirst},${withoutProof}`;
    const signature = createHmac("sha256", storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    this.serverSignature = createHmac("sha256", serverKey).update(authMessage).digest();
    return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`);
  }

  /** Does server-final-message "v=..." prove the server knows our credentials? */
  verifyServerFinal(serverFinal: Buffer | string | undefined): boolean {
    const text = String(serverFinal ?? "");
    if (!text.startsWith("v=") || !this.serverSignature) return false;
    const got = Buffer.from(text.slice(2), "base64");
    return got.length === 32 && timingSafeEqual(got, this.serverSignature);
  }
}

/** mqtt.js v5 runs the SCRAM-SHA-256 exchange through handleAuth; resolves once CONNACK 0x00 arrives (rejects on a refusal). */
export async function scramConnect(
  url: string,
  user: string,
  password: string,
  opts: IClientOptions = {},
  /** SCRAM-SHA-256-PLUS: the gs2 header and the channel binding data, read from the client's own TLS socket at the final step unless given. */
  plus?: { gs2?: string; method?: string; data?: (stream: TLSSocket) => Buffer },
): Promise<{ client: MqttClient; connack: IConnackPacket; scram: ScramClient }> {
  const method = plus ? (plus.method ?? "SCRAM-SHA-256-PLUS") : "SCRAM-SHA-256";
  let client: MqttClient | null = null;
  const exporter = (stream: TLSSocket) => stream.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
  const binding = plus ? { gs2: plus.gs2 ?? "p=tls-exporter,,", data: () => (plus.data ?? exporter)(client!.stream as TLSSocket) } : { gs2: "n,," };
  const scram = new ScramClient(user, password, binding.gs2.startsWith("p=") ? binding : { gs2: binding.gs2 });
  client = mqtt.connect(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 30_000, // a safety net: two PBKDF2 rounds on a loaded machine can take seconds
    ...opts,
    properties: { ...opts.properties, authenticationMethod: method, authenticationData: scram.clientFirst() },
  });
  client.handleAuth = (packet, callback) => {
    const data = packet.properties?.authenticationData;
    callback(null as unknown as Error, { cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: method, authenticationData: scram.clientFinal(data!) } });
  };
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client!.once("connect", resolve);
      client!.once("error", reject);
      client!.once("close", () => reject(new Error("connection closed before CONNACK")));
    });
    client.removeAllListeners("error");
    client.on("error", () => {});
    return { client, connack, scram };
  } catch (err) {
    client.end(true);
    throw err;
  }
}
