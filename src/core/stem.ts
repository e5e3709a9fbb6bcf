/**
 * The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping", 1980), with the two small
 * revisions of Porter's own reference implementation (`bli` → `ble`, `logi` → `log`). It strips
 * English inflections and derivations so that "researching", "researched" and "researcher's" meet
 * "research" in the lexical index. It maps words to stems, not to words ("happiness" → "happi"):
 * chunks and queries go through it alike, so only equality matters.
 *
 * Only lowercase ASCII words longer than two letters are stemmed; anything else (numbers, names in
 * other scripts, "x2") is returned unchanged.
 */

/** Whether `word[i]` is a consonant: not a vowel, and `y` only when it follows a vowel or starts the word. */
function consonant(word: string, i: number): boolean {
  const c = word[i];
  if (c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u') return false;
  return c !== 'y' || i === 0 || !consonant(word, i - 1);
}

/** Porter's m: the number of vowel-consonant sequences in `stem` ([C](VC)^m[V]). */
function measure(stem: string): number {
  let m = 0;
  let i = 0;
  while (i < stem.length && consonant(stem, i)) i++;
  while (i < stem.length) {
    while (i < stem.length && !consonant(stem, i)) i++;
    if (i >= stem.length) break;
    m++;
    while (i < stem.length && consonant(stem, i)) i++;
  }
  return m;
}

function hasVowel(stem: string): boolean {
  for (let i = 0; i < stem.length; i++) if (!consonant(stem, i)) return true;
  return false;
}

/** Ends in a double consonant ("-tt", "-ss"). */
function doubleConsonant(word: string): boolean {
  const n = word.length;
  return n >= 2 && word[n - 1] === word[n - 2] && consonant(word, n - 1);
}

/** Ends consonant-vowel-consonant, the last not w, x or y ("hop", not "snow"): the *o condition. */
function cvc(word: string): boolean {
  const n = word.length;
  if (n < 3 || !consonant(word, n - 1) || consonant(word, n - 2) || !consonant(word, n - 3)) return false;
  const last = word[n - 1];
  return last !== 'w' && last !== 'x' && last !== 'y';
}

type Rule = readonly [suffix: string, replacement: string];

/** Replaces the first matching suffix when the remaining stem passes `when`; a matched suffix stops the search. */
function applyRules(word: string, rules: readonly Rule[], when: (stem: string, suffix: string) => boolean): string {
  for (const [suffix, replacement] of rules) {
    if (!word.endsWith(suffix)) continue;
    const stem = word.slice(0, word.length - suffix.length);
    return when(stem, suffix) ? stem + replacement : word;
  }
  return word;
}

// Longest suffixes first where one ends another ("ational" before "tional").
const STEP2: readonly Rule[] = [
  ['ational', 'ate'], ['tional', 'tion'], ['enci', 'ence'], ['anci', 'ance'], ['izer', 'ize'], ['bli', 'ble'], ['alli', 'al'],
  ['entli', 'ent'], ['eli', 'e'], ['ousli', 'ous'], ['ization', 'ize'], ['ation', 'ate'], ['ator', 'ate'], ['alism', 'al'],
  ['iveness', 'ive'], ['fulness', 'ful'], ['ousness', 'ous'], ['aliti', 'al'], ['iviti', 'ive'], ['biliti', 'ble'], ['logi', 'log'],
];
const STEP3: readonly Rule[] = [['icate', 'ic'], ['ative', ''], ['alize', 'al'], ['iciti', 'ic'], ['ical', 'ic'], ['ful', ''], ['ness', '']];
const STEP4 = ['al', 'ance', 'ence', 'er', 'ic', 'able', 'ible', 'ant', 'ement', 'ment', 'ent', 'ion', 'ou', 'ism', 'ate', 'iti', 'ous', 'ive', 'ize'];
// Step 4 matches the longest suffix: "ement" before "ment" before "ent".
const STEP4_RULES: readonly Rule[] = [...STEP4].sort((a, b) => b.length - a.length).map((suffix) => [suffix, ''] as const);

export function stem(word: string): string {
  if (word.length <= 2 || !/^[a-z]+$/.test(word)) return word;
  let w = word;

  // Step 1a: plurals.
  if (w.endsWith('sses') || w.endsWith('ies')) w = w.slice(0, -2);
  else if (w.endsWith('s') && !w.endsWith('ss')) w = w.slice(0, -1);

  // Step 1b: -eed, -ed, -ing.
  if (w.endsWith('eed')) {
    if (measure(w.slice(0, -3)) > 0) w = w.slice(0, -1);
  } else {
    const suffix = w.endsWith('ed') ? 2 : w.endsWith('ing') ? 3 : 0;
    if (suffix > 0 && hasVowel(w.slice(0, -suffix))) {
      w = w.slice(0, -suffix);
      if (w.endsWith('at') || w.endsWith('bl') || w.endsWith('iz')) w += 'e';
      else if (doubleConsonant(w) && !/[lsz]$/.test(w)) w = w.slice(0, -1);
      else if (measure(w) === 1 && cvc(w)) w += 'e';
    }
  }

  // Step 1c: y → i after a vowel-bearing stem ("happy" → "happi").
  if (w.endsWith('y') && hasVowel(w.slice(0, -1))) w = `${w.slice(0, -1)}i`;

  // Steps 2-4: derivational suffixes, each only when enough of the word remains.
  w = applyRules(w, STEP2, (s) => measure(s) > 0);
  w = applyRules(w, STEP3, (s) => measure(s) > 0);
  w = applyRules(w, STEP4_RULES, (s, suffix) => measure(s) > 1 && (suffix !== 'ion' || s.endsWith('s') || s.endsWith('t')));

  // Step 5: a final -e, and -ll → -l, on long enough stems.
  if (w.endsWith('e')) {
    const s = w.slice(0, -1);
    const m = measure(s);
    if (m > 1 || (m === 1 && !cvc(s))) w = s;
  }
  if (w.endsWith('ll') && measure(w) > 1) w = w.slice(0, -1);
  return w;
}
