// A wasmproc process in JavaScript: copy this folder and edit.
//
// Build: ./build.sh   (writes FOLDER.wasm here, FOLDER being this folder's name)
//
// './sdk/wasmproc.js' is the SDK wherever it is: build.sh puts the SDK's
// wasmproc.js there in a staging copy of this folder before bundling.
import { defineProcess, log, Output, progress, ProcessError } from './sdk/wasmproc.js';

export const { describe, execute } = defineProcess({
  // The OGC process description: the host validates every request's
  // inputs against these JSON Schemas before `execute` runs.
  description: {
    id: 'my-process',
    version: '0.1.0',
    title: 'My process',
    description: 'Counts the words of a text.',
    jobControlOptions: ['sync-execute', 'async-execute', 'dismiss'],
    inputs: {
      text: { title: 'Text', schema: { type: 'string' } },
      minLength: {
        title: 'Shortest word counted',
        minOccurs: 0,
        schema: { type: 'integer', minimum: 1, default: 1 },
      },
    },
    outputs: {
      words: { title: 'Number of words', schema: { type: 'integer' } },
    },
  },

  execute(inputs) {
    const text = inputs.requiredString('text');
    const minLength = inputs.optionalNumber('minLength', 1);
    progress(10, 'splitting');
    const words = text.split(/\s+/).filter((w) => w.length >= minLength);
    if (words.length === 0) {
      // A process error: the job fails with this code and message.
      throw ProcessError.noResult('no word is that long');
    }
    log('info', `${words.length} words`);
    return [Output.json('words', words.length)];
  },
});
