import { ApiError, api, problemText, storeKey } from './api.js';
import { h, replace } from './dom.js';

/** The sign-in form: an API key, kept in this tab's session storage only (never in a URL). */
export function signIn(root: HTMLElement, done: () => void, reason?: string): void {
  const input = h('input', { id: 'api-key', type: 'password', autocomplete: 'off', required: true, placeholder: 'mx_…' });
  const error = h('p', { class: 'error', role: 'alert' }, reason ?? '');
  const form = h(
    'form',
    { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Memex'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('p', { class: 'muted' }, 'Make one with ', h('code', {}, 'memex keys create --user <id>'), '. It stays in this tab until you close it.'),
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    storeKey(input.value.trim());
    api('GET', '/me').then(done, (cause: unknown) => {
      storeKey(null);
      error.textContent = cause instanceof ApiError && cause.status === 401 ? 'That key is not valid (unknown or revoked).' : problemText(cause);
    });
  });
  replace(root, form);
  input.focus();
}
