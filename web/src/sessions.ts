import { api } from './api.js';
import { h, highlight, replace, when } from './dom.js';
import { go, params, type View } from './router.js';
import type { Session, SessionMatch, SessionPage } from './types.js';

const PAGE = 50;
const SORTS = [
  ['activity', 'Last activity'],
  ['created', 'Created'],
  ['title', 'Name'],
  ['messages', 'Messages'],
] as const;

function select(id: string, label: string, value: string, options: readonly (readonly [string, string])[], onChange: (value: string) => void): HTMLElement {
  const element = h('select', { id, onchange: () => onChange(element.value) }, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
  return h('div', { class: 'field' }, h('label', { for: id }, label), element);
}

function row(session: Session, match?: SessionMatch, query = ''): HTMLElement {
  const href = `#/s/${encodeURIComponent(session.id)}`;
  const hit = match?.hits.find((x) => x.source.kind === 'message');
  return h(
    'li',
    { class: 'session-row', 'data-session-id': session.id },
    h('a', { href: hit?.source.kind === 'message' ? `${href}?m=${encodeURIComponent(hit.source.messageId)}` : href, class: 'title' }, session.title ?? 'Untitled'),
    h('p', { class: 'preview' }, hit ? highlight(hit.text.slice(0, 240), query) : (session.lastMessagePreview ?? '')),
    h(
      'p',
      { class: 'meta' },
      h('span', {}, `${session.messageCount} message${session.messageCount === 1 ? '' : 's'}`),
      h('time', { datetime: session.lastMessageAt ?? session.createdAt }, when(session.lastMessageAt ?? session.createdAt)),
      session.origin.kind === 'imported' ? h('span', { class: 'badge' }, `imported from ${session.origin.source}`) : null,
      session.tags.map((tag) => h('span', { class: 'tag' }, tag)),
    ),
  );
}

/** The ids of the sessions with the tag, at most 10,000 (what a search's sessionIds filter takes). */
async function taggedSessionIds(tag: string, origin: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const search = new URLSearchParams({ limit: '1000', tag, origin });
    if (cursor) search.set('cursor', cursor);
    const page: SessionPage = await api<SessionPage>('GET', `/sessions?${search.toString()}`);
    ids.push(...page.sessions.map((s) => s.id));
    cursor = page.nextCursor;
  } while (cursor && ids.length < 10_000);
  return ids.slice(0, 10_000);
}

/** The session list: search by title or content, sort, filter by tag and origin, a page at a time. */
export const sessionsView: View = async (root) => {
  const query = params();
  const q = query.get('q') ?? '';
  const mode = query.get('mode') === 'content' ? 'content' : 'title';
  const sort = query.get('sort') ?? 'activity';
  const order = query.get('order') ?? (sort === 'title' ? 'asc' : 'desc');
  const tag = query.get('tag') ?? '';
  const origin = query.get('origin') ?? 'all';
  const set = (name: string, value: string): void => {
    // The address as it is now, not as this view was drawn: a filter changed a moment ago counts.
    const next = params();
    if (value) next.set(name, value);
    else next.delete(name);
    if (name === 'sort') next.delete('order');
    go(`#/?${next.toString()}`, true);
  };

  const { tags } = await api<{ tags: { tag: string; sessions: number }[] }>('GET', '/tags');
  const search = h('input', { id: 'session-query', type: 'search', value: q, placeholder: mode === 'content' ? 'Words or meaning…' : 'Part of a title…' });
  const form = h(
    'form',
    { class: 'controls', role: 'search', 'aria-label': 'Find sessions' },
    h('div', { class: 'field grow' }, h('label', { for: 'session-query' }, 'Search sessions'), search),
    select('search-mode', 'In', mode, [['title', 'Titles'], ['content', 'Content']], (v) => set('mode', v === 'title' ? '' : v)),
    select('sort', 'Sort by', sort, SORTS, (v) => set('sort', v)),
    select('order', 'Order', order, [['desc', 'Descending'], ['asc', 'Ascending']], (v) => set('order', v)),
    select('tag-filter', 'Tag', tag, [['', 'Any tag'], ...tags.map((t) => [t.tag, `${t.tag} (${t.sessions})`] as const)], (v) => set('tag', v)),
    select('origin', 'Origin', origin, [['all', 'All'], ['native', 'Native'], ['imported', 'Imported']], (v) => set('origin', v === 'all' ? '' : v)),
    h('button', { type: 'submit' }, 'Search'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    set('q', search.value.trim());
  });

  const list = h('ul', { class: 'sessions', 'aria-label': 'Sessions' });
  const status = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Load more');
  replace(root, h('h1', {}, 'Sessions'), form, status, list, more);

  if (q && mode === 'content') {
    // A tag narrows the search to its sessions (the search's sessionIds filter takes up to 10,000).
    const within = tag ? await taggedSessionIds(tag, origin) : null;
    const found =
      within?.length === 0
        ? { sessions: [] }
        : await api<{ sessions: SessionMatch[] }>('POST', '/sessions/search', { query: q, limit: PAGE, ...(origin !== 'all' ? { origin } : {}), ...(within ? { sessionIds: within } : {}) });
    list.append(...found.sessions.map((m) => row(m.session, m, q)));
    status.textContent = found.sessions.length === 0 ? `No session matches “${q}”.` : `${found.sessions.length} sessions match “${q}”, best first.`;
    return;
  }

  let cursor: string | null = null;
  const load = async (): Promise<void> => {
    more.disabled = true;
    const search = new URLSearchParams({ limit: String(PAGE), sort, order, origin });
    if (q) search.set('title', q);
    if (tag) search.set('tag', tag);
    if (cursor) search.set('cursor', cursor);
    const page = await api<SessionPage>('GET', `/sessions?${search.toString()}`);
    list.append(...page.sessions.map((s) => row(s)));
    cursor = page.nextCursor;
    more.hidden = cursor === null;
    more.disabled = false;
    status.textContent = page.total === 0 ? (q || tag ? 'No session matches.' : 'No sessions yet. Add messages with the API, the CLI or an import.') : `Showing ${list.childElementCount} of ${page.total} sessions.`;
  };
  more.addEventListener('click', () => void load());
  await load();
};

