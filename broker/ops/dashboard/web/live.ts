/** The page's one live feed, shared by every view: samples, history, client changes. */
import type { Sample } from "../sample.js";
import { stream, type StreamHandle } from "./api.js";

export type { Sample };

type Listener = (data: unknown) => void;

export class LiveHub {
  readonly samples: Sample[] = [];
  private readonly listeners = new Map<string, Set<Listener>>();
  private handle: StreamHandle | null = null;

  start(onState: (up: boolean) => void): void {
    this.handle = stream(
      "/dashboard/api/live",
      (event, data) => {
        if (event === "history") {
          this.samples.length = 0;
          this.samples.push(...(data as { samples: Sample[] }).samples);
        } else if (event === "sample") {
          this.samples.push(data as Sample);
          if (this.samples.length > 900) this.samples.shift();
        }
        for (const fn of this.listeners.get(event) ?? []) fn(data);
      },
      onState,
    );
  }

  on(event: string, fn: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  stop(): void {
    this.handle?.close();
    this.handle = null;
  }
}

export interface PageContext {
  live: LiveHub;
}

export interface Page {
  id: string;
  title: string;
  /** Render into root; returns what to do when the page is left. */
  mount(root: HTMLElement, ctx: PageContext): () => void;
}
