import { api, problemText } from './api.js';
import { h, replace } from './dom.js';
import type { ContextWindow } from './types.js';

const PART_NAMES: Record<string, string> = { system: 'System and persona', notes: 'Notes', summary: 'Summary of older turns', memories: 'Recalled memories', recent: 'Recent turns' };

/** Each panel's latest build: an answer to an earlier one (slower, or sent first) is dropped, not drawn over it. */
const latest = new WeakMap<HTMLElement, number>();

/** What the model would see for the session's next call: each part's tokens against the budget, and the messages. */
export async function contextPanel(panel: HTMLElement, sessionId: string, budget = 4096): Promise<void> {
  const build = (latest.get(panel) ?? 0) + 1;
  latest.set(panel, build);
  const stale = (): boolean => latest.get(panel) !== build;
  const input = h('input', { id: 'context-budget', type: 'number', min: 256, max: 1_000_000, step: 256, value: budget });
  const form = h('form', { class: 'controls' }, h('div', { class: 'field' }, h('label', { for: 'context-budget' }, 'Token budget'), input), h('button', { type: 'submit' }, 'Build'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void contextPanel(panel, sessionId, Number(input.value));
  });
  replace(panel, h('h2', {}, 'Context window'), form, h('p', { class: 'muted', role: 'status' }, 'Building…'));
  let window: ContextWindow;
  try {
    window = await api<ContextWindow>('POST', `/sessions/${sessionId}/context`, { budget });
  } catch (cause) {
    if (stale()) return;
    replace(panel, h('h2', {}, 'Context window'), form, h('p', { class: 'error', role: 'alert' }, problemText(cause)));
    return;
  }
  if (stale()) return;
  const { report } = window;
  const usable = report.budget - report.reserve;
  const rows = Object.entries(report.parts).map(([part, r]) => h('tr', {}, h('th', { scope: 'row' }, PART_NAMES[part] ?? part), h('td', {}, r.tokens), h('td', {}, r.allotted), h('td', {}, r.items)));
  replace(
    panel,
    h('h2', {}, 'Context window'),
    form,
    h(
      'p',
      { class: 'total' },
      h('meter', { min: 0, max: usable, value: report.tokens, 'aria-label': 'Tokens used' }),
      ' ',
      h('strong', { 'data-tokens': report.tokens }, `${report.tokens}`),
      ` of `,
      h('strong', { 'data-usable': usable }, `${usable}`),
      ` tokens (${report.encoding}; budget `,
      h('span', { 'data-budget': report.budget }, `${report.budget}`),
      ` less ${report.reserve} for the reply)`,
    ),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Part'), h('th', { scope: 'col' }, 'Tokens'), h('th', { scope: 'col' }, 'Allotted'), h('th', { scope: 'col' }, 'Items'))), h('tbody', {}, rows)),
    h(
      'details',
      {},
      h('summary', {}, `The ${window.messages.length} messages the model would see`),
      h('ol', { class: 'window' }, window.messages.map((m) => h('li', {}, h('strong', {}, m.role), h('pre', {}, m.content)))),
    ),
  );
}
