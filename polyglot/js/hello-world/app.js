// The `hello-world-js` process: the Rust `hello-world`'s contract, in JavaScript.
//
// Build: `./build.sh` (writes polyglot/out/hello-world-js.wasm).
import { defineProcess, Output } from '../../../guest-sdk/js/wasmproc.js';

export const { describe, execute } = defineProcess({
  description: {
    id: 'hello-world-js',
    version: '0.2.0',
    title: 'Hello World (JavaScript)',
    description: 'Echoes a greeting for the given name, with an optional message.',
    keywords: ['hello world', 'example', 'javascript'],
    jobControlOptions: ['sync-execute', 'async-execute', 'dismiss'],
    outputTransmission: ['value', 'reference'],
    inputs: {
      name: {
        title: 'Name',
        description: 'The name of the person or entity that you wish to be echoed back as an output',
        minOccurs: 1,
        maxOccurs: 1,
        schema: { type: 'string' },
      },
      message: {
        title: 'Message',
        description: 'An optional message to echo as well',
        minOccurs: 0,
        maxOccurs: 1,
        schema: { type: 'string' },
      },
    },
    outputs: {
      echo: {
        title: 'Hello, world',
        description: 'A "hello world" echo with the name and (optional) message submitted for processing',
        schema: { type: 'string', contentMediaType: 'application/json' },
      },
    },
  },

  execute(inputs) {
    const name = inputs.requiredString('name');
    const message = inputs.optionalString('message', '');
    return [Output.json('echo', `Hello ${name}! ${message}`.trimEnd())];
  },
});
