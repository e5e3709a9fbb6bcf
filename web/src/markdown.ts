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

/**
 * A message's Markdown as safe DOM: marked renders it (raw HTML escaped), DOMPurify then removes
 * whatever could still run (a `javascript:` link, an event attribute) and images from elsewhere.
 */
export function renderMarkdown(text: string): DocumentFragment {
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, { RETURN_DOM_FRAGMENT: true, FORBID_TAGS: ['img', 'style', 'form', 'input', 'button'], FORBID_ATTR: ['style'] });
}
