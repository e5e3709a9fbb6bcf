import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { MemexError } from '../core/index.js';
import type { App } from './app.js';

/**
 * The page may load only its own script, stylesheet and API: no inline script, no other origin.
 * Images are the API's thumbnails, read as blobs (the key travels in a header, not a URL).
 */
export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

interface WebAssets {
  index: Buffer;
  assets: Map<string, { bytes: Buffer; type: string }>;
}

/** The built page (scripts/build-web.mjs), beside the compiled server or, when run from source, in dist/. */
function loadAssets(): WebAssets | null {
  for (const url of ['../web/', '../../dist/web/']) {
    const dir = fileURLToPath(new URL(url, import.meta.url));
    const manifestFile = join(dir, 'manifest.json');
    if (!existsSync(manifestFile)) continue;
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { v: number; assets: string[] };
    const assets = new Map<string, { bytes: Buffer; type: string }>();
    for (const name of manifest.assets) {
      const type = TYPES[name.split('.').pop() ?? ''];
      if (type) assets.set(name, { bytes: readFileSync(join(dir, 'assets', name)), type });
    }
    return { index: readFileSync(join(dir, 'index.html')), assets };
  }
  return null;
}

/**
 * The web session browser at `/`: a page over the public API (web/src). Its assets are named by
 * their hash and cached for good; the page itself is revalidated, so a new build shows at once.
 */
export function webRoutes(app: App): void {
  const web = loadAssets();
  const config = { public: true };
  const headers = {
    'content-security-policy': WEB_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };

  app.get('/', { config, schema: { hide: true } }, async (_request, reply) => {
    if (!web) throw new MemexError('MEMEX_ROUTE_NOT_FOUND', 'the web page is not built: run `npm run build` in the memex folder (the API is at /v1)');
    return reply.headers({ ...headers, 'cache-control': 'no-cache' }).type('text/html; charset=utf-8').send(web.index);
  });

  app.get<{ Params: { name: string } }>('/assets/:name', { config, schema: { hide: true } }, async (request, reply) => {
    const asset = web?.assets.get(request.params.name);
    if (!asset) throw new MemexError('MEMEX_ROUTE_NOT_FOUND', `no asset ${request.params.name}`);
    return reply.headers({ ...headers, 'cache-control': 'public, max-age=31536000, immutable' }).type(asset.type).send(asset.bytes);
  });
}
