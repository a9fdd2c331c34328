/** The Mosquitto reference target: a generated config, an ephemeral port, CPU and peak RSS from /proc. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accepts, freePort } from "./ports.js";
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

/**
 * Starts Mosquitto on the config `lines` (written to `conf`) and resolves once
 * `port` accepts TCP connections; rejects with Mosquitto's stderr when it exits
 * first or does not listen within 5 s (it is killed then). The child is killed
 * if this process exits while it runs. The bench's reference target and the
 * bridge tests' upstream both start Mosquitto this way.
 */
export async function spawnMosquitto(conf: string, lines: string[], port: number): Promise<ChildProcess> {
  writeFileSync(conf, [...lines, ""].join("\n"));
  const child = spawn(MOSQUITTO_BIN, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.off("exit", killOnExit));
  const deadline = Date.now() + 5000;
  while (!hasExited(child) && Date.now() < deadline) {
    if (await accepts(port)) return child;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (hasExited(child)) throw new Error(`mosquitto exited: ${stderr.trim()}`);
  child.kill("SIGKILL");
  throw new Error(`mosquitto did not listen on ${port} within 5 s: ${stderr.trim()}`);
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
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
    const lines = [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      // Like aedes, never drop a QoS 1 message for an online subscriber because of a queue cap.
      "max_queued_messages 1000000",
      "max_queued_bytes 0",
      "set_tcp_nodelay true",
      "log_dest stderr",
      "log_type error",
    ];
    let child: ChildProcess;
    try {
      child = await spawnMosquitto(join(dir, "mosquitto.conf"), lines, port);
    } catch (err) {
      lastError = (err as Error).message; // e.g. the port was taken meanwhile: try another
      continue;
    }
    const pid = child.pid!;
    return {
      port,
      pid,
      version,
      stats: () => procStats(pid),
      stop: () =>
        new Promise<void>((resolve) => {
          if (hasExited(child)) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    };
  }
  throw new Error(`mosquitto failed to start: ${lastError}`);
}
