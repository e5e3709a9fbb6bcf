import { Option, type Command } from 'commander';
import { MemexError, parseId } from '../core/index.js';
import type { ApiKeyInfo } from '../server/index.js';
import { openConfiguredKeys, type ApiKeyStore } from '../store/index.js';
import { positiveInt, type ContextOf } from './args.js';
import { print, shortTime, table } from './output.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const;
/** The user a first start makes a key for: the CLI's own default user. */
const FIRST_USER = 'default';

/** `memex serve` (the HTTP service) and `memex keys` (its API keys). */
export function registerServerCommands(program: Command, contextOf: ContextOf): void {
  program
    .command('serve')
    .description('run the HTTP service on this data dir (see /v1/openapi.json); Ctrl-C stops it gracefully')
    .option('--host <host>', 'address to listen on (default: server.host, 127.0.0.1: this machine only)')
    .addOption(new Option('--port <port>', 'port (default: server.port, 8420; 0 picks a free one)').argParser(positiveInt))
    .option('--trust-user-header', 'take the user from X-User-ID without a key: only behind a gateway that authenticates users and sets it')
    .addOption(new Option('--log-level <level>', 'request log level (JSON lines on stdout)').choices(LOG_LEVELS).default('info'))
    .action(async (options: { host?: string; port?: number; trustUserHeader?: boolean; logLevel: (typeof LOG_LEVELS)[number] }, command: Command) => {
      const ctx = contextOf(command);
      const memex = await ctx.library();
      // Loading the model now makes the first request as fast as the rest (and a broken model fails here).
      const embedder = await memex.embedder();
      const keys = memex.keys;
      // The server (fastify and its plugins) loads only for `serve`: every other command starts without it.
      const { serve } = await import('../server/index.js');
      const stopped = new Promise<void>((resolve) => {
        void serve(memex, {
          keys,
          logger: { level: options.logLevel },
          server: {
            ...(options.host !== undefined ? { host: options.host } : {}),
            ...(options.port !== undefined ? { port: options.port } : {}),
            ...(options.trustUserHeader ? { trustUserHeader: true } : {}),
          },
          onStopped: resolve,
        }).then(async (server) => {
          const trusted = options.trustUserHeader ?? memex.config.server.trustUserHeader;
          ctx.io.err.write(`memex: listening on ${server.url} (data dir ${memex.config.dataDir}, model ${embedder.modelId}); API at ${server.url}/v1, OpenAPI at ${server.url}/v1/openapi.json, the web page at ${server.url}/\n`);
          if (trusted) ctx.io.err.write('memex: trusting X-User-ID headers: every client that reaches this port can act as any user\n');
          else {
            // A bad key file must not take the server down: say so, and key requests answer 503 until it is fixed.
            const live = await keys.hasLiveKeys().catch((error: unknown) => {
              ctx.io.err.write(`memex: warning: ${(error as Error).message}; requests with API keys answer 503 MEMEX_KEYS_UNREADABLE until it is fixed (restore it, or move it aside and \`memex keys create\`)\n`);
              return true;
            });
            if (!live) {
              // The first start makes the first key, so `npm ci && npm start` is enough to make a call.
              // It is shown once, here, to whoever started the server; only its hash is kept.
              try {
                const { key } = await keys.create(FIRST_USER, 'made on the first start');
                ctx.io.err.write(
                  `memex: no API keys yet, so here is one for user \`${FIRST_USER}\` (shown only now; more with \`memex keys create --user <id>\`):\n\n  ${key}\n\n` +
                    `  curl -H 'Authorization: Bearer ${key}' ${server.url}/v1/me\n\n` +
                    `  or open ${server.url}/ in a browser and sign in with it.\n\n`,
                );
              } catch (error) {
                ctx.io.err.write(`memex: warning: cannot make a first API key (${(error as Error).message}); create one with \`memex keys create\`\n`);
              }
            }
          }
        }, (error: unknown) => {
          resolve();
          ctx.io.err.write(`memex: cannot listen: ${(error as Error).message}\n`);
          ctx.setExitCode(1);
        });
      });
      await stopped;
    });

  const keys = program.command('keys').description('API keys for the HTTP service: one user each, stored hashed');
  keys
    .command('create')
    .description('make a key for the user (--user); it is printed once, keep it')
    .option('--name <name>', 'what the key is for (shown by `keys list`)')
    .option('--admin', 'the key may also manage users over HTTP (/v1/users)')
    .action(async (options: { name?: string; admin?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const userId = parseId('user', ctx.user);
      const { key, info } = await withKeys(ctx.config(), (store) => store.create(userId, options.name, { admin: options.admin ?? false }));
      const human = [`API key for user ${userId} (id ${info.id}); it is shown only now:`, '', `  ${key}`, '', `Send it as: Authorization: Bearer ${key.slice(0, 12)}…`].join('\n');
      print(ctx.io, human, { key, ...info });
    });
  keys
    .command('list')
    .description("list keys (all users' with --all, else the user's), without their secrets")
    .option('--all', "every user's keys")
    .action(async (options: { all?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const { list, others } = await withKeys(ctx.config(), async (store) => {
        const listed = await store.list(options.all ? undefined : ctx.user);
        return { list: listed, others: listed.length === 0 && !options.all ? (await store.list()).length : 0 };
      });
      const rows = list.map((k: ApiKeyInfo) => [k.id, k.userId, k.name ?? '', shortTime(k.createdAt), (k.revokedAt ? `revoked ${shortTime(k.revokedAt)}` : 'live') + (k.admin ? ', admin' : '')]);
      let none = 'No API keys. Create one with `memex keys create --user <id>`.';
      if (others > 0) none = `No API keys for user ${ctx.user}; ${others} key${others === 1 ? '' : 's'} of other users (see \`memex keys list --all\`). Create one with \`memex keys create --user ${ctx.user}\`.`;
      print(ctx.io, list.length ? table(['ID', 'USER', 'NAME', 'CREATED', 'STATE'], rows) : none, list);
    });
  keys
    .command('revoke <id>')
    .description('revoke a key (by its id, or the key itself); a running server refuses it within a second')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(command);
      if (id.trim() === '') throw new MemexError('MEMEX_USAGE', 'name the key to revoke by its id (see `memex keys list`)');
      const info = await withKeys(ctx.config(), (store) => store.revoke(id.trim()));
      print(ctx.io, `Revoked key ${info.id} of user ${info.userId}`, info);
    });
}

/** Runs `fn` on the keys the config names (the data dir's file, or the database's table). */
async function withKeys<T>(config: Parameters<typeof openConfiguredKeys>[0], fn: (keys: ApiKeyStore) => Promise<T>): Promise<T> {
  const opened = await openConfiguredKeys(config);
  try {
    return await fn(opened.keys);
  } finally {
    await opened.close();
  }
}
