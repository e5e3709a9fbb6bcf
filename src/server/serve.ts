import type { Memex } from '../index.js';
import type { AddressInfo } from 'node:net';
import { buildApp, type App, type AppOptions } from './app.js';
import { newLocalSecret, removeServerFile, writeServerFile } from './announce.js';

export interface ServeOptions extends AppOptions {
  host?: string;
  port?: number;
  /** Stop on SIGINT and SIGTERM (default true): finish requests in flight, then close the data dir. */
  handleSignals?: boolean;
  /** Called once the server has stopped (after a signal, or `stop()`). */
  onStopped?: () => void;
  /**
   * Write `<dataDir>/server.json` (default true): the URL and a local-admin secret, so that the CLI
   * on this machine works beside the server (over HTTP) instead of waiting for the data dir's lock.
   */
  announce?: boolean;
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
  const announce = options.announce ?? true;
  const localSecret = options.localSecret ?? (announce ? newLocalSecret() : undefined);
  const app = await buildApp(memex, { ...options, ...(localSecret !== undefined ? { localSecret } : {}) });
  const host = options.host ?? options.server?.host ?? memex.config.server.host;
  const port = options.port ?? options.server?.port ?? memex.config.server.port;
  const url = await app.listen({ host, port });
  if (announce && localSecret !== undefined) {
    // A server that cannot announce itself stops listening again, rather than run on unseen (it hung).
    await writeServerFile(memex.config.dataDir, { url: loopbackUrl(app, url), secret: localSecret }).catch(async (error: unknown) => {
      await app.close();
      throw error;
    });
  }
  let stopping: Promise<void> | null = null;
  const onSignal = (): void => void stop();
  function stop(): Promise<void> {
    stopping ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // First, so a CLI started now waits for the data dir's lock rather than calling a server that is going.
      if (announce && localSecret !== undefined) await removeServerFile(memex.config.dataDir, localSecret);
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

/** The address the local CLI calls: loopback when the server listens on every interface. */
function loopbackUrl(app: App, fallback: string): string {
  const address: AddressInfo | string | null = app.server.address();
  if (address === null || typeof address === 'string') return fallback;
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const host = wildcard ? (address.family === 'IPv6' ? '[::1]' : '127.0.0.1') : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
