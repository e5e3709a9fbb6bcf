/** Hash routes: `#/` sessions, `#/s/<id>?m=<message>` a session, `#/search?q=` search across sessions, `#/notes` notes and personas, `#/import` an import. */
export type View = (root: HTMLElement, ...args: string[]) => Promise<void>;

export function path(): string {
  return location.hash.slice(1).split('?')[0] || '/';
}

export function params(): URLSearchParams {
  const hash = location.hash.slice(1);
  const at = hash.indexOf('?');
  return new URLSearchParams(at < 0 ? '' : hash.slice(at + 1));
}

/** Goes to a route; `replace` keeps the history entry (a changed filter is not a new page). */
export function go(hash: string, replace = false): void {
  if (replace) {
    history.replaceState(null, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}
