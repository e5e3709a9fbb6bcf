import { api, problemText } from './api.js';
import { confirmDialog } from './dialog.js';
import { h, replace, when } from './dom.js';
import type { View } from './router.js';
import { toast } from './toast.js';

interface Note {
  id: string;
  kind: 'fact' | 'preference' | 'instruction' | 'note';
  text: string;
  pinned: boolean;
  updatedAt: string;
}

interface Persona {
  id: string;
  name: string;
  instructions: string;
  updatedAt: string;
}

const KINDS = ['note', 'fact', 'preference', 'instruction'] as const;

function failed(cause: unknown): void {
  toast(problemText(cause));
}

/** Every page of a list (notes and personas are few: a person writes them by hand). */
async function all<T>(path: string, key: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Record<string, unknown> & { nextCursor: string | null } = await api('GET', `${path}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...(page[key] as T[]));
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

function kindSelect(id: string, value: Note['kind']): HTMLSelectElement {
  return h('select', { id }, KINDS.map((kind) => h('option', { value: kind, selected: kind === value }, kind)));
}

/** A note's form: new (no note) or editing one; `done` redraws the page. */
function noteForm(note: Note | null, done: () => void): HTMLFormElement {
  const prefix = note ? `note-${note.id}` : 'new-note';
  const text = h('textarea', { id: `${prefix}-text`, rows: 2, required: true, maxlength: 10_000 }, note?.text ?? '');
  const kind = kindSelect(`${prefix}-kind`, note?.kind ?? 'note');
  const pinned = h('input', { id: `${prefix}-pinned`, type: 'checkbox', checked: note?.pinned ?? true });
  const form = h(
    'form',
    { class: 'editor', 'aria-label': note ? 'Edit note' : 'Add a note' },
    h('label', { for: text.id }, note ? 'Note' : 'New note'),
    text,
    h('div', { class: 'row' }, h('label', { for: kind.id }, 'Kind'), kind, h('label', { class: 'check' }, pinned, ' Pinned (in every context window)'), h('button', { type: 'submit' }, note ? 'Save' : 'Add note'), note ? h('button', { type: 'button', onclick: done }, 'Cancel') : null),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { text: text.value.trim(), kind: kind.value, pinned: pinned.checked };
    (note ? api('PATCH', `/notes/${note.id}`, body) : api('POST', '/notes', body)).then(() => {
      toast(note ? 'Note saved.' : 'Note added.');
      done();
    }, failed);
  });
  return form;
}

/** A persona's form: new or editing one. */
function personaForm(persona: Persona | null, done: () => void): HTMLFormElement {
  const prefix = persona ? `persona-${persona.id}` : 'new-persona';
  const name = h('input', { id: `${prefix}-name`, required: true, maxlength: 200, value: persona?.name ?? '' });
  const instructions = h('textarea', { id: `${prefix}-instructions`, rows: 4, maxlength: 100_000 }, persona?.instructions ?? '');
  const form = h(
    'form',
    { class: 'editor', 'aria-label': persona ? 'Edit persona' : 'Add a persona' },
    h('label', { for: name.id }, 'Persona name'),
    name,
    h('label', { for: instructions.id }, 'Instructions (the system prompt it puts first)'),
    instructions,
    h('div', { class: 'row' }, h('button', { type: 'submit' }, persona ? 'Save' : 'Add persona'), persona ? h('button', { type: 'button', onclick: done }, 'Cancel') : null),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), instructions: instructions.value };
    (persona ? api('PATCH', `/personas/${persona.id}`, body) : api('POST', '/personas', body)).then(() => {
      toast(persona ? 'Persona saved.' : 'Persona added.');
      done();
    }, failed);
  });
  return form;
}

/** A row with Edit and Delete; Edit swaps the row for its form. */
function row(label: string, body: HTMLElement, edit: () => HTMLFormElement, remove: () => Promise<unknown>, redraw: () => void): HTMLElement {
  const item = h('li', { class: 'item' });
  const show = (): void =>
    replace(
      item,
      body,
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', 'aria-label': `Edit ${label}`, onclick: () => replace(item, edit()) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${label}`, onclick: () => void confirmDialog(`Delete ${label}? This cannot be undone.`, 'Delete').then((yes) => (yes ? remove().then(redraw, failed) : undefined)) }, 'Delete'),
      ),
    );
  show();
  return item;
}

/** Notes (what every context window may include) and personas (who the assistant is): list, add, edit, delete. */
export const memoryView: View = async (root) => {
  const [notes, personas] = await Promise.all([all<Note>('/notes', 'notes'), all<Persona>('/personas', 'personas')]);
  const redraw = (): void => void memoryView(root);
  replace(
    root,
    h('h1', {}, 'Notes and personas'),
    h(
      'section',
      { 'aria-labelledby': 'notes-title' },
      h('h2', { id: 'notes-title' }, `Notes (${notes.length})`),
      h('p', { class: 'muted' }, 'Facts, preferences and instructions the context manager offers every window, pinned ones first.'),
      h(
        'ul',
        { class: 'items', 'aria-label': 'Notes' },
        notes.map((note) =>
          row(
            `note ${note.text.slice(0, 40)}`,
            h('div', { class: 'note', 'data-note-id': note.id }, h('p', {}, note.text), h('p', { class: 'meta' }, h('span', { class: 'badge' }, note.kind), note.pinned ? h('span', { class: 'badge' }, 'pinned') : null, h('time', { datetime: note.updatedAt }, when(note.updatedAt)))),
            () => noteForm(note, redraw),
            () => api('DELETE', `/notes/${note.id}`),
            redraw,
          ),
        ),
      ),
      noteForm(null, redraw),
    ),
    h(
      'section',
      { 'aria-labelledby': 'personas-title' },
      h('h2', { id: 'personas-title' }, `Personas (${personas.length})`),
      h(
        'ul',
        { class: 'items', 'aria-label': 'Personas' },
        personas.map((persona) =>
          row(
            `persona ${persona.name}`,
            h('div', { class: 'persona', 'data-persona-id': persona.id }, h('h3', {}, persona.name), h('pre', { class: 'instructions' }, persona.instructions)),
            () => personaForm(persona, redraw),
            () => api('DELETE', `/personas/${persona.id}`),
            redraw,
          ),
        ),
      ),
      personaForm(null, redraw),
    ),
  );
};
