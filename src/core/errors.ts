/**
 * The one catalogue of Memex errors. Every error a caller can see carries a stable `code` from this
 * list, the HTTP status the server answers with, a human message, a hint that says what to do next,
 * and the native `cause` where there is one. Tests and callers branch on `code`, never on `message`.
 */
const catalogue = {
  MEMEX_INVALID_ID: { status: 400, hint: 'Ids are 1-128 characters of letters, digits, ".", "_" or "-", with no "..", "/", "\\" or NUL.' },
  MEMEX_INVALID_INPUT: { status: 400, hint: 'Check the fields named in the message against the documented schema.' },
  MEMEX_INVALID_CURSOR: { status: 400, hint: 'Pass back the cursor exactly as the previous page returned it, or page with an offset.' },
  MEMEX_MESSAGE_TOO_LARGE: { status: 413, hint: 'Split the content, or raise limits.maxMessageChars in the config.' },
  MEMEX_FILE_TOO_LARGE: { status: 413, hint: 'Raise limits.maxFileBytes in the config if the file is expected.' },
  MEMEX_CONFIG_INVALID: { status: 500, hint: 'Fix the named setting in memex.config.json or the MEMEX_* environment variable.' },
  MEMEX_USER_NOT_FOUND: { status: 404, hint: 'Create it first (`memex user add <id>`), or check the id with `memex user list`.' },
  MEMEX_USER_EXISTS: { status: 409, hint: 'Pick another id, or use the existing user.' },
  MEMEX_USER_CORRUPT: { status: 500, hint: "The user's profile.json cannot be read; restore it from a backup or fix the JSON by hand." },
  MEMEX_SESSION_NOT_FOUND: { status: 404, hint: 'List sessions with `memex session list`.' },
  MEMEX_SESSION_ARCHIVED: { status: 409, hint: 'The session is archived: its messages, files and vectors are compressed and out of search. Unarchive it first (`memex session unarchive <id>`, `POST /v1/sessions/<id>/unarchive`).' },
  MEMEX_SESSION_NOT_ARCHIVED: { status: 409, hint: 'The session is not archived: read its messages, files and vectors directly.' },
  MEMEX_SESSION_CORRUPT: { status: 500, hint: "One of the session's files cannot be read; the message says which and where. Other sessions are unaffected." },
  MEMEX_MESSAGE_NOT_FOUND: { status: 404, hint: 'List messages with `memex messages --session <id>`.' },
  MEMEX_MESSAGE_EXISTS: { status: 409, hint: 'A message with this id is already stored: a retried append already succeeded, so treat it as done (or send a new id).' },
  MEMEX_PERSONA_NOT_FOUND: { status: 404, hint: 'List personas with `memex persona list`.' },
  MEMEX_PERSONA_EXISTS: { status: 409, hint: 'Persona ids and names (ignoring case) are unique per user: pick another, or update the existing persona.' },
  MEMEX_PERSONA_CORRUPT: { status: 500, hint: "The persona's JSON file cannot be read; fix or delete it." },
  MEMEX_FILE_TYPE_UNSUPPORTED: { status: 415, hint: 'Memex ingests PDFs and PNG, JPEG, GIF, WebP and TIFF images; the type is read from the bytes, not the name.' },
  MEMEX_PDF_ENCRYPTED: { status: 422, hint: 'The PDF is password-protected: pass its password (`memex ingest --password <p>`, or `password` in the options).' },
  MEMEX_PDF_PASSWORD_INCORRECT: { status: 422, hint: 'The password does not open this PDF; check it (passwords are case-sensitive and may hold non-ASCII characters).' },
  MEMEX_PDF_INVALID: { status: 422, hint: 'The PDF is damaged beyond what the parser can recover; re-export or repair it (for example `qpdf in.pdf out.pdf`) and ingest again.' },
  MEMEX_IMAGE_INVALID: { status: 422, hint: 'The image cannot be decoded (corrupt or not really an image); re-save it and ingest again.' },
  MEMEX_IMAGE_TOO_LARGE: { status: 413, hint: 'The image is larger than ingest.maxImagePixels / ingest.maxImageSide allow; downscale it, or raise the limits in the config if it is expected.' },
  MEMEX_TEXT_INVALID: { status: 422, hint: 'A text document (.txt, .md, .html, .json) must be UTF-8 without NUL bytes; convert it (for example `iconv -t UTF-8`) and ingest it again.' },
  MEMEX_TEXT_TOO_LARGE: { status: 413, hint: 'The text document has more characters than ingest.maxTextChars allows; split it, or raise the limit in the config.' },
  MEMEX_TOO_MANY_PAGES: { status: 413, hint: 'The file has more pages than ingest.maxPages allows; split it, or raise the limit in the config.' },
  MEMEX_OCR_UNAVAILABLE: { status: 503, hint: 'OCR could not start: reinstall dependencies (`npm ci`) so tesseract.js and @tesseract.js-data/eng are present.' },
  MEMEX_CONTEXT_BUDGET_TOO_SMALL: { status: 422, hint: 'Raise the budget (the model\'s context length), lower the reply reserve (context.replyTokens), or shorten the system prompt or persona.' },
  MEMEX_NOTE_NOT_FOUND: { status: 404, hint: 'List the user\'s notes with `memex note list`.' },
  MEMEX_NOTE_EXISTS: { status: 409, hint: 'A note with this id already exists: update it instead, or pick another id.' },
  MEMEX_FILE_NOT_FOUND: { status: 404, hint: 'Add the file to the session first; attachments refer to files by their sha256 id.' },
  MEMEX_UNAUTHORIZED: { status: 401, hint: 'Send `Authorization: Bearer <key>` with a key from `memex keys create --user <id>`.' },
  MEMEX_FORBIDDEN: { status: 403, hint: 'Use an admin key for this route (`memex keys create --user <id> --admin`); the /v1/admin routes are only for the CLI on the machine that owns the data dir.' },
  MEMEX_RATE_LIMITED: { status: 429, hint: 'Slow down: wait for the seconds in Retry-After, or raise server.rateLimit in the config.' },
  MEMEX_ROUTE_NOT_FOUND: { status: 404, hint: 'See the routes in the OpenAPI document at /v1/openapi.json.' },
  MEMEX_JOB_NOT_FOUND: { status: 404, hint: 'Jobs are kept for a day after they finish; upload the file again to start a new one.' },
  MEMEX_JOB_PASSWORD_LOST: { status: 422, hint: "The encrypted PDF's password was kept only in the memory of the server instance that took the upload, and that instance stopped before the job ran: upload the file again with its password." },
  MEMEX_JOB_INTERRUPTED: { status: 500, hint: 'The job was started several times and its server instance stopped each time (a crash or a kill mid-ingest): check the servers\' logs and memory limits, then upload the file again.' },
  MEMEX_IMPORT_INTERRUPTED: { status: 500, hint: "The server instance running this import stopped (a restart or a crash). What it had imported is kept and listed by `memex import list`; upload the export again: importing is idempotent and adds only what is missing." },
  MEMEX_KEY_NOT_FOUND: { status: 404, hint: 'List keys with `memex keys list`.' },
  MEMEX_BODY_TOO_LARGE: { status: 413, hint: 'Send a smaller body, or raise server.bodyLimit in the config (uploads: limits.maxFileBytes).' },
  MEMEX_CONTENT_TYPE_UNSUPPORTED: { status: 415, hint: 'Send JSON as application/json, and files as multipart/form-data with one part named "file".' },
  MEMEX_REQUEST_TIMEOUT: { status: 408, hint: 'Send the whole request within server.requestTimeoutMs (raise it in the config for slow links or large uploads).' },
  MEMEX_HEADERS_TOO_LARGE: { status: 431, hint: 'Send fewer or shorter headers (Node allows 16 KiB of headers).' },
  MEMEX_KEYS_UNREADABLE: {
    status: 503,
    hint: "The data dir's api_keys.json cannot be read, so no API key can be checked. Restore it from a backup, or move it aside and make new keys with `memex keys create --user <id>`; a running server takes up the fixed file within a second.",
  },
  MEMEX_SHUTTING_DOWN: { status: 503, hint: 'The server is stopping; retry against the restarted server.' },
  MEMEX_DATA_DIR_LOCKED: { status: 503, hint: 'Another process is using this data dir. Wait for it, stop it, or talk to it over its HTTP API.' },
  MEMEX_DATA_DIR_INVALID: { status: 500, hint: 'Point --data-dir / MEMEX_DATA_DIR at a Memex data dir, or at an empty or missing folder to create one.' },
  MEMEX_FORMAT_UNSUPPORTED: { status: 500, hint: 'This data was written by a newer Memex; upgrade Memex to read it.' },
  MEMEX_DATASET_NOT_FOUND: { status: 404, hint: '`memex bench --dataset locomo` and `msmarco` read the eval sets in place from MEMEX_EVAL_DIR (default ../shared/eval beside the Memex folder): point MEMEX_EVAL_DIR at them, name the file (`--dataset locomo:/path/locomo10.json`), or bench `--dataset synthetic:10000`.' },
  MEMEX_MODEL_MISMATCH: { status: 409, hint: 'The data dir was embedded with another model. Run `memex reindex` to re-embed everything with the configured model, or set MEMEX_MODEL / MEMEX_MODEL_DIR back to the recorded one.' },
  MEMEX_MODEL_UNAVAILABLE: { status: 503, hint: 'Set MEMEX_MODEL_DIR to a local transformers.js model folder (and MEMEX_MODEL to its id), or run once with internet access so the model downloads to the cache.' },
  MEMEX_INDEX_UNAVAILABLE: { status: 503, hint: "hnswlib-node's native addon is missing: run `npm rebuild hnswlib-node` (npm 11 skips install scripts unless the package is approved: `npm install-scripts approve hnswlib-node`)." },
  MEMEX_INDEX_CORRUPT: { status: 500, hint: 'The search index is a cache: Memex rebuilds it from the session files. Run `memex doctor` to rebuild it now.' },
  MEMEX_ABORTED: { status: 499, hint: 'The operation was cancelled by its caller; nothing partial was kept. Run it again to finish.' },
  MEMEX_STORE_CLOSED: { status: 500, hint: 'Open a new Memex instance; this one was closed.' },
  MEMEX_DISK_FULL: { status: 507, hint: 'The disk (or the quota) holding the data dir is full; nothing was half-written. Free space, then retry.' },
  MEMEX_IO: { status: 500, hint: 'The file system refused an operation; see the cause (disk full, permissions, ...).' },
  MEMEX_USAGE: { status: 400, hint: 'The command was used wrongly; run it with --help for its options and arguments.' },
  MEMEX_PATH_NOT_FOUND: { status: 400, hint: 'No file is at that path; check it (relative paths start in the current folder).' },
  MEMEX_PERSONA_AMBIGUOUS: { status: 409, hint: 'Several personas have that name; name the persona by its id (see `memex persona list`).' },
  MEMEX_DATABASE_UNAVAILABLE: { status: 503, hint: 'Check the database URL (postgres://user:password@host:port/database), that PostgreSQL is running and reachable from here, and that the user may log in.' },
  MEMEX_PGVECTOR_MISSING: { status: 503, hint: 'Install pgvector (>= 0.7) on the PostgreSQL server, or have an administrator run `CREATE EXTENSION vector` in the database.' },
  MEMEX_SCHEMA_NEWER: { status: 500, hint: 'The database was migrated by a newer Memex; upgrade Memex to use it (migrations never go backwards).' },
  MEMEX_MIGRATION_CONFLICT: { status: 409, hint: 'The target already holds different data where the copy would go (say, another history for the same session id); migrate into an empty target, or delete that user or session there first.' },
  MEMEX_MIGRATION_MISMATCH: { status: 500, hint: 'The copy differs from the source after migrating (the details name each session and what differs); nothing was deleted from the source. Check that nothing else writes to the target, then run the migration again into an empty target.' },
  MEMEX_IMPORT_FORMAT_UNKNOWN: { status: 415, hint: 'Memex imports ChatGPT conversations.json, Claude exports (conversations, projects, memories, users), Google Takeout Gemini "My Activity" JSON and Memex session exports, as JSON or in the ZIP the service sent; name the source with --source if detection fails.' },
  MEMEX_IMPORT_INVALID: { status: 422, hint: 'The export is not valid JSON of its kind (truncated or damaged download?); download the export again. Nothing was imported from this file.' },
  MEMEX_ARCHIVE_UNSAFE: { status: 422, hint: 'The ZIP was refused before anything was extracted (too many entries, too large once uncompressed, an extreme compression ratio, or a path outside the archive); use the ZIP exactly as the service delivered it.' },
  MEMEX_SESSION_READ_ONLY: { status: 409, hint: 'Imported conversations are kept as they were exported; start a new session to continue the conversation, or delete the import.' },
  MEMEX_IMPORT_NOT_FOUND: { status: 404, hint: 'List the imports with `memex import list` (GET /v1/imports).' },
  MEMEX_LLM_NOT_CONFIGURED: { status: 503, hint: 'No chat model is configured: set `llm.baseUrl` (the server\'s OpenAI-compatible `.../v1` URL) and `llm.model` in memex.config.json, or MEMEX_LLM_BASE_URL and MEMEX_LLM_MODEL (and MEMEX_LLM_API_KEY when the server needs a key).' },
  MEMEX_LLM_UNAVAILABLE: { status: 502, hint: 'The chat model\'s server could not be reached or failed (the details give its status); check that it is running at llm.baseUrl, then retry.' },
  MEMEX_LLM_RATE_LIMITED: { status: 429, hint: 'The chat model\'s server kept answering 429 (rate limit or quota); wait and retry, or raise llm.maxRetries.' },
  MEMEX_LLM_TIMEOUT: { status: 504, hint: 'The chat model did not answer in time (llm.timeoutMs before its first byte, llm.idleTimeoutMs between streamed chunks); raise them for slow models.' },
  MEMEX_LLM_BAD_RESPONSE: { status: 502, hint: 'The chat model\'s server answered something that is not the OpenAI Chat Completions format; check that llm.baseUrl points at its OpenAI-compatible `/v1` API.' },
  MEMEX_LLM_REFUSED: { status: 502, hint: 'The chat model\'s server refused the request (details.upstreamStatus: 401/403 a wrong or missing MEMEX_LLM_API_KEY, 404 an unknown llm.model, 400 a request it does not accept); its own message is in the error.' },
  MEMEX_MERGE_CONFLICT: { status: 409, hint: 'Two of the sessions hold a message with the same id but different content (the details name it); a fork and its source share their common turns, other sessions must not reuse ids. Merge the others, or delete one of the two messages first.' },
  MEMEX_BACKUP_INVALID: { status: 422, hint: 'The backup is damaged or was changed after it was made (a checksum, an entry or the manifest does not match); nothing was restored. Use an intact copy of the backup.' },
  MEMEX_BACKUP_CONFLICT: { status: 409, hint: 'The user the backup restores into already holds data; restore with --replace (`?replace=true`) to replace it, or restore under another id with --as-user.' },
  MEMEX_SESSION_TRASHED: { status: 409, hint: 'The session is in the trash; restore it (`memex trash restore <id>`, POST /v1/sessions/<id>/restore) before using it.' },
  MEMEX_NOT_IN_TRASH: { status: 404, hint: 'List the trash with `memex trash list` (GET /v1/trash); items are purged after trash.retentionDays.' },
  MEMEX_RERANK_FAILED: { status: 502, hint: 'The reranker passed to Memex (the `reranker` option) threw or rejected; its error is the cause. Fix the reranker, or search without it (`reranker: null`).' },
  MEMEX_RERANK_INVALID: { status: 502, hint: 'The reranker must return some of the hits it was handed (each at most once, by sessionId and chunkId), best first, with finite scores if any; it returned something else (the details say where).' },
  MEMEX_INTERNAL: { status: 500, hint: 'This is a bug in Memex; please report it with the message and cause.' },
} as const satisfies Record<string, { status: number; hint: string }>;

export type MemexErrorCode = keyof typeof catalogue;

export const errorCodes = Object.freeze(Object.keys(catalogue) as MemexErrorCode[]);

export interface MemexErrorOptions {
  cause?: unknown;
  /** Machine-readable facts about the failure (ids, paths, line numbers); safe to show the caller. */
  details?: Record<string, unknown>;
}

export class MemexError extends Error {
  override readonly name = 'MemexError';
  readonly code: MemexErrorCode;
  readonly statusCode: number;
  readonly hint: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: MemexErrorCode, message: string, options: MemexErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = catalogue[code].status;
    this.hint = catalogue[code].hint;
    this.details = Object.freeze({ ...options.details });
  }

  toJSON(): { code: MemexErrorCode; message: string; hint: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

export function isMemexError(value: unknown, code?: MemexErrorCode): value is MemexError {
  return value instanceof MemexError && (code === undefined || value.code === code);
}

/** Node's error codes that mean "the file system said no", mapped to MEMEX_IO. */
function isSystemError(value: unknown): value is NodeJS.ErrnoException {
  return value instanceof Error && typeof (value as NodeJS.ErrnoException).code === 'string';
}

/** MEMEX_DISK_FULL for "no space" (and quota) errors, which a caller can act on; MEMEX_IO otherwise. */
export function ioCode(errno: string | undefined): 'MEMEX_DISK_FULL' | 'MEMEX_IO' {
  return errno === 'ENOSPC' || errno === 'EDQUOT' ? 'MEMEX_DISK_FULL' : 'MEMEX_IO';
}

/** Wraps anything thrown into a MemexError, keeping the original as `cause`. */
export function toMemexError(value: unknown, context = 'operation failed'): MemexError {
  if (value instanceof MemexError) return value;
  if (isSystemError(value)) {
    return new MemexError(ioCode(value.code), `${context}: ${value.code ?? 'EIO'} ${value.message}`, {
      cause: value,
      details: { errno: value.code, path: value.path },
    });
  }
  const message = value instanceof Error ? value.message : String(value);
  return new MemexError('MEMEX_INTERNAL', `${context}: ${message}`, { cause: value });
}
