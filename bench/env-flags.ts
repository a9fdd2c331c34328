/** Node flags from an environment variable (WASMQ_BENCH_GEN_ARGS, _NODE_ARGS, _TARGET_ARGS), split on any whitespace. */
export function envNodeFlags(variable: string): string[] {
  return (process.env[variable] ?? "").split(/\s+/).filter(Boolean);
}
