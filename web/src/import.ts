import { events, problemText, upload } from './api.js';
import { h, replace } from './dom.js';
import type { View } from './router.js';

interface ImportJob {
  id: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  progress: { phase: 'scan' | 'store' | 'embed'; done: number; total: number | null; messages: number } | null;
  report: { conversations: { sessionId: string; title: string | null; action: 'added' | 'updated' | 'unchanged'; newMessages: number }[] } | null;
  error: { code: string; message: string; hint: string } | null;
}

const PHASES: Record<string, string> = { scan: 'Reading the export', store: 'Saving conversations', embed: 'Making them searchable' };

/** Imports a ChatGPT, Claude, Gemini or Memex export: the upload's bytes, then the import job's progress, then what it added. */
export const importView: View = async (root) => {
  const input = h('input', { id: 'import-files', type: 'file', multiple: true, required: true, accept: '.json,.zip,application/json,application/zip' });
  const source = h('select', { id: 'import-source' }, ['auto', 'chatgpt', 'claude', 'gemini', 'memex'].map((value) => h('option', { value }, value === 'auto' ? 'Detect' : value)));
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Import progress', hidden: true });
  const state = h('p', { class: 'import-state', role: 'status' });
  const results = h('ul', { class: 'sessions', 'aria-label': 'Imported conversations' });
  const button = h('button', { type: 'submit' }, 'Import');
  const form = h(
    'form',
    { class: 'editor', 'aria-label': 'Import an export' },
    h('label', { for: input.id }, 'Export files (conversations.json, the ZIP, Takeout’s MyActivity.json)'),
    input,
    h('div', { class: 'row' }, h('label', { for: source.id }, 'From'), source, button),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const files = [...(input.files ?? [])];
    if (files.length === 0) return;
    button.disabled = true;
    bar.hidden = false;
    replace(results);
    delete state.dataset.state;
    state.textContent = `Uploading ${files.length === 1 ? files[0]!.name : `${files.length} files`}…`;
    upload<{ job: ImportJob }>('/imports', files, (sent, total) => {
      bar.max = total || 1;
      bar.value = sent;
    }, { source: source.value })
      .then(async ({ job }) => {
        let last = job;
        await events(`/imports/jobs/${job.id}/events`, (_name, data) => {
          last = data as ImportJob;
          const progress = last.progress;
          if (!progress) return;
          bar.max = progress.total ?? Math.max(1, progress.done);
          bar.value = progress.done;
          state.textContent = `${PHASES[progress.phase] ?? progress.phase}: ${progress.done}${progress.total === null ? '' : ` of ${progress.total}`} conversations, ${progress.messages} messages`;
        });
        state.dataset.state = last.state;
        if (last.state !== 'done' || !last.report) {
          state.textContent = `The import ${last.state}${last.error ? `: ${last.error.code}: ${last.error.message} ${last.error.hint}` : ''}`;
          return;
        }
        const conversations = last.report.conversations;
        const added = conversations.filter((c) => c.action === 'added').length;
        const updated = conversations.filter((c) => c.action === 'updated').length;
        state.textContent = `Done: ${added} added, ${updated} updated, ${conversations.length - added - updated} unchanged.`;
        replace(
          results,
          conversations.map((c) => h('li', { class: 'session-row' }, h('a', { href: `#/s/${encodeURIComponent(c.sessionId)}`, class: 'title' }, c.title ?? 'Untitled'), h('p', { class: 'meta' }, `${c.action} · ${c.newMessages} new messages`))),
        );
      })
      .catch((cause: unknown) => {
        state.dataset.state = 'failed';
        state.textContent = problemText(cause);
      })
      .finally(() => (button.disabled = false));
  });
  replace(root, h('h1', {}, 'Import'), h('p', { class: 'muted' }, 'Bring conversations from ChatGPT, Claude or Gemini exports (or a Memex export). Importing the same export again adds only what is new.'), form, bar, state, results);
  return Promise.resolve();
};
