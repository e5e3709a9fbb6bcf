import { h } from './dom.js';

/** A confirmation as a modal dialog (focus stays inside it, Escape cancels); answers whether the person confirmed. */
export function confirmDialog(text: string, confirm: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-label': confirm },
      h('p', {}, text),
      h('form', { method: 'dialog' }, h('button', { value: 'cancel' }, 'Cancel'), h('button', { value: 'ok', class: 'danger' }, confirm)),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'ok');
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
