import { describe, expect, it } from 'vitest';
import { stem } from '../../src/index/stem.js';

describe('stem (Porter)', () => {
  it('stems the examples of Porter’s paper as the reference implementation does', () => {
    const cases: Record<string, string> = {
      caresses: 'caress', ponies: 'poni', ties: 'ti', caress: 'caress', cats: 'cat',
      feed: 'feed', agreed: 'agre', plastered: 'plaster', bled: 'bled', motoring: 'motor', sing: 'sing',
      conflated: 'conflat', troubled: 'troubl', sized: 'size', hopping: 'hop', tanned: 'tan', falling: 'fall',
      hissing: 'hiss', fizzed: 'fizz', failing: 'fail', filing: 'file', happy: 'happi', sky: 'sky',
      relational: 'relat', conditional: 'condit', rational: 'ration', digitizer: 'digit', differentli: 'differ',
      vietnamization: 'vietnam', predication: 'predic', operator: 'oper', feudalism: 'feudal', decisiveness: 'decis',
      hopefulness: 'hope', callousness: 'callous', formaliti: 'formal', sensitiviti: 'sensit', sensibiliti: 'sensibl',
      triplicate: 'triplic', formative: 'form', formalize: 'formal', electriciti: 'electr', electrical: 'electr',
      hopeful: 'hope', goodness: 'good', revival: 'reviv', allowance: 'allow', inference: 'infer', airliner: 'airlin',
      gyroscopic: 'gyroscop', adjustable: 'adjust', defensible: 'defens', irritant: 'irrit', replacement: 'replac',
      adjustment: 'adjust', dependent: 'depend', adoption: 'adopt', communism: 'commun', activate: 'activ',
      angulariti: 'angular', homologous: 'homolog', effective: 'effect', bowdlerize: 'bowdler', probate: 'probat',
      rate: 'rate', cease: 'ceas', controll: 'control', roll: 'roll', generalizations: 'gener', oscillators: 'oscil',
    };
    for (const [word, expected] of Object.entries(cases)) expect([word, stem(word)]).toEqual([word, expected]);
  });

  it('meets inflected forms of one word at one stem', () => {
    for (const word of ['research', 'researching', 'researched', 'researches']) expect(stem(word)).toBe('research');
    expect(stem('painting')).toBe(stem('paintings'));
    expect(stem('adopted')).toBe(stem('adoption'));
  });

  it('leaves short words, numbers and non-ASCII words alone', () => {
    for (const word of ['is', 'a', '2023', 'x2', 'café', 'naïve', '']) expect(stem(word)).toBe(word);
  });
});
