import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, memex } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// The hashed embedder: the commands are the point, not the model.
const hashed = { MEMEX_MODEL: 'hashed' };

interface Session {
  id: string;
  title: string | null;
  tags: string[];
  trashedAt: string | null;
}

describe('memex session tag|tags|search, session list --sort/--tag, trash', () => {
  it('tags, sorts, filters, searches, and moves to the trash and back', async () => {
    const env = { ...hashed, MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    const cooking = await json<Session>(['session', 'new', '--title', 'Cooking'], { env });
    const banking = await json<Session>(['session', 'new', '--title', 'Banking'], { env });
    await json(['add', '-s', cooking.id, 'sourdough starter needs feeding twice a day'], { env });
    const added = await json<{ id: string }>(['add', '-s', banking.id, 'the mortgage rate went up'], { env });

    expect((await json<Session>(['session', 'tag', cooking.id, 'food', 'home'], { env })).tags).toEqual(['food', 'home']);
    expect((await json<Session>(['session', 'tag', banking.id, 'home'], { env })).tags).toEqual(['home']);
    expect((await json<Session>(['session', 'untag', cooking.id, 'home'], { env })).tags).toEqual(['food']);
    expect(await json(['session', 'tags'], { env })).toEqual({ tags: [{ tag: 'food', sessions: 1 }, { tag: 'home', sessions: 1 }] });

    const byTitle = await json<{ sessions: Session[] }>(['session', 'list', '--sort', 'title', '--asc'], { env });
    expect(byTitle.sessions.map((s) => s.title)).toEqual(['Banking', 'Cooking']);
    expect((await json<{ sessions: Session[] }>(['session', 'list', '--tag', 'food'], { env })).sessions.map((s) => s.id)).toEqual([cooking.id]);
    const bad = await memex(['session', 'list', '--sort', 'size'], { env });
    expect(bad.code).toBe(2);

    const found = await json<{ sessions: { session: Session }[] }>(['session', 'search', 'sourdough', 'starter'], { env });
    expect(found.sessions[0]?.session.id).toBe(cooking.id);

    expect(await json(['message', 'rm', added.id, '-s', banking.id], { env })).toMatchObject({ deleted: true, purged: false });
    expect(await json(['session', 'rm', cooking.id], { env })).toMatchObject({ deleted: true, purged: false });
    expect((await memex(['session', 'rm', banking.id, '--purge'], { env })).stdout).toContain(`Deleted session ${banking.id}`);
    const trash = await json<{ sessions: Session[]; messages: unknown[] }>(['trash', 'list'], { env });
    expect(trash.sessions.map((s) => s.id)).toEqual([cooking.id]);
    // The message went with its session, purged.
    expect(trash.messages).toEqual([]);
    expect((await json<{ sessions: Session[] }>(['session', 'list'], { env })).sessions).toEqual([]);

    expect(await json<Session>(['trash', 'restore', cooking.id], { env })).toMatchObject({ id: cooking.id, trashedAt: null });
    expect((await json<{ sessions: Session[] }>(['session', 'list'], { env })).sessions.map((s) => s.id)).toEqual([cooking.id]);
    const again = await memex(['trash', 'restore', cooking.id, '--json'], { env });
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr).error.code).toBe('MEMEX_NOT_IN_TRASH');

    const note = await json<{ id: string }>(['add', '-s', cooking.id, 'rye flour works too'], { env });
    await json(['message', 'rm', note.id, '-s', cooking.id], { env });
    expect((await json<{ messages: { message: { id: string } }[] }>(['trash', 'list'], { env })).messages.map((m) => m.message.id)).toEqual([note.id]);
    expect(await json(['trash', 'restore', note.id], { env })).toMatchObject({ id: note.id });
    await json(['session', 'rm', cooking.id], { env });
    expect(await json(['trash', 'empty'], { env })).toEqual({ sessions: [cooking.id], messages: [] });
    expect((await memex(['trash', 'list'], { env })).stdout).toContain('The trash is empty.');
  }, 180_000);
});
