// `wasmq scram credential USER`: one entry of the scram plugin's `users`, from a
// password read from standard input (never from the command line, where `ps`
// and the shell history would show it). On a terminal it is asked for without
// echo. The password is prepared with SASLprep (credentials.ts).
import { parseArgs } from "node:util";
import { CredentialError, deriveCredentials, MAX_ITERATIONS, MIN_ITERATIONS } from "./credentials.js";

export const SCRAM_HELP = `wasmq scram — SCRAM-SHA-256 credentials for the scram plugin

Usage:
  wasmq scram credential USER [--iterations N]

Reads the password from standard input (its first line; on a terminal it is
asked for without echo), prepares it with SASLprep (RFC 4013) and prints the
entry for the scram plugin's "users" as JSON: username, a random 16-byte salt,
iterations, StoredKey and ServerKey. The broker never stores the password.

  printf '%s\\n' "$PASSWORD" | wasmq scram credential alice --iterations 100000

Options:
      --iterations N   PBKDF2 iterations, ${MIN_ITERATIONS} (the default, RFC 7677's minimum) to ${MAX_ITERATIONS}
  -h, --help           show this help

Exit status: 0 done, 2 bad usage or a refused username/password (the reason is printed).`;

export class ScramCliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** The first line of `input` (without its line ending). */
async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of input) {
    text += String(chunk);
    const end = text.search(/\r?\n/);
    if (end >= 0) return text.slice(0, end);
  }
  return text;
}

/** Asks on the terminal with echo off (raw mode), the way passwd does. */
function askWithoutEcho(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let typed = "";
    stdin.setRawMode(true);
    stdin.setEncoding("utf8");
    stdin.resume();
    const done = (err: Error | null) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === "\r" || ch === "\n") return done(null);
        if (ch === "\u0003") return done(new ScramCliError("interrupted", 130));
        if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on("data", onData);
  });
}

export async function runScramCli(argv: string[], input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  if (argv[0] === undefined || argv[0] === "-h" || argv[0] === "--help" || argv[0] === "help") return SCRAM_HELP;
  if (argv[0] !== "credential") throw new ScramCliError(`unknown command "${argv[0]}" (expected "credential"); "wasmq scram --help" explains`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(1), options: { iterations: { type: "string" }, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ScramCliError(`${(err as Error).message}; "wasmq scram --help" explains`);
  }
  if (parsed.values.help) return SCRAM_HELP;
  if (parsed.positionals.length !== 1) throw new ScramCliError("credential: expected one USER argument");
  const username = parsed.positionals[0]!;
  const iterations = parsed.values.iterations === undefined ? MIN_ITERATIONS : Number(parsed.values.iterations);
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new ScramCliError(`--iterations: expected an integer from ${MIN_ITERATIONS} to ${MAX_ITERATIONS}, got "${parsed.values.iterations}"`);
  }
  const tty = input === process.stdin && process.stdin.isTTY === true;
  const password = tty ? await askWithoutEcho(`Password for ${username}: `) : await readFirstLine(input);
  try {
    return JSON.stringify(deriveCredentials(username, password, iterations));
  } catch (err) {
    if (err instanceof CredentialError) throw new ScramCliError(`credential: ${err.message}`);
    throw err;
  }
}
