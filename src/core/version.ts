import { readFileSync } from 'node:fs';

/** Memex's version, from its package.json (the same path from src/core and dist/core). */
export function memexVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
