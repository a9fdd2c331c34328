/**
 * WASMQ_BENCH_HEAPPROF=dir: a sampling allocation profile of each broker run
 * in a Node target, written to dir as <target>-<n>.heapprofile (open it in
 * Chrome DevTools' Memory tab, or sum it by function). Unlike `--heap-prof`,
 * which keeps only what is still alive at the end, it keeps the objects
 * collected since, so it shows where the garbage per message comes from.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

let session: Session | null = null;
let runs = 0;

function post(method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => session!.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
}

export async function startHeapSampling(): Promise<void> {
  if (!process.env.WASMQ_BENCH_HEAPPROF) return;
  if (!session) {
    session = new Session();
    session.connect();
  }
  await post("HeapProfiler.startSampling", { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}

export async function stopHeapSampling(target: string): Promise<void> {
  const dir = process.env.WASMQ_BENCH_HEAPPROF;
  if (!dir || !session) return;
  const { profile } = (await post("HeapProfiler.stopSampling")) as { profile: unknown };
  writeFileSync(join(dir, `${target}-${++runs}.heapprofile`), JSON.stringify(profile));
}
