#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build`, which `npm ci` / `npm install` run through `prepare`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('memex: the CLI is not built yet (dist/ is missing). Run `npm run build` in the memex folder, then try again.\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
