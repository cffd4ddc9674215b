// Lets plain Node import ../wasmproc.js outside a component, for its unit
// tests: `node --import ./test/register.mjs --test test/wasmproc.test.mjs` (from
// guest-sdk/js). Inside a component, componentize-qjs links the import
// `wasmproc:process/host@0.1.0` to the host; here a resolve hook points it
// at host.mjs, which records each call instead.
import { register } from 'node:module';

register('./resolve-host.mjs', import.meta.url);
