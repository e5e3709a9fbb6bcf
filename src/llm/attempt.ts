import { MemexError } from '../core/index.js';

/**
 * One HTTP attempt's cancellation: its own AbortController, aborted by the caller's signal, by a
 * timer (the first-byte timeout, then the idle timeout between reads) or by `close` once the
 * reply is no longer wanted. Aborting it cancels the fetch, so the upstream sees the connection go.
 * `failure` turns whatever the fetch or a read threw into the coded error that says why.
 */
export class Attempt {
  readonly controller = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private timedOut: { phase: 'first-byte' | 'idle'; ms: number } | null = null;
  private readonly onAbort: () => void;

  constructor(private readonly caller: AbortSignal | undefined) {
    this.onAbort = () => this.controller.abort(caller?.reason);
    caller?.addEventListener('abort', this.onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Starts (or restarts) the timer: the next byte must come within `ms`. */
  arm(phase: 'first-byte' | 'idle', ms: number): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timedOut = { phase, ms };
      this.controller.abort(new Error(`no reply within ${ms} ms`));
    }, ms);
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Stops listening and cancels the request if it is still open (harmless once it has ended). */
  close(): void {
    this.disarm();
    this.caller?.removeEventListener('abort', this.onAbort);
    if (!this.controller.signal.aborted) this.controller.abort(new Error('the reply is no longer read'));
  }

  /** The coded error for something the fetch or a read threw: cancelled, timed out, or the connection failed. */
  failure(cause: unknown, doing: string): MemexError {
    if (cause instanceof MemexError) return cause;
    if (this.caller?.aborted) return aborted(this.caller);
    if (this.timedOut) {
      const { phase, ms } = this.timedOut;
      const what = phase === 'first-byte' ? `no reply within llm.timeoutMs (${ms} ms)` : `no streamed chunk for llm.idleTimeoutMs (${ms} ms)`;
      return new MemexError('MEMEX_LLM_TIMEOUT', `the chat model timed out ${doing}: ${what}`, { cause, details: { phase, timeoutMs: ms } });
    }
    return new MemexError('MEMEX_LLM_UNAVAILABLE', `the chat model's server failed ${doing}: ${describe(cause)}`, { cause });
  }

  /** True when the failure was a connection error that may be retried (not a timeout, not the caller). */
  retryable(): boolean {
    return !this.caller?.aborted && this.timedOut === null;
  }
}

export function aborted(signal: AbortSignal): MemexError {
  return new MemexError('MEMEX_ABORTED', 'the chat model call was cancelled', { cause: signal.reason });
}

/** undici hides the reason (ECONNREFUSED, "other side closed") in `cause`. */
function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const inner = cause.cause instanceof Error ? `: ${(cause.cause as NodeJS.ErrnoException).code ?? cause.cause.message}` : '';
  return `${cause.message}${inner}`;
}

/** Waits `ms`, or rejects with MEMEX_ABORTED as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
