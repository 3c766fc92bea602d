import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { StopMatcher } from '../../src/generate/stop';

function stream(stops: string[], deltas: string[]): { out: string[]; stopped: boolean; rest: string } {
  const m = new StopMatcher(stops);
  const out = deltas.map((d) => m.push(d));
  return { out, stopped: m.stopped, rest: m.flush() };
}

test('a stop string split across chunks is never emitted', () => {
  const r = stream(['\nUser:'], ['Hello', ' there\nUs', 'er: more', ' ignored']);
  assert.deepEqual(r.out, ['Hello', ' there', '', '']);
  assert.equal(r.stopped, true);
  assert.equal(r.rest, '');
});

test('held-back text is released when it turns out not to be a stop', () => {
  const r = stream(['END'], ['abc E', 'N', 'x', 'yz E']);
  assert.deepEqual(r.out, ['abc ', '', 'ENx', 'yz ']);
  assert.equal(r.stopped, false);
  assert.equal(r.rest, 'E');
});

test('cuts at the earliest of several stop strings', () => {
  const r = stream(['world', 'lo w'], ['hel', 'lo world']);
  assert.deepEqual(r.out, ['he', 'l']); // the trailing "l" could start "lo w"
  assert.equal(r.stopped, true);
  assert.deepEqual(stream(['b', 'abc'], ['xabc']).out, ['x']);
});

test('one-character deltas', () => {
  const text = 'say <stop> now';
  const r = stream(['<stop>'], [...text]);
  assert.equal(r.out.join(''), 'say ');
  assert.equal(r.stopped, true);
});

test('no stop strings passes text straight through', () => {
  assert.deepEqual(stream([], ['a', 'b']).out, ['a', 'b']);
  assert.throws(() => new StopMatcher(['']), /must not be empty/);
});
