// Unit tests of wasmproc.js outside a component (plain Node, the host
// interface stubbed by register.mjs): run from guest-sdk/js with
// `node --import ./test/register.mjs --test test/wasmproc.test.mjs`.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { calls } from './host.mjs';
import { Inputs, Output, ProcessError, decodeBase64, defineProcess, log, progress } from '../wasmproc.js';

beforeEach(() => {
  calls.length = 0;
});

/** The ProcessError `f` throws, as `[code, message]`. */
function refusal(f) {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ProcessError, `not a ProcessError: ${e}`);
    return [e.code, e.message];
  }
  assert.fail('nothing was thrown');
}

test('typed inputs unwrap qualified values and fall back when absent', () => {
  const inputs = new Inputs({ a: { value: 'x', mediaType: 'text/plain' }, b: 'y', n: 2.5, z: null });
  assert.equal(inputs.requiredString('a'), 'x');
  assert.equal(inputs.requiredString('b'), 'y');
  assert.equal(inputs.requiredNumber('n'), 2.5);
  assert.equal(inputs.optionalString('missing', 'd'), 'd');
  assert.equal(inputs.optionalNumber('z', 7), 7);
  assert.equal(inputs.optionalNumber('missing'), undefined);
  assert.deepEqual(inputs.required('a'), 'x');
});

test('typed inputs refuse what is missing or of another type, naming the input', () => {
  const inputs = new Inputs({ s: 'x', n: 3, t: true, z: null });
  assert.deepEqual(refusal(() => inputs.required('z')), ['invalid-input', "input 'z' is required"]);
  assert.deepEqual(refusal(() => inputs.requiredString('missing')), ['invalid-input', "input 'missing' is required"]);
  assert.deepEqual(refusal(() => inputs.requiredNumber('missing')), ['invalid-input', "input 'missing' is required"]);
  assert.deepEqual(refusal(() => inputs.requiredString('n')), ['invalid-input', "input 'n' must be a string, got 3"]);
  assert.deepEqual(refusal(() => inputs.optionalNumber('s')), ['invalid-input', 'input \'s\' must be a number, got "x"']);
  assert.deepEqual(refusal(() => inputs.requiredNumber('t')), ['invalid-input', "input 't' must be a number, got true"]);
});

test('inputs must be a JSON object', () => {
  assert.deepEqual(refusal(() => Inputs.fromJson('[1]')), ['invalid-input', 'inputs must be a JSON object']);
  assert.equal(refusal(() => Inputs.fromJson('not json'))[0], 'invalid-input');
});

test('binary inputs decode base64 and keep their media type', () => {
  const inputs = new Inputs({ img: { value: 'AAEC', mediaType: 'image/png' }, raw: 'AAE=', bad: '%%' });
  assert.deepEqual(inputs.binary('img'), { data: Uint8Array.from([0, 1, 2]), mediaType: 'image/png' });
  assert.deepEqual(inputs.binary('raw').data, Uint8Array.from([0, 1]));
  assert.equal(inputs.binary('none'), undefined);
  assert.deepEqual(refusal(() => inputs.binary('bad')), ['invalid-input', "input 'bad' is not base64"]);
  assert.deepEqual(decodeBase64(' aGk=\n'), Uint8Array.from([104, 105]));
});

test('outputs carry JSON text or bytes', () => {
  assert.deepEqual(Output.json('a', { k: [1] }).value, { tag: 'json', val: '{"k":[1]}' });
  assert.deepEqual(Output.bytes('b', 'é', 'text/plain').value, { tag: 'bytes', val: Uint8Array.from([0xc3, 0xa9]) });
  assert.throws(() => Output.json('f', () => 1), TypeError);
});

test('a process maps its results and errors to the WIT world', () => {
  const world = defineProcess({
    description: { id: 'echo-test' },
    execute(inputs) {
      if (inputs.has('fail')) throw ProcessError.noResult('asked to fail');
      if (inputs.has('boom')) throw new RangeError('out of range');
      progress(150, 'clamped');
      return { x: inputs.value('x') };
    },
  });
  assert.equal(world.describe(), '{"id":"echo-test"}');
  assert.deepEqual(world.execute('{"x": "y"}'), [{ id: 'x', mediaType: undefined, value: { tag: 'json', val: '"y"' } }]);
  assert.deepEqual(calls, [['progress', 100, 'clamped']]);
  assert.throws(() => world.execute('{"fail": 1}'), { code: 'no-result', message: 'asked to fail' });
  assert.throws(() => world.execute('{"boom": 1}'), { code: 'internal-error', message: 'RangeError: out of range' });
  assert.equal(calls.at(-1)[1], 'error');
});

test('log takes only the WIT levels', () => {
  log('info', 'hello');
  assert.deepEqual(calls, [['log', 'info', 'hello']]);
  assert.throws(() => log('loud', 'no such level'), TypeError);
});
