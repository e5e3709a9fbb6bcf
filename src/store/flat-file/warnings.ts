import type { StoreWarning } from '../store.js';

/** One line saying what a warning means, for logs and the CLI. */
export function describeWarning(warning: StoreWarning): string {
  switch (warning.kind) {
    case 'torn-line-repaired':
      return `repaired a torn last line in ${warning.path} (${warning.bytes} bytes ${warning.kept ? 'kept' : `saved to ${warning.savedTo}`})`;
    case 'counts-reconciled':
      return `recounted ${warning.path} from its message log (${warning.messageCount} messages)`;
    case 'session-index-rebuilt':
      return `rebuilt the session listing of user ${warning.userId} (${warning.reason})`;
    case 'unreadable':
      return `cannot read ${warning.path}: ${warning.code}: ${warning.message}`;
    case 'vectors-reconciled':
      return `reconciled ${warning.path} with embeddings.npy (${warning.reason}); kept ${warning.rows} rows, the rest are embedded again`;
    case 'corrupt-lines-skipped':
      return `skipped ${warning.lines.length} line(s) of ${warning.path} that are not messages (line ${warning.lines.slice(0, 5).join(', ')}${warning.lines.length > 5 ? ', …' : ''}: ${warning.reason}); the rest of the session reads on; \`memex doctor\` moves them to a quarantine file`;
  }
}

export function defaultWarn(warning: StoreWarning): void {
  process.emitWarning(describeWarning(warning), { code: 'MEMEX_STORE' });
}
