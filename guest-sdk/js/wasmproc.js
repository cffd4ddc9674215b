// wasmproc.js - write wasmproc processes in JavaScript.
//
// A process is a description and an execute function, turned into the two
// exports of the `wasmproc:process` world by `defineProcess`:
//
//     import { defineProcess, Output } from './wasmproc.js';
//
//     export const { describe, execute } = defineProcess({
//       description: {
//         id: 'hello', version: '1.0.0', title: 'Hello',
//         inputs: { name: { schema: { type: 'string' } } },
//         outputs: { greeting: { schema: { type: 'string' } } },
//       },
//       execute(inputs) {
//         return [Output.json('greeting', `Hello ${inputs.requiredString('name')}!`)];
//       },
//     });
//
// Build with componentize-qjs (QuickJS) or componentize-js (SpiderMonkey);
// see README.md next to this file.
//
// The module hides the WIT plumbing: the inputs JSON text becomes an
// `Inputs`, outputs are built with `Output` (or returned as a plain object
// of JSON values), a thrown `ProcessError` becomes the WIT
// `process-error`, and `progress` / `log` talk to the host.

import { log as hostLog, progress as hostProgress } from 'wasmproc:process/host@0.1.0';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

function utf8(text) {
  const bytes = [];
  for (const char of text) {
    let c = char.codePointAt(0);
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Uint8Array.from(bytes);
}

function show(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ? `${value}\n${value.stack}` : String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// QuickJS has no `console`: send console.* to the job log.
if (typeof globalThis.console === 'undefined') {
  const line = (level) => (...args) => hostLog(level, args.map(show).join(' '));
  globalThis.console = {
    log: line('info'),
    info: line('info'),
    debug: line('debug'),
    trace: line('trace'),
    warn: line('warn'),
    error: line('error'),
  };
}

/** A failure the process reports itself: a short machine-readable `code`
 * (e.g. `invalid-input`, `no-result`) and a message for people. Throw it
 * anywhere in `execute`: the job fails with this code and message. */
export class ProcessError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ProcessError';
    this.code = code;
  }

  /** The inputs are well-formed but unusable (code `invalid-input`). */
  static invalidInput(message) {
    return new ProcessError('invalid-input', message);
  }

  /** The process could not produce a result (code `no-result`). */
  static noResult(message) {
    return new ProcessError('no-result', message);
  }
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_DIGITS = (() => {
  const digits = new Int16Array(128).fill(-1);
  for (let i = 0; i < BASE64.length; i++) digits[BASE64.charCodeAt(i)] = i;
  return digits;
})();

/** Decode standard base64 (padding optional, whitespace ignored) to a
 * Uint8Array; throws a ProcessError on any other character. */
export function decodeBase64(text) {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let bits = 0;
  let padding = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    if (c === 61) {
      padding = true;
      continue;
    }
    const d = c < 128 ? BASE64_DIGITS[c] : -1;
    if (d < 0 || padding) throw ProcessError.invalidInput('not valid base64');
    acc = ((acc << 6) | d) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  if (bits >= 6) throw ProcessError.invalidInput('not valid base64');
  return out.slice(0, n);
}

/** The inputs of a job: a JSON object keyed by input id. The host has
 * already validated them against the description and fetched inputs given
 * by reference; `value` and the typed getters unwrap OGC qualified values
 * (`{"value": …, "mediaType": …}`). */
export class Inputs {
  constructor(values) {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      throw ProcessError.invalidInput('inputs must be a JSON object');
    }
    /** The inputs as the host sent them. */
    this.raw = values;
  }

  /** Parse the JSON text the host passes to `execute`. */
  static fromJson(text) {
    let values;
    try {
      values = JSON.parse(text);
    } catch (e) {
      throw ProcessError.invalidInput(`inputs are not valid JSON: ${e.message}`);
    }
    return new Inputs(values);
  }

  /** Whether input `id` was given. */
  has(id) {
    return Object.prototype.hasOwnProperty.call(this.raw, id) && this.raw[id] !== null;
  }

  /** Ids of the inputs that were given. */
  ids() {
    return Object.keys(this.raw);
  }

  /** The raw value of an input (qualified values not unwrapped). */
  get(id) {
    return this.has(id) ? this.raw[id] : undefined;
  }

  /** The value of an input, a qualified value unwrapped to its `value`;
   * `fallback` when absent. */
  value(id, fallback = undefined) {
    if (!this.has(id)) return fallback;
    const raw = this.raw[id];
    if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'value' in raw) {
      return raw.value;
    }
    return raw;
  }

  /** The (unwrapped) value of an input that must be present. */
  required(id) {
    return present(id, this.value(id));
  }

  /** A string input, or `fallback`; a ProcessError if it is not a string. */
  optionalString(id, fallback = undefined) {
    return ofType(id, this.value(id), 'string', fallback);
  }

  /** A string input that must be present. */
  requiredString(id) {
    return present(id, this.optionalString(id));
  }

  /** A numeric input, or `fallback`; a ProcessError if it is not a number. */
  optionalNumber(id, fallback = undefined) {
    return ofType(id, this.value(id), 'number', fallback);
  }

  /** A numeric input that must be present. */
  requiredNumber(id) {
    return present(id, this.optionalNumber(id));
  }

  /** A binary input decoded from base64 (a plain base64 string or a
   * qualified value): `{ data: Uint8Array, mediaType }`, or undefined. */
  binary(id) {
    const raw = this.get(id);
    const mediaType =
      raw !== null && typeof raw === 'object' && typeof raw.mediaType === 'string' ? raw.mediaType : undefined;
    const encoded = this.optionalString(id);
    if (encoded === undefined) return undefined;
    try {
      return { data: decodeBase64(encoded), mediaType };
    } catch (e) {
      throw ProcessError.invalidInput(`input '${id}' is not base64`);
    }
  }
}

/** The value of input `id`, or a ProcessError saying it is required when
 * it is absent (undefined or null): what every `required*` method ends in. */
function present(id, value) {
  if (value === undefined || value === null) {
    throw ProcessError.invalidInput(`input '${id}' is required`);
  }
  return value;
}

/** The value of input `id` if its `typeof` is `type` (`'string'`,
 * `'number'`), `fallback` when it is absent, else a ProcessError saying
 * what it must be: what every `optional*` method of a type ends in. */
function ofType(id, value, type, fallback) {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== type) {
    throw ProcessError.invalidInput(`input '${id}' must be a ${type}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** One output of a job, named by its id in the process description. */
export class Output {
  constructor(id, value, mediaType) {
    this.id = id;
    /** `{ tag: 'json', val: text }` or `{ tag: 'bytes', val: Uint8Array }`. */
    this.value = value;
    this.mediaType = mediaType;
  }

  /** A JSON output from any JSON-serialisable value (a string becomes a
   * JSON string). `mediaType` defaults to application/json on the host. */
  static json(id, value, mediaType = undefined) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`output '${id}' is not JSON-serialisable`);
    return new Output(id, { tag: 'json', val: text }, mediaType);
  }

  /** A raw-bytes output: a Uint8Array, an array of byte values, or a
   * string (encoded as UTF-8, e.g. CSV with mediaType 'text/csv').
   * `mediaType` defaults to application/octet-stream on the host. */
  static bytes(id, data, mediaType = undefined) {
    const bytes = typeof data === 'string' ? utf8(data) : data instanceof Uint8Array ? data : Uint8Array.from(data);
    return new Output(id, { tag: 'bytes', val: bytes }, mediaType);
  }
}

/** Append a line to the job's log; `level` is one of trace, debug, info,
 * warn, error (the host bounds the log). */
export function log(level, message) {
  if (!LEVELS.includes(level)) throw new TypeError(`log level must be one of ${LEVELS.join(', ')}`);
  hostLog(level, String(message));
}

/** Report progress of the running job; `percent` is clamped to 0..100. */
export function progress(percent, message = undefined) {
  const clamped = Math.max(0, Math.min(100, Math.floor(Number(percent) || 0)));
  hostProgress(clamped, message === undefined || message === null ? undefined : String(message));
}

function lower(result) {
  const outputs = Array.isArray(result)
    ? result
    : Object.entries(result ?? {}).map(([id, value]) => Output.json(id, value));
  return outputs.map((output) => {
    if (!(output instanceof Output)) {
      throw new TypeError('execute must return Output objects or a plain object of JSON values');
    }
    return { id: output.id, mediaType: output.mediaType, value: output.value };
  });
}

/** The two exports of the world for a process: `{ describe, execute }`.
 *
 * `execute(inputs)` gets an `Inputs` and returns an array of `Output`, or
 * an object mapping output ids to JSON values. A thrown `ProcessError`
 * fails the job with its code and message; any other exception fails it
 * with code `internal-error` (the stack goes to the job log). */
export function defineProcess({ description, execute }) {
  const described = JSON.stringify(description);
  return {
    describe() {
      return described;
    },
    execute(text) {
      try {
        return lower(execute(Inputs.fromJson(text)));
      } catch (e) {
        // The component's `result` error side: a plain record.
        if (e instanceof ProcessError) throw { code: e.code, message: e.message };
        hostLog('error', show(e));
        throw { code: 'internal-error', message: String(e) };
      }
    },
  };
}
