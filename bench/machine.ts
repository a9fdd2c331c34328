/** What machine a result came from: printed with every run and written into the JSON. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg, release, totalmem, type as osType } from "node:os";
import { mosquittoVersion } from "./mosquitto.js";
import { ROOT } from "./plugins.js";

/** aedes does not export its package.json, so read it from the tree. */
export function aedesVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, "node_modules/aedes/package.json"), "utf8")) as { version: string }).version;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGB: number;
  os: string;
  node: string;
  aedes: string;
  mosquitto: string | null;
  loadAvg1m: number;
  date: string;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? "unknown",
    cores: c.length,
    memoryGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${osType()} ${release()}`,
    node: process.version,
    aedes: aedesVersion(),
    mosquitto: mosquittoVersion(),
    loadAvg1m: Math.round(loadavg()[0]! * 100) / 100,
    date: new Date().toISOString(),
  };
}

export function describeMachine(m: MachineInfo): string {
  return `${m.date} · ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB · ${m.os} · Node ${m.node} · aedes ${m.aedes} · mosquitto ${m.mosquitto ?? "not installed"} · load ${m.loadAvg1m}`;
}
