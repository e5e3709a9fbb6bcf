import type { Memex } from '../index.js';
import { buildApp, type App, type AppOptions } from './app.js';

export interface ServeOptions extends AppOptions {
  host?: string;
  port?: number;
  /** Stop on SIGINT and SIGTERM (default true): finish requests in flight, then close the data dir. */
  handleSignals?: boolean;
  /** Called once the server has stopped (after a signal, or `stop()`). */
  onStopped?: () => void;
}

export interface RunningServer {
  app: App;
  /** Where it listens, e.g. `http://127.0.0.1:8420`. */
  url: string;
  /**
   * Graceful stop: no new connections; requests in flight finish (appends are durable when they
   * answer); a running ingest job is interrupted and runs again on the next start; then the data
   * dir is closed, after every appended message is embedded.
   */
  stop(): Promise<void>;
}

/** Starts the HTTP service on a Memex instance (loopback by default: `memex.config.server.host`). */
export async function serve(memex: Memex, options: ServeOptions = {}): Promise<RunningServer> {
  const app = await buildApp(memex, options);
  const host = options.host ?? options.server?.host ?? memex.config.server.host;
  const port = options.port ?? options.server?.port ?? memex.config.server.port;
  const url = await app.listen({ host, port });
  let stopping: Promise<void> | null = null;
  const onSignal = (): void => void stop();
  function stop(): Promise<void> {
    stopping ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      try {
        await app.close();
      } finally {
        await memex.close();
        options.onStopped?.();
      }
    })();
    return stopping;
  }
  if (options.handleSignals ?? true) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { app, url, stop };
}
