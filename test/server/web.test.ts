import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_CSP } from '../../src/server/web.js';
import { expectProblem, served, type Served } from './setup.js';

// Serving the built page (dist/web, made by `npm run build`); the page itself is tested in
// Chromium (test/web/browser.test.ts). These run where no browser can.
describe('the web page at /', () => {
  let s: Served;
  beforeAll(async () => {
    s = await served();
  });
  afterAll(async () => {
    await s.close();
  });

  it('serves the page without a key, with a strict CSP and no inline script', async () => {
    const page = await s.app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(WEB_CSP);
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.body).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  it('serves its hashed assets for good, and nothing else from /assets', async () => {
    const page = await s.app.inject({ url: '/' });
    const assets = [...page.body.matchAll(/(?:src|href)="\/assets\/(app-[A-Z0-9]+\.(js|css))"/g)];
    expect(assets.map((m) => m[2]).sort()).toEqual(['css', 'js']);
    for (const [, name, ext] of assets) {
      const asset = await s.app.inject({ url: `/assets/${name}` });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['content-type']).toBe(ext === 'js' ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
      expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    for (const url of ['/assets/manifest.json', '/assets/..%2Fmanifest.json', '/assets/..%2F..%2F..%2Fpackage.json', '/assets/app-NOPE.js']) {
      expectProblem(await s.app.inject({ url }), 404, 'MEMEX_ROUTE_NOT_FOUND');
    }
  });

  it('is not part of the API: the OpenAPI document leaves it out, and /v1 still needs a key', async () => {
    const doc = JSON.parse((await s.app.inject({ url: '/v1/openapi.json' })).body) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((path) => !path.startsWith('/v1') && path !== '/mcp')).toEqual([]);
    expectProblem(await s.app.inject({ url: '/v1/me' }), 401, 'MEMEX_UNAUTHORIZED');
  });
});
