import { api } from './api.js';
import { h, highlight, replace, when } from './dom.js';
import { go, params, type View } from './router.js';
import type { Hit, SessionMatch } from './types.js';

function hitView(hit: Hit, query: string): HTMLElement {
  const href = `#/s/${encodeURIComponent(hit.sessionId)}${hit.source.kind === 'message' ? `?m=${encodeURIComponent(hit.source.messageId)}` : ''}`;
  const label = hit.source.kind === 'message' ? `${hit.source.role}, ${when(hit.source.createdAt)}` : `file ${hit.source.name ?? ''}`;
  return h('li', { class: 'hit' }, h('a', { href }, label), h('p', {}, highlight(hit.text, query)));
}

/** Search across all sessions: the best sessions, each with its best passages, matches highlighted. */
export const searchView: View = async (root) => {
  const q = params().get('q') ?? '';
  const input = h('input', { id: 'search-query', type: 'search', value: q, required: true, placeholder: 'What was said about…' });
  const form = h('form', { class: 'controls', role: 'search' }, h('div', { class: 'field grow' }, h('label', { for: 'search-query' }, 'Search all sessions'), input), h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    go(`#/search?${new URLSearchParams({ q: input.value.trim() }).toString()}`);
  });
  const results = h('ol', { class: 'results', 'aria-label': 'Results' });
  const status = h('p', { class: 'muted', role: 'status' });
  replace(root, h('h1', {}, 'Search'), form, status, results);
  input.focus();
  if (!q) return;
  status.textContent = 'Searching…';
  const found = await api<{ sessions: SessionMatch[] }>('POST', '/sessions/search', { query: q, limit: 20, hits: 3 });
  status.textContent = found.sessions.length === 0 ? `Nothing matches “${q}”.` : `${found.sessions.length} sessions, best first.`;
  results.append(
    ...found.sessions.map((m) =>
      h('li', { class: 'match' }, h('h2', {}, h('a', { href: `#/s/${encodeURIComponent(m.session.id)}` }, m.session.title ?? 'Untitled')), h('ul', {}, m.hits.map((hit) => hitView(hit, q)))),
    ),
  );
};
