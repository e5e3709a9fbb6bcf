import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { MemexError, type ChatInput } from '../core/index.js';
import type { ChatError } from '../chat/index.js';
import { personaOf, positiveInt, userOf, type ContextOf } from './args.js';

interface ChatFlags {
  session?: string;
  persona?: string;
  budget?: number;
  system?: string;
  message?: string;
}

/** `memex chat`: a terminal chat with the configured model and the user's memory. */
export function registerChatCommand(program: Command, contextOf: ContextOf): void {
  program
    .command('chat')
    .description('chat with the configured model (llm.baseUrl), with memories recalled from all your sessions; replies stream and both turns are stored')
    .option('-s, --session <id>', 'continue this session (default: start a new one)')
    .option('-p, --persona <id or name>', "a new session's persona (for --session: these turns' persona)")
    .addOption(new Option('-b, --budget <tokens>', "the model's context length: window and reply together (default: llm.contextTokens)").argParser(positiveInt))
    .option('--system <text>', 'your system prompt, put before the persona')
    .option('-m, --message <text>', 'send one message, print the reply and exit')
    .addHelpText(
      'after',
      '\nInteractive: type a message and press Enter; Ctrl-C stops a reply (what came is kept), Ctrl-D or /exit ends.\nWith --json, prints each event (session, context, delta, done, error) as one JSON object per line.\n\nExamples:\n  MEMEX_LLM_BASE_URL=http://127.0.0.1:11434/v1 MEMEX_LLM_MODEL=llama3.2 memex chat\n  memex chat -m "What did we decide about the hotel?" --session <id>\n  memex --json chat -m "hello" | jq -c .type',
    )
    .action(async (flags: ChatFlags, command: Command) => {
      const ctx = contextOf(command);
      const { io } = ctx;
      const { memex, user } = await userOf(ctx);
      const personaId = flags.persona !== undefined ? (await personaOf(memex, user, flags.persona)).id : undefined;
      let sessionId = flags.session;
      const interactive = flags.message === undefined;

      /** One turn, printed as it streams; the error it ended with, if any. */
      const turn = async (text: string, signal?: AbortSignal): Promise<ChatError | null> => {
        const input: ChatInput & { signal?: AbortSignal } = {
          text,
          ...(sessionId !== undefined ? { sessionId } : {}),
          ...(personaId !== undefined ? { personaId } : {}),
          ...(flags.budget !== undefined ? { budget: flags.budget } : {}),
          ...(flags.system !== undefined ? { system: flags.system } : {}),
          ...(signal ? { signal } : {}),
        };
        let failed: ChatError | null = null;
        let wrote = false;
        for await (const event of memex.chat(user, input)) {
          if (io.json) io.out.write(`${JSON.stringify(event)}\n`);
          switch (event.type) {
            case 'session':
              sessionId = event.session.id;
              if (event.created && !io.json) io.err.write(`(session ${event.session.id})\n`);
              break;
            case 'delta':
              if (!io.json) io.out.write(event.text);
              wrote = true;
              break;
            case 'done':
              if (!io.json) io.out.write(wrote ? '\n' : '(empty reply)\n');
              break;
            case 'error':
              failed = event.error;
              if (!io.json && wrote) io.out.write('\n');
              break;
            case 'context':
              break;
          }
        }
        return failed;
      };
      const asError = (error: ChatError): MemexError => new MemexError(error.code, error.message, { details: error.details });

      if (!interactive) {
        const failed = await turn(flags.message ?? '');
        if (failed) throw asError(failed);
        return;
      }

      const terminal = process.stdin.isTTY && !io.json;
      const lines = createInterface({ input: process.stdin, output: terminal ? io.out : undefined, terminal, prompt: 'you> ' });
      let current: AbortController | null = null;
      // Ctrl-C stops the reply being streamed (its partial text is kept); at the prompt it ends the chat.
      lines.on('SIGINT', () => {
        if (current) current.abort();
        else lines.close();
      });
      if (terminal) io.err.write('Chatting with memory. Ctrl-C stops a reply; Ctrl-D or /exit ends.\n');
      if (terminal) lines.prompt();
      for await (const raw of lines) {
        const text = raw.trim();
        if (text === '/exit' || text === '/quit') break;
        if (text !== '') {
          current = new AbortController();
          try {
            const failed = await turn(text, current.signal);
            if (failed) {
              ctx.setExitCode(1);
              if (!io.json) io.err.write(`memex: ${failed.code}: ${failed.message}\n`);
            }
          } catch (cause) {
            // A refusal (no model, an unknown session) stops here as any command's error does.
            lines.close();
            throw cause;
          } finally {
            current = null;
          }
        }
        if (terminal) lines.prompt();
      }
      lines.close();
    });
}
