import './style.css';
import { ApiError, api, problemText, storedKey, storeKey } from './api.js';
import { h, replace } from './dom.js';
import { path, type View } from './router.js';
import { importView } from './import.js';
import { memoryView } from './memory.js';
import { searchView } from './search.js';
import { sessionView } from './session.js';
import { sessionsView } from './sessions.js';
import { signIn } from './signin.js';

const root = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;

const routes: [RegExp, View][] = [
  [/^\/$/, sessionsView],
  [/^\/s\/([^/]+)$/, sessionView],
  [/^\/search$/, searchView],
  [/^\/notes$/, memoryView],
  [/^\/import$/, importView],
];

let me: { id: string; name: string | null } | null = null;

function showNav(): void {
  replace(
    nav,
    h('a', { href: '#/' }, 'Sessions'),
    h('a', { href: '#/search' }, 'Search'),
    h('a', { href: '#/notes' }, 'Notes and personas'),
    h('a', { href: '#/import' }, 'Import'),
    h('span', { class: 'who' }, me?.name ?? me?.id ?? ''),
    storedKey()
      ? h('button', {
          type: 'button',
          class: 'link',
          onclick: () => {
            storeKey(null);
            location.hash = '#/';
            location.reload();
          },
        }, 'Sign out')
      : null,
  );
}

let renders = 0;

/**
 * A view's drawing area for one render. It joins the page beside what is shown, and takes its place
 * when the view first draws into it — unless a newer render has begun, in which case it is dropped:
 * a slow answer for the page left behind never draws over the page asked for since (clicking one
 * session, then another). Until then the old page stays, so a quick view does not flash blank.
 */
function drawingArea(generation: number): HTMLElement {
  for (const pending of root.querySelectorAll(':scope > .view.pending')) pending.remove();
  const area = h('div', { class: 'view pending' });
  const observer = new MutationObserver(() => {
    observer.disconnect();
    area.classList.remove('pending');
    if (generation !== renders) area.remove();
    else for (const other of [...root.children]) if (other !== area) other.remove();
  });
  observer.observe(area, { childList: true });
  root.append(area);
  return area;
}

async function render(): Promise<void> {
  if (!me) return;
  const generation = ++renders;
  const current = path();
  const area = drawingArea(generation);
  const route = routes.map(([pattern, view]) => [pattern.exec(current), view] as const).find(([match]) => match !== null);
  if (!route) {
    replace(area, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'Back to your sessions')));
    return;
  }
  const [match, view] = route;
  root.setAttribute('aria-busy', 'true');
  try {
    await view(area, ...(match?.slice(1) ?? []));
  } catch (cause) {
    if (cause instanceof ApiError && cause.status === 401) return start('Your key is no longer valid; sign in again.');
    replace(area, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, problemText(cause)));
  } finally {
    if (generation === renders) root.removeAttribute('aria-busy');
  }
  if (generation === renders) document.title = `${area.querySelector('h1')?.textContent ?? 'Memex'} · Memex`;
}

/** Signed in by the stored key, or by a gateway's X-User-ID (trusted-header mode); else the sign-in form. */
async function start(reason?: string): Promise<void> {
  me = null;
  try {
    me = await api('GET', '/me');
  } catch (cause) {
    if (!(cause instanceof ApiError) || cause.status !== 401) {
      // Rate-limited, unreachable or broken: say so, and offer to try again (the key stays).
      const retry = h('button', { type: 'button', onclick: () => void start() }, 'Try again');
      replace(root, h('h1', {}, 'Memex cannot answer'), h('p', { class: 'error', role: 'alert' }, problemText(cause)), retry);
      return;
    }
    storeKey(null);
    replace(nav);
    signIn(root, () => void start(), reason);
    return;
  }
  showNav();
  await render();
}

window.addEventListener('hashchange', () => void render());
void start();
