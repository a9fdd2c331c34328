// `npm run fuzz`: the full hostile-input run (100,000 packets by default; CI runs
// a reduced count in test/fuzz.test.ts). Prints a report and exits non-zero when
// the broker died, dropped the probe or its memory did not come back.
//   npm run fuzz                      100,000 packets, seed from the clock
//   npm run fuzz -- 250000 1234       packet count and seed
import { checkSession, formatReport } from "./report.js";
import { runFuzzSession } from "./session.js";

const packets = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
if (!Number.isInteger(packets) || packets <= 0 || !Number.isInteger(seed)) {
  process.stderr.write("usage: npm run fuzz -- [PACKETS] [SEED]\n");
  process.exit(2);
}

process.stdout.write(`fuzzing the broker with ${packets} packets, seed ${seed}\n`);
const result = await runFuzzSession({ packets, seed, onProgress: (n) => process.stdout.write(`  ${n} malformed packets written\n`) });
process.stdout.write(`${formatReport(result, seed)}\n`);
const problems = checkSession(result);
if (problems.length) {
  process.stdout.write(`FAILED:\n${problems.map((p) => `  - ${p}`).join("\n")}\n`);
  process.exit(1);
}
process.stdout.write("OK: the broker stayed up, served the probe throughout, and its heap came back.\n");
