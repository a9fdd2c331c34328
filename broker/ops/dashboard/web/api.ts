/**
 * Talking to the admin API. The token (when the broker has one) lives in
 * sessionStorage and travels only in the Authorization header — never in a URL
 * or a cookie, so another site cannot make the browser send it. Every request
 * that changes something also carries X-Wasmq-Request: 1, a header a
 * cross-site form cannot set and a cross-site fetch cannot send without a
 * preflight the server refuses.
 */
const TOKEN_KEY = "wasmq.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, t);
}

function headers(method: string, extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { ...extra };
  const t = token();
  if (t) out.authorization = `Bearer ${t}`;
  if (method !== "GET" && method !== "HEAD") out["x-wasmq-request"] = "1";
  return out;
}

/** Listeners for a 401 anywhere: the page goes back to its login form. */
const unauthorized = new Set<() => void>();
export function onUnauthorized(fn: () => void): void {
  unauthorized.add(fn);
}

export async function request(method: string, path: string, body?: BodyInit, contentType?: string): Promise<Response> {
  const res = await fetch(path, {
    method,
    headers: headers(method, contentType ? { "content-type": contentType } : {}),
    credentials: "omit",
    cache: "no-store",
    ...(body !== undefined ? { body } : {}),
  });
  if (res.status === 401) for (const fn of unauthorized) fn();
  return res;
}

export async function json<T>(method: string, path: string, body?: BodyInit, contentType?: string): Promise<T> {
  const res = await request(method, path, body, contentType);
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(res.status, `${method} ${path}: answered ${res.status} with non-JSON`);
  }
  if (!res.ok) throw new ApiError(res.status, (data as { error?: string } | null)?.error ?? `${method} ${path}: ${res.status}`);
  return data as T;
}

export const get = <T>(path: string) => json<T>("GET", path);
export const post = <T>(path: string, body?: BodyInit, type?: string) => json<T>("POST", path, body, type);
export const del = <T>(path: string) => json<T>("DELETE", path);

export interface StreamHandle {
  close(): void;
}

/**
 * Read a text/event-stream with fetch (an EventSource cannot send the
 * Authorization header). Reconnects after a pause until closed.
 */
export function stream(path: string, onEvent: (event: string, data: unknown) => void, onState?: (up: boolean) => void): StreamHandle {
  let closed = false;
  let controller: AbortController | null = null;
  const run = async () => {
    while (!closed) {
      controller = new AbortController();
      try {
        const res = await fetch(path, { headers: headers("GET"), credentials: "omit", cache: "no-store", signal: controller.signal });
        if (res.status === 401) {
          for (const fn of unauthorized) fn();
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        onState?.(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end: number;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let event = "message";
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (data.length) {
              try {
                onEvent(event, JSON.parse(data.join("\n")));
              } catch (err) {
                console.error("bad event", err);
              }
            }
          }
        }
      } catch (err) {
        if (closed) return;
      }
      onState?.(false);
      if (!closed) await new Promise((r) => setTimeout(r, 2000));
    }
  };
  void run();
  return {
    close() {
      closed = true;
      controller?.abort();
    },
  };
}
