/**
 * The Multi-Session Chat set (../shared/eval/msc, session-3 test split) as evidence-retrieval
 * questions, built without a model and without either of Memex's retrievers.
 *
 * Each episode gives three sessions: previous_dialogs[0], previous_dialogs[1] and the episode's own
 * `dialog`; `perUser` episodes in a row go to one user (default 10, ~370 turns a user, near
 * LoCoMo's ~590), so a query searches other conversations' turns too. One episode a user leaves
 * ~37 turns, where recall@10 is near 1 in every mode and tells nothing. Previous dialogs' turns carry no speaker id; they alternate, Speaker 1
 * first (checked on the data: speaker 1's persona facts share ~2x more content words with the even
 * turns than the odd ones, and speaker 2's with the odd ones).
 *
 * Questions: every persona fact of previous_dialogs[i] for speaker s (annotators wrote them from
 * session i) is a query, used as written ("I own a Jeep."): turning it into a question needs a
 * model or hand rules that would be a second, unchecked source of error.
 *
 * Evidence: the turns of speaker s in session i that share at least two content words with the
 * fact, or one when the fact has fewer than three. Content words: lower-cased [a-z0-9]+ runs
 * (apostrophes dropped), minus a small stopword list below, then one crude suffix strip (-ing, -ed,
 * -es, -s, -ly, keeping at least three letters). Facts with no such turn are skipped.
 *
 * Where the rule is weak: evidence is found by word overlap with the query itself, so it leans
 * towards a lexical retriever (a turn that states a fact in other words, "I have a jeep" for
 * "I drive a Wrangler", is missed as evidence and counts against any retriever that finds it); a
 * turn that shares two incidental words is taken as evidence. Read MSC recall as "finds the turns
 * that say it in the same words" and compare modes knowing that.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MSC = fileURLToPath(new URL('../../../shared/eval/msc/msc_dialogue_session_3_test.jsonl', import.meta.url));

interface MscTurn {
  text: string;
  id?: string;
}
interface MscDialog {
  personas: [string[], string[]];
  dialog: MscTurn[];
}
interface MscEpisode extends MscDialog {
  previous_dialogs: MscDialog[];
}

/** One turn to ingest: `ref` names it in the evidence. */
export interface MscTurnDoc {
  ref: string;
  content: string;
}
export interface MscSession {
  user: string;
  title: string;
  /** Days from the user's first session, so sessions keep their order in time. */
  day: number;
  turns: MscTurnDoc[];
}
export interface MscQuestion {
  user: string;
  text: string;
  evidence: string[];
}

const STOPWORDS = new Set(
  ('i me my myself we our you your he she it its they them their a an the and or but if of at by for with about to from in on up ' +
    'out is am are was were be been being have has had do does did not no so too very can will just don t s m ve ll re d that this ' +
    'these those there here what which who whom when where why how all any both each few more most other some such only own same ' +
    'than then also really like get got go going one would could should much many lot lots love well yes yeah oh').split(' '),
);

function stem(word: string): string {
  for (const suffix of ['ing', 'ed', 'es', 's', 'ly']) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) return word.slice(0, -suffix.length);
  }
  return word;
}

/** The rule's content words of a text. */
export function contentWords(text: string): Set<string> {
  const words = text.toLowerCase().replace(/['’]/g, '').match(/[a-z0-9]+/g) ?? [];
  return new Set(words.filter((w) => w.length > 1 && !STOPWORDS.has(w)).map(stem));
}

/** Whether a turn states a fact, by the rule above. */
export function statesFact(fact: Set<string>, turn: Set<string>): boolean {
  let shared = 0;
  for (const word of fact) if (turn.has(word)) shared++;
  return shared >= (fact.size < 3 ? 1 : 2);
}

const speakerOf = (index: number): 0 | 1 => (index % 2 === 0 ? 0 : 1);

export function loadMsc(episodes: number, perUser = 10): { sessions: MscSession[]; questions: MscQuestion[] } | undefined {
  if (!existsSync(MSC)) return undefined;
  const all = readFileSync(MSC, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .slice(0, episodes)
    .map((line) => JSON.parse(line) as MscEpisode);
  const sessions: MscSession[] = [];
  const questions: MscQuestion[] = [];
  all.forEach((episode, e) => {
    const user = `msc-${perUser}-${Math.floor(e / perUser)}`;
    const episodeRef = `msc-${e}`;
    const dialogs = [...episode.previous_dialogs, episode];
    dialogs.forEach((dialog, d) => {
      sessions.push({
        user,
        title: `MSC episode ${e} session ${d + 1}`,
        day: (e % perUser) * dialogs.length + d,
        turns: dialog.dialog.map((turn, t) => ({ ref: `${episodeRef}/${d}/${t}`, content: `${turn.id ?? `Speaker ${speakerOf(t) + 1}`}: ${turn.text}` })),
      });
      // The current session's personas were written from it and the ones before; only the previous
      // dialogs' facts point at one session.
      if (d === dialogs.length - 1) return;
      const words = dialog.dialog.map((turn) => contentWords(turn.text));
      for (const speaker of [0, 1] as const) {
        for (const fact of dialog.personas[speaker]) {
          const factWords = contentWords(fact);
          const evidence = words.flatMap((turnWords, t) => (speakerOf(t) === speaker && statesFact(factWords, turnWords) ? [`${episodeRef}/${d}/${t}`] : []));
          if (evidence.length > 0) questions.push({ user, text: fact, evidence });
        }
      }
    });
  });
  return { sessions, questions };
}
