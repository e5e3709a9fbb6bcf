import { Option, type Command } from 'commander';
import { NOTE_KINDS, TOKEN_ENCODINGS, type Note, type TokenEncoding } from '../core/index.js';
import type { ContextReport } from '../context/index.js';
import { personaOf, positiveInt, sessionOf, userOf, type ContextOf } from './args.js';
import { clip, print, shortTime, table } from './output.js';

interface ContextFlags {
  session?: string;
  budget: number;
  reserve?: number;
  query?: string;
  system?: string;
  encoding?: TokenEncoding;
  memories?: boolean;
  summary?: boolean;
  notes?: boolean;
  persona?: boolean;
  report?: boolean;
  as?: string;
}

/** `memex context` and `memex note`: the window for a session's next model call, and the user's long-term notes. */
export function registerContextCommands(program: Command, contextOf: ContextOf): void {
  program
    .command('context')
    .description("assemble the messages to send a model for the session's next turn, fitted to a token budget")
    .option('-s, --session <id>', 'the session (default: the most recently active one)')
    .addOption(new Option('-b, --budget <tokens>', "the model's context length: window and reply together").argParser(positiveInt).default(8192))
    .addOption(new Option('--reserve <tokens>', 'tokens kept for the reply (default: context.replyTokens, 512)').argParser(positiveInt))
    .option('-q, --query <text>', 'what to recall memories for (default: the latest user turn)')
    .option('--system <text>', 'your system prompt, put before the persona')
    .addOption(new Option('--encoding <name>', 'tiktoken encoding to count in (default: context.encoding)').choices(TOKEN_ENCODINGS))
    .option('--no-memories', 'leave recalled memories out')
    .option('--no-summary', 'leave the summary of older turns out')
    .option('--no-notes', "leave the user's notes out")
    .option('--no-persona', "leave the session's persona out")
    .option('--as <persona>', "a panel's window for this participant (id or name): its persona and notes, the others' turns labelled")
    .option('--report', 'with --json: print {messages, report} instead of the messages alone')
    .addHelpText(
      'after',
      '\nWith --json, prints the messages array ready to send to a chat API.\n\nExamples:\n  memex context --budget 4096\n  memex context -s <session-id> -q "hotel budget" --system "You are a travel assistant."\n  memex --json context --budget 128000 > messages.json',
    )
    .action(async (flags: ContextFlags, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const sessionId = await sessionOf(memex, user, flags.session, false);
      const participant = flags.as === undefined ? undefined : (await personaOf(memex, user, flags.as)).id;
      const { messages, report } = await memex.buildContext(user, {
        sessionId,
        ...(participant !== undefined ? { participant } : {}),
        budget: flags.budget,
        ...(flags.reserve !== undefined ? { reserve: flags.reserve } : {}),
        ...(flags.query ? { query: flags.query } : {}),
        ...(flags.system ? { system: flags.system } : {}),
        ...(flags.encoding ? { encoding: flags.encoding } : {}),
        include: { memories: flags.memories !== false, summary: flags.summary !== false, notes: flags.notes !== false, persona: flags.persona !== false },
      });
      const shown = messages.map((m) => `── ${m.role} ──\n${typeof m.content === 'string' ? m.content : JSON.stringify(m.content ?? m.tool_calls)}`).join('\n\n');
      print(ctx.io, `${shown}\n\n${describeReport(report)}`, flags.report ? { messages, report } : messages);
    });

  const note = program.command('note').description("the user's long-term notes (pinned facts, preferences) that context windows include when they fit");

  note
    .command('add <text...>')
    .description('add a note')
    .addOption(new Option('--kind <kind>', 'what it is').choices(NOTE_KINDS).default('note'))
    .option('--unpinned', 'include it only after the pinned notes, when room is left')
    .action(async (words: string[], flags: { kind: Note['kind']; unpinned?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const added = await memex.notes.add(user, { text: words.join(' '), kind: flags.kind, pinned: !flags.unpinned });
      print(ctx.io, `Added note ${added.id}.`, added);
    });

  note
    .command('list')
    .description("list the user's notes, pinned first")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const notes = await memex.notes.list(user);
      const rows = [...notes]
        .sort((a, b) => Number(b.pinned) - Number(a.pinned))
        .map((n) => [n.id, n.kind, n.pinned ? 'yes' : 'no', shortTime(n.updatedAt), clip(n.text, 70)]);
      print(ctx.io, notes.length === 0 ? 'No notes yet: add one with `memex note add <text>`.' : table(['ID', 'KIND', 'PINNED', 'UPDATED', 'TEXT'], rows), notes);
    });

  note
    .command('rm <id>')
    .description('delete a note')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      await memex.notes.delete(user, id);
      print(ctx.io, `Deleted note ${id}.`, { deleted: id });
    });
}

function describeReport(report: ContextReport): string {
  const rows = (['system', 'notes', 'memories', 'summary', 'recent'] as const).map((part) => {
    const p = report.parts[part];
    return [part, String(p.tokens), part === 'system' ? '' : String(p.allotted), String(p.items)];
  });
  const lines = [
    table(['PART', 'TOKENS', 'ALLOTTED', 'ITEMS'], rows),
    `${report.tokens} of ${report.budget - report.reserve} tokens (${report.encoding}; budget ${report.budget} less ${report.reserve} for the reply), assembled in ${report.ms} ms.`,
    `Recent: ${report.recent.messages} of ${report.recent.total} turns.${report.summary ? ` Summary (${report.summary.method}) covers the ${report.summary.coveredMessages} turns before them.` : ''}`,
  ];
  if (report.query) lines.push(`Recalled for: ${clip(report.query.text, 80)} (${report.query.from === 'option' ? '--query' : 'the latest user turn'}).`);
  for (const memory of report.memories) {
    lines.push(`  memory ${memory.score.toFixed(3)} from session ${memory.sessionId}: ${clip(memory.text, 60)}`);
  }
  const left = report.left.map((l) => `${l.part}: ${l.count} ${l.reason}${l.message ? ` (${l.message})` : ''}`);
  if (left.length > 0) lines.push(`Left out: ${left.join('; ')}.`);
  return lines.join('\n');
}
