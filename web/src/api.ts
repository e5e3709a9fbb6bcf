/** The public HTTP API, called with the signed-in key (or none, behind a gateway that names the user). */
const KEY = 'memex.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What went wrong, for a person: an API problem's code and message, else the error's message. */
export function problemText(cause: unknown): string {
  if (cause instanceof ApiError) return `${cause.code}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, key);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = storedKey();
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

async function failure(response: Response): Promise<ApiError> {
  const problem = (await response.json().catch(() => null)) as { code?: string; detail?: string; title?: string; hint?: string } | null;
  const message = problem?.detail ?? problem?.title ?? response.statusText;
  return new ApiError(response.status, problem?.code ?? `HTTP_${response.status}`, problem?.hint ? `${message}. ${problem.hint}` : message);
}

/** Calls `/v1<path>`; answers the JSON body (or null for 204), or throws an ApiError with the problem's code. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`/v1${path}`, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw await failure(response);
  return (response.status === 204 ? null : await response.json()) as T;
}

/** A binary answer (a thumbnail, an export, a file's original). */
export async function blob(path: string): Promise<Blob> {
  const response = await fetch(`/v1${path}`, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return response.blob();
}

/** Uploads files (as parts named `file`, after `fields`) with progress of the bytes sent; answers the upload's JSON. */
export function upload<T>(path: string, files: File[], onProgress: (sent: number, total: number) => void, fields: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', `/v1${path}`);
    for (const [name, value] of Object.entries(headers())) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => onProgress(event.loaded, event.total);
    request.onerror = () => reject(new ApiError(0, 'NETWORK', 'the upload could not reach the server'));
    request.onload = () => {
      const body = JSON.parse(request.responseText || 'null') as { code?: string; detail?: string } | null;
      if (request.status >= 200 && request.status < 300) resolve(body as T);
      else reject(new ApiError(request.status, body?.code ?? `HTTP_${request.status}`, body?.detail ?? request.statusText));
    };
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    for (const file of files) form.append('file', file, file.name);
    request.send(form);
  });
}

/**
 * Follows a server-sent event stream (EventSource cannot send the Authorization header), calling
 * `onEvent` with each event's name and JSON data until the stream ends or `signal` aborts. A POST
 * with `body` streams too (the chat endpoint).
 */
export async function events(path: string, onEvent: (name: string, data: unknown) => void, options: { body?: unknown; signal?: AbortSignal } = {}): Promise<void> {
  const post = options.body !== undefined;
  const response = await fetch(`/v1${path}`, {
    method: post ? 'POST' : 'GET',
    headers: headers({ accept: 'text/event-stream', ...(post ? { 'content-type': 'application/json' } : {}) }),
    ...(post ? { body: JSON.stringify(options.body) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!response.ok || !response.body) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) onEvent(name, JSON.parse(data.join('\n')) as unknown);
    }
  }
}

/** Saves a blob under a file name, as a download. */
export function download(data: Blob, name: string): void {
  const url = URL.createObjectURL(data);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
