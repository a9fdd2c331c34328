/**
 * A resumed PUBREL is under ackTimeoutMs like a PUBLISH. After a reconnect
 * with the session kept, the bridge resumes a QoS 2 message whose PUBREC it
 * had with PUBREL ([MQTT-4.4.0-1]). If the upstream then never answers PUBCOMP
 * while the link otherwise stays healthy (PINGRESP still flows, so keep alive
 * sees nothing), the bridge must give up on that connection after
 * ackTimeoutMs, reconnect and send the PUBREL again — counted in
 * wasmq_bridge_ack_timeouts_total and wasmq_bridge_pubrel_resent_total. Before
 * this, such a bridge waited forever with the message "awaiting PUBCOMP".
 *
 * The stall is a frame-level proxy (test/mqtt-cut-proxy.ts) in front of a real
 * Mosquitto, and in the other run a second wasmq: first it cuts the link at the
 * PUBCOMP (so the bridge must resume), then it swallows every PUBCOMP on the
 * new connections, then it lets them through: the message reaches the
 * upstream's subscriber exactly once.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import mqtt from "mqtt";
import { bridgesOf } from "../broker/bridge/index.js";
import { FAST, Tally, publishAll, startLoggedBroker, until, upstreamKinds } from "./bridge-support.js";
import { tempDir } from "./helpers.js";
import { CutProxy } from "./mqtt-cut-proxy.js";

const dir = tempDir("wasmq-bridge-resume-");
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const UPSTREAMS = upstreamKinds(dir);

for (const [kind, startUpstream, available] of UPSTREAMS) {
  describe(`resumed PUBREL through a ${kind} upstream`, { skip: !available && "mosquitto not installed" }, () => {
    test("PUBCOMP withheld after the resume: ack timeout, reconnect, PUBREL sent again, counted; delivered once when PUBCOMP flows", async () => {
      const upstream = await startUpstream();
      // First: the link dies with the upstream's PUBCOMP (the upstream released the message; the edge must resume with PUBREL).
      const proxy = await CutProxy.start(upstream.port, { direction: "toBridge", type: "pubcomp", forward: false });
      const tally = await Tally.start(upstream.url, "site1/#", {}, 2);
      // Keep alive is shorter than the ack timeout: a link stalled on PUBCOMP still answers PINGREQ, so keep alive alone never drops it.
      const edge = await startLoggedBroker(
        {
          metrics: { port: 0 },
          bridges: [{ name: "cloud", url: proxy.url, clientId: `resume-${n++}`, ...FAST, keepaliveSec: 1, ackTimeoutMs: 2500, out: [{ topic: "sensors/#", qos: 2, remotePrefix: "site1/" }] }],
        },
        join(dir, `edge-${n++}`),
      );
      const bridge = bridgesOf(edge.broker.aedes)[0]!;
      try {
        await edge.waitLine(/bridge cloud connected/);
        await publishAll(edge.url, 1, () => "sensors/a", "once", 0, 2);
        await proxy.cut;
        // From now on the upstream's PUBCOMPs never reach the edge, everything else does.
        proxy.withhold = { direction: "toBridge", type: "pubcomp" };
        proxy.passThrough();
        await until("the PUBREL resumed on the next connection", () => bridge.counters.pubrelResent >= 1);
        assert.equal(bridge.queue.releasedSeqs().length, 1, "the message awaits PUBCOMP, not a new PUBLISH");
        // The stalled exchange is given up after ackTimeoutMs and the PUBREL goes out again on a new connection.
        await until("an ack timeout on the resumed PUBREL, and the PUBREL resent", () => bridge.counters.ackTimeouts >= 1 && bridge.counters.pubrelResent >= 2, 30_000).catch((err: Error) => {
          throw new Error(`${err.message}: ${JSON.stringify({ counters: bridge.counters, seen: proxy.seen, log: edge.lines.filter((l) => /bridge/.test(l.msg)).map((l) => l.msg) })}`);
        });
        const timeoutLine = await edge.waitLine(/no PUBCOMP for a resumed PUBREL/);
        assert.equal(timeoutLine.bridge, "cloud");
        // The counter moves when the bridge writes the PUBREL; the proxy counts it when the frame has crossed it, a moment later.
        await until("the proxy saw the PUBREL sent, resumed, resumed again", () => (proxy.seen.toUpstream.pubrel ?? 0) >= 3, 30_000).catch((err: Error) => {
          throw new Error(`${err.message} (saw ${proxy.seen.toUpstream.pubrel})`);
        });
        assert.equal(proxy.seen.toUpstream.publish, 1, "never published again: the upstream kept the session");
        const metrics = await (await fetch(`${edge.broker.admin!.url}/metrics`)).text();
        assert.match(metrics, /^wasmq_bridge_ack_timeouts_total\{bridge="cloud"\} [1-9]\d*$/m);
        assert.match(metrics, /^wasmq_bridge_pubrel_resent_total\{bridge="cloud"\} ([2-9]|\d\d+)$/m);
        const status = (await (await fetch(`${edge.broker.admin!.url}/bridges/cloud`)).json()) as { ackTimeouts: number; pubrelResent: number };
        assert.ok(status.ackTimeouts >= 1 && status.pubrelResent >= 2, JSON.stringify(status));
        // The upstream answers again: the message completes, delivered once.
        proxy.withhold = null;
        await until("PUBCOMP reached the edge", () => bridge.queue.depth === 0, 30_000);
        const fence = await mqtt.connectAsync(upstream.url, { clientId: `fence-${n++}` });
        await fence.publishAsync("site1/fence", "fence", { qos: 2 });
        await fence.endAsync();
        await tally.waitDistinct(2);
        assert.equal(tally.counts.get("once0"), 1, "delivered exactly once at the upstream");
      } finally {
        await edge.broker.close();
        await tally.end();
        await proxy.close();
        await upstream.stop();
      }
    });
  });
}
