import { ApiError, api, blob, download, events, problemText, upload } from './api.js';
import { contextPanel } from './context.js';
import { confirmDialog } from './dialog.js';
import { h, replace, when } from './dom.js';
import { renderMarkdown, renderMarkdownMany } from './markdown.js';
import { go, params, type View } from './router.js';
import { toast } from './toast.js';
import type { Attachment, FileRecord, Job, Message, MessagePage, Session } from './types.js';

/** Messages asked for at a time, drawn at a time, and asked for first (more than a screenful). */
const PAGE = 500;
const SLICE = 100;
const FIRST = 25;

/** Opens a stored file's original bytes in a new tab (the key goes in a header, so the bytes come as a blob). */
async function openOriginal(sessionId: string, file: { fileId: string; name?: string }): Promise<void> {
  const data = await blob(`/sessions/${sessionId}/files/${file.fileId}/content`);
  const url = URL.createObjectURL(data);
  window.open(url, '_blank', 'noopener');
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function attachmentView(sessionId: string, attachment: Attachment, files: Map<string, FileRecord>): HTMLElement {
  const record = files.get(attachment.fileId);
  const name = attachment.name ?? record?.name ?? attachment.fileId;
  const mime = attachment.mimeType ?? record?.mimeType ?? '';
  const open = h('button', { type: 'button', class: 'link', onclick: () => void openOriginal(sessionId, attachment) }, `Open ${name}`);
  const item = h('figure', { class: 'attachment' });
  if (mime.startsWith('image/')) {
    const image = h('img', { alt: name, width: 160, loading: 'lazy' });
    item.append(image);
    blob(`/sessions/${sessionId}/files/${attachment.fileId}/thumbnail`).then(
      (data) => (image.src = URL.createObjectURL(data)),
      () => image.remove(),
    );
  }
  const pages = record?.content?.kind === 'pdf' ? ` · ${record.content.pages} page${record.content.pages === 1 ? '' : 's'}` : '';
  item.append(h('figcaption', {}, open, h('span', { class: 'muted' }, ` ${mime}${pages}`)));
  return item;
}

/** A new session with the turns up to and including the message; opens it. */
async function forkAt(sessionId: string, message: Message): Promise<void> {
  const { session } = await api<{ session: Session }>('POST', `/sessions/${sessionId}/fork`, { messageId: message.id });
  go(`#/s/${encodeURIComponent(session.id)}`);
  toast(`Forked: “${session.title ?? 'Untitled'}” has the ${session.messageCount} turns up to that message.`);
}

function messageView(message: Message, sessionId: string, files: Map<string, FileRecord>, personas: Map<string, string>, content = renderMarkdown(message.content)): HTMLElement {
  const speaker = message.personaId ? (personas.get(message.personaId) ?? message.role) : (message.name ?? message.role);
  const fork = h('button', { type: 'button', class: 'link fork', title: 'A new session with the turns up to here', onclick: () => void forkAt(sessionId, message).catch((e: unknown) => toast(problemText(e))) }, 'Fork from here');
  return h(
    'article',
    { class: `message ${message.role}`, id: `m-${message.id}`, tabindex: -1, 'aria-label': `${speaker}, ${when(message.createdAt)}` },
    h('header', {}, h('strong', { class: 'role' }, speaker), message.name && message.personaId ? ` (${message.name})` : null, ' ', h('time', { datetime: message.createdAt }, when(message.createdAt)), ' ', fork),
    h('div', { class: 'content' }, content),
    message.attachments.length > 0 ? h('div', { class: 'attachments' }, message.attachments.map((a) => attachmentView(sessionId, a, files))) : null,
  );
}

function tagEditor(session: Session, onChange: (next: Session) => void): HTMLElement {
  const input = h('input', { id: 'new-tag', placeholder: 'Add a tag', maxlength: 64 });
  const form = h('form', { class: 'tags', 'aria-label': 'Tags' });
  form.append(
    ...session.tags.map((tag) =>
      h('span', { class: 'tag' }, tag, h('button', { type: 'button', class: 'icon', 'aria-label': `Remove tag ${tag}`, onclick: () => void api<Session>('DELETE', `/sessions/${session.id}/tags/${encodeURIComponent(tag)}`).then(onChange) }, '×')),
    ),
    h('label', { for: 'new-tag', class: 'visually-hidden' }, 'New tag'),
    input,
    h('button', { type: 'submit' }, 'Tag'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const tag = input.value.trim();
    if (tag) void api<Session>('PUT', `/sessions/${session.id}/tags/${encodeURIComponent(tag)}`).then(onChange, (e: unknown) => toast(problemText(e)));
  });
  return form;
}

/** Uploads a PDF or image into the session, then follows its ingest job's events to done. */
function uploader(session: Session, onDone: () => void): HTMLElement {
  const input = h('input', { id: 'upload', type: 'file', accept: 'application/pdf,image/*' });
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Upload progress', hidden: true });
  const state = h('span', { class: 'upload-state', role: 'status' });
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (!file) return;
    bar.hidden = false;
    state.textContent = `Uploading ${file.name}…`;
    upload<{ job: Job }>(`/sessions/${session.id}/files`, [file], (sent, total) => {
      bar.max = total || 1;
      bar.value = sent;
    })
      .then(async ({ job }) => {
        state.textContent = 'Reading the file…';
        let last: Job = job;
        await events(`/jobs/${job.id}/events`, (_name, data) => {
          last = data as Job;
          if (last.progress) {
            bar.max = last.progress.total || 1;
            bar.value = last.progress.done;
            state.textContent = `${last.progress.phase} ${last.progress.done} of ${last.progress.total}`;
          }
        });
        state.textContent = last.state === 'done' ? `${file.name}: done` : `${file.name}: ${last.state}${last.error ? ` (${last.error.code}: ${last.error.message})` : ''}`;
        state.dataset.state = last.state;
        if (last.state === 'done') onDone();
      })
      .catch((cause: unknown) => {
        state.textContent = problemText(cause);
        state.dataset.state = 'failed';
      });
  });
  return h('div', { class: 'upload' }, h('label', { for: 'upload' }, 'Add a PDF or image'), input, bar, state);
}

/**
 * Asks the configured model (POST /v1/chat, streamed): the person's turn and the reply appear as
 * they come; without a model the server's answer says how to configure one.
 */
function chatBox(session: Session, messages: HTMLElement, files: Map<string, FileRecord>, personas: Map<string, string>): HTMLElement {
  const input = h('textarea', { id: 'chat-input', rows: 3, required: true, placeholder: 'Ask with this session’s memory…' });
  const send = h('button', { type: 'submit' }, 'Send');
  const state = h('p', { class: 'chat-state muted', role: 'status' });
  const form = h('form', { class: 'chat', 'aria-label': 'Chat' }, h('label', { for: 'chat-input' }, 'Message'), input, h('div', { class: 'row' }, send, state));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    send.disabled = true;
    state.className = 'chat-state muted';
    state.textContent = 'Thinking…';
    let reply: HTMLElement | null = null;
    let replyText = '';
    events('/chat', (name, data) => {
      const e = data as { userMessage?: Message; message?: Message; text?: string; error?: { code: string; message: string } };
      if (name === 'session' && e.userMessage) {
        messages.querySelector(':scope > p.muted')?.remove();
        messages.append(messageView(e.userMessage, session.id, files, personas));
        input.value = '';
        reply = h('article', { class: 'message assistant pending', 'aria-live': 'polite' }, h('header', {}, h('strong', { class: 'role' }, 'assistant')), h('div', { class: 'content' }));
        messages.append(reply);
      } else if (name === 'delta' && reply && e.text) {
        replyText += e.text;
        reply.querySelector('.content')?.replaceChildren(document.createTextNode(replyText));
      } else if (name === 'done' && e.message) {
        reply?.replaceWith(messageView(e.message, session.id, files, personas));
        state.textContent = '';
      } else if (name === 'error' && e.error) {
        state.className = 'chat-state error';
        state.textContent = `${e.error.code}: ${e.error.message}`;
      }
    }, { body: { text, sessionId: session.id } })
      .catch((cause: unknown) => {
        state.className = 'chat-state error';
        state.textContent = problemText(cause);
      })
      .finally(() => (send.disabled = false));
  });
  return form;
}

/** One session: its messages, files and tags, rename, delete with undo, export, upload, and its next context window. */
export const sessionView: View = async (root, id = '') => {
  const sessionId = decodeURIComponent(id);
  const encoded = encodeURIComponent(sessionId);
  // Everything the first draw needs, asked at once (another user's or a missing id: 404 for all).
  let session: Session;
  let fileList: { files: FileRecord[] };
  let personaList: { personas: { id: string; name: string }[] };
  let firstPage: MessagePage;
  try {
    [session, fileList, personaList, firstPage] = await Promise.all([
      api<Session>('GET', `/sessions/${encoded}`),
      api<{ files: FileRecord[] }>('GET', `/sessions/${encoded}/files?limit=1000`),
      api<{ personas: { id: string; name: string }[] }>('GET', '/personas?limit=1000'),
      api<MessagePage>('GET', `/sessions/${encoded}/messages?limit=${FIRST}`),
    ]);
  } catch (cause) {
    if (cause instanceof ApiError && (cause.status === 404 || cause.code === 'MEMEX_INVALID_ID')) {
      replace(root, h('h1', {}, 'Session not found'), h('p', {}, 'No session of yours has this id. ', h('a', { href: '#/' }, 'Back to your sessions')));
      return;
    }
    throw cause;
  }
  const target = params().get('m');
  const files = new Map(fileList.files.map((f) => [f.id, f]));
  const personas = new Map(personaList.personas.map((p) => [p.id, p.name]));

  const title = h('h1', { id: 'session-title' }, session.title ?? 'Untitled');
  const tags = h('div', {});
  const showTags = (next: Session): void => {
    session = next;
    replace(tags, tagEditor(session, showTags));
  };
  showTags(session);

  const rename = (): void => {
    const input = h('input', { id: 'rename', value: session.title ?? '', maxlength: 500, required: true });
    const form = h('form', { class: 'rename' }, h('label', { for: 'rename', class: 'visually-hidden' }, 'New title'), input, h('button', { type: 'submit' }, 'Save'), h('button', { type: 'button', onclick: () => form.replaceWith(title) }, 'Cancel'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void api<Session>('PATCH', `/sessions/${session.id}`, { title: input.value.trim() }).then((next) => {
        session = next;
        title.textContent = next.title ?? 'Untitled';
        form.replaceWith(title);
        toast('Renamed.');
      }, (e: unknown) => toast(problemText(e)));
    });
    title.replaceWith(form);
    input.focus();
  };

  const remove = async (): Promise<void> => {
    if (!(await confirmDialog(`Move “${session.title ?? 'Untitled'}” to the trash? You can undo this.`, 'Delete'))) return;
    await api('DELETE', `/sessions/${session.id}`);
    go('#/');
    const id = session.id;
    toast('Session moved to the trash.', {
      label: 'Undo',
      run: () => void api('POST', `/sessions/${id}/restore`).then(() => go(`#/s/${encodeURIComponent(id)}`)),
    });
  };

  const exportAs = (format: 'json' | 'md' | 'html'): void => {
    void blob(`/sessions/${session.id}/export?format=${format}`).then((data) => download(data, `${session.id}.${format}`));
  };

  const messages = h('section', { class: 'messages', 'aria-label': 'Messages' });
  const panel = h('section', { class: 'context', 'aria-label': 'Context window', hidden: true });
  const shownFiles = h('div', {});
  const showFiles = (list: FileRecord[]): void => {
    for (const f of list) files.set(f.id, f);
    replace(shownFiles, list.length === 0 ? h('p', { class: 'muted' }, 'No files yet.') : h('ul', { 'aria-label': 'Files of this session' }, list.map((f) => h('li', {}, attachmentView(session.id, { fileId: f.id, name: f.name, mimeType: f.mimeType }, files)))));
  };
  showFiles(fileList.files);
  const fileSection = h(
    'section',
    { class: 'files', 'aria-label': 'Files' },
    h('h2', {}, 'Files'),
    shownFiles,
    uploader(session, () => {
      toast('The file is ingested: search finds its text now.');
      void api<{ files: FileRecord[] }>('GET', `/sessions/${session.id}/files?limit=1000`).then((next) => showFiles(next.files));
    }),
  );

  replace(
    root,
    h('p', {}, h('a', { href: '#/' }, '← Sessions')),
    title,
    h('p', { class: 'meta' }, `${session.messageCount} message${session.messageCount === 1 ? '' : 's'} · started ${when(session.createdAt)}`, session.origin.kind === 'imported' ? ` · imported from ${session.origin.source}` : ''),
    h(
      'div',
      { class: 'actions', role: 'toolbar', 'aria-label': 'Session actions' },
      h('button', { type: 'button', onclick: rename }, 'Rename'),
      h('button', { type: 'button', onclick: () => void remove() }, 'Delete'),
      h('button', { type: 'button', onclick: () => exportAs('json') }, 'Export JSON'),
      h('button', { type: 'button', onclick: () => exportAs('md') }, 'Export Markdown'),
      h('button', { type: 'button', onclick: () => exportAs('html') }, 'Export HTML'),
      h('button', {
        type: 'button',
        'aria-expanded': 'false',
        onclick: (event) => {
          const button = event.currentTarget as HTMLButtonElement;
          panel.hidden = !panel.hidden;
          button.setAttribute('aria-expanded', String(!panel.hidden));
          if (!panel.hidden) void contextPanel(panel, session.id);
        },
      }, 'Context window'),
    ),
    tags,
    panel,
    messages,
    chatBox(session, messages, files, personas),
    fileSection,
  );

  // Drawn a slice at a time, yielding between slices: the first messages show at once, and the
  // rest follow without holding the page (a 1,000-message session is 10 slices).
  const showTarget = (): void => {
    const found = target ? document.getElementById(`m-${target}`) : null;
    if (found && !found.classList.contains('target')) {
      found.classList.add('target');
      found.scrollIntoView({ block: 'center' });
      found.focus({ preventScroll: true });
    }
  };
  const stillHere = (): boolean => location.hash.includes(encoded);
  if (firstPage.total === 0) messages.append(h('p', { class: 'muted' }, 'No messages yet.'));
  for (let page = firstPage; ; ) {
    for (let at = 0; at < page.messages.length && stillHere(); at += SLICE) {
      if (at > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      const slice = page.messages.slice(at, at + SLICE);
      const contents = renderMarkdownMany(slice.map((m) => m.content));
      messages.append(...slice.map((m, k) => messageView(m, session.id, files, personas, contents[k])));
      showTarget();
    }
    if (page.nextCursor === null || !stillHere()) break;
    page = await api<MessagePage>('GET', `/sessions/${encoded}/messages?${new URLSearchParams({ limit: String(PAGE), cursor: page.nextCursor }).toString()}`);
  }
};
