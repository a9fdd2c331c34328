// broker/protocol/write-batching.ts, flushAfterRouting: a delivery aedes writes
// from its own setImmediate leaves at the end of that check phase, not one
// event-loop turn later (where it would wait behind the next turn's input).
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { test } from "node:test";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { batchWrites, flushAfterRouting } from "../broker/protocol/write-batching.js";

async function turnOfFlush(routingSweep: boolean): Promise<number> {
  const aedes = new Aedes();
  await aedes.listen();
  if (routingSweep) flushAfterRouting(aedes);
  const serverSockets: Socket[] = [];
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    serverSockets.push(socket);
    batchWrites(socket);
    aedes.handle(socket);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const client = mqtt.connect({ port, host: "127.0.0.1", clientId: "turn-sub", reconnectPeriod: 0 });
  try {
    await new Promise<void>((resolve, reject) => client.once("connect", () => resolve()).once("error", reject));
    await client.subscribeAsync("turn/t", { qos: 0 });
    const socket = serverSockets[0]!;
    // Count check phases with a chain of immediates started before the publish, and note
    // the count when the delivery reaches the socket (its _writev or _write).
    let turn = 0;
    let flushedAt = -1;
    const writev = socket._writev!.bind(socket);
    const write = socket._write.bind(socket);
    socket._writev = (chunks, cb) => {
      if (flushedAt < 0) flushedAt = turn;
      writev(chunks, cb);
    };
    socket._write = (chunk, enc, cb) => {
      if (flushedAt < 0) flushedAt = turn;
      write(chunk, enc, cb);
    };
    const received = new Promise<string>((resolve) => client.once("message", (topic) => resolve(topic)));
    setTimeout(() => {
      const tick = () => {
        turn++;
        if (turn < 5) setImmediate(tick);
      };
      setImmediate(tick);
      aedes.publish({ cmd: "publish", topic: "turn/t", payload: Buffer.from("x"), qos: 0, retain: false, dup: false }, () => {});
    }, 5);
    assert.equal(await received, "turn/t");
    return flushedAt;
  } finally {
    client.end(true);
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test("a routed delivery is flushed in the check phase aedes writes it in, not the next turn", async () => {
  assert.equal(await turnOfFlush(true), 1, "flushed in the first check phase after the publish");
  // the same broker without the routing sweep waits one turn: what this measures is real
  assert.equal(await turnOfFlush(false), 2, "without flushAfterRouting the batch leaves a turn later");
});
