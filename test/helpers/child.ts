/** Node arguments that run `code` (an ES module body) with TypeScript sources loaded through tsx. */
export function tsxEval(code: string): string[] {
  return ['--import', 'tsx', '--input-type=module', '-e', code];
}
