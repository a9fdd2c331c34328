/** The Mosquitto reference target: a generated config, an ephemeral port, CPU and peak RSS from /proc. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import type { ProcessStats } from "./protocol.js";

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";

export function mosquittoInstalled(): boolean {
  return existsSync(MOSQUITTO_BIN);
}

export function mosquittoVersion(): string | null {
  if (!mosquittoInstalled()) return null;
  const out = spawnSync(MOSQUITTO_BIN, ["-h"], { encoding: "utf8" });
  const m = /mosquitto version (\S+)/.exec(`${out.stdout}${out.stderr}`);
  return m ? m[1]! : "unknown";
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export interface RunningMosquitto {
  port: number;
  pid: number;
  version: string;
  stats(): ProcessStats;
  stop(): Promise<void>;
}

let clockTicks = 0;
/** Kernel clock ticks per second (the unit of /proc CPU times). */
function clockTicksPerSec(): number {
  if (!clockTicks) {
    const n = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** CPU and peak RSS of another process, from /proc (Linux). */
export function procStats(pid: number): ProcessStats {
  // Fields after the command name (which may contain spaces) start at state: utime is field 14, stime 15.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  return { cpuSec: ticks / clockTicksPerSec(), rssMB: hwm ? Number(hwm[1]) / 1024 : 0 };
}

export async function startMosquitto(dir: string): Promise<RunningMosquitto> {
  if (!mosquittoInstalled()) throw new Error(`mosquitto is not installed at ${MOSQUITTO_BIN}`);
  const version = mosquittoVersion() ?? "unknown";
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const conf = join(dir, "mosquitto.conf");
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        "allow_anonymous true",
        "persistence false",
        // Like aedes, never drop a QoS 1 message for an online subscriber because of a queue cap.
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "",
      ].join("\n"),
    );
    const child: ChildProcess = spawn(MOSQUITTO_BIN, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    let exited = false;
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    child.once("exit", () => {
      exited = true;
      process.off("exit", killOnExit);
    });
    const deadline = Date.now() + 5000;
    while (!exited && Date.now() < deadline) {
      if (await accepts(port)) {
        const pid = child.pid!;
        return {
          port,
          pid,
          version,
          stats: () => procStats(pid),
          stop: () =>
            new Promise<void>((resolve) => {
              if (exited) return resolve();
              child.once("exit", () => resolve());
              child.kill("SIGTERM");
            }),
        };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!exited) child.kill("SIGKILL");
    lastError = stderr.trim() || "did not accept connections within 5 s";
  }
  throw new Error(`mosquitto failed to start: ${lastError}`);
}
