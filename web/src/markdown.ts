import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c] ?? c);

// Raw HTML in a message is shown as the text it is: `<img onerror>` or `<script>` is never an element.
const marked = new Marked({ gfm: true, breaks: true, async: false, renderer: { html: ({ text }) => escape(text) } });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

/** marked's HTML, without the newline it ends blocks with (a stray text node after the last one). */
const html = (text: string): string => (marked.parse(text) as string).trim();

const PURIFY = { RETURN_DOM_FRAGMENT: true as const, FORBID_TAGS: ['img', 'style', 'form', 'input', 'button'], FORBID_ATTR: ['style'] };

/**
 * A message's Markdown as safe DOM: marked renders it (raw HTML escaped), DOMPurify then removes
 * whatever could still run (a `javascript:` link, an event attribute) and images from elsewhere.
 */
export function renderMarkdown(text: string): DocumentFragment {
  return DOMPurify.sanitize(html(text), PURIFY);
}

/**
 * Many messages at once, one sanitising pass for all (DOMPurify's cost is mostly per call: a
 * 1,000-message session drew in 1.2 s one by one). Each message's HTML goes in its own <section>:
 * marked's output is balanced and raw HTML in it is escaped, so no message can close another's.
 * Should the pass ever answer other than one section per message, each is done on its own.
 */
export function renderMarkdownMany(texts: readonly string[]): DocumentFragment[] {
  const sections = [...DOMPurify.sanitize(texts.map((text) => `<section>${html(text)}</section>`).join(''), PURIFY).children];
  if (sections.length !== texts.length || sections.some((section) => section.tagName !== 'SECTION')) return texts.map(renderMarkdown);
  return sections.map((section) => {
    const fragment = document.createDocumentFragment();
    fragment.append(...section.childNodes);
    return fragment;
  });
}
