import { h } from './dom.js';

/** A short notice at the bottom of the page, with an optional action (Undo); it goes after a while. */
export function toast(text: string, action?: { label: string; run: () => void }): void {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: 'toast' }, h('span', {}, text));
  if (action) {
    item.append(
      h('button', {
        type: 'button',
        onclick: () => {
          item.remove();
          action.run();
        },
      }, action.label),
    );
  }
  region.append(item);
  setTimeout(() => item.remove(), 10_000);
}
