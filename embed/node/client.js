'use strict';
/**
 * predictlib model artifacts from JavaScript: onnxruntime-node, or onnxruntime-web
 * (wasm) under Node. Plain JS, no build step. The contract it implements is
 * docs/embedding.md; it reads nothing but the artifact folder.
 *
 *   const { load } = require('./client');
 *   const model = await load('artifacts/house_prices');            // onnxruntime-node
 *   const web = await load(folder, { backend: 'web', file: 'model.ort' });
 *   await model.predict({ LotArea: 8450, ... });  // one record -> a number
 *   await model.predict([record, record]);        // records -> an array
 *   await model.evaluate(records);                // per record: { ok, output } or { ok: false, problems }
 *
 * Datetime columns take a Date (its UTC fields are the naive date and time), ISO 8601
 * text without time zone ('2020-01-01T12:00:00.000000001', to the nanosecond) or
 * golden.json's { $datetime: '...' } form; null and NaN are missing.
 *
 * Refused input throws InputError (problems: [{ row, column, value, reason, code }]),
 * as the Python runtime raises predictlib.InputError.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/** Manifest format this client reads (newer formats are refused). */
const FORMAT_VERSION = 1;
const MANIFEST_FILE = 'manifest.json';
const MODEL_FILE = 'model.onnx';
/** The lean graph (manifest 'lean', docs/embedding.md): one float64 input, one refusal test. */
const LEAN_FILE = 'model.ids.onnx';
/** Graph input names of the groups (the manifest's inputs.columns[].group). */
const NUM = 'num';
const CAT = 'cat';
const DT = 'dt';
/** A missing datetime in the 'dt' input: the int64 minimum (numpy's NaT). */
const NAT = -(2n ** 63n);
/** The datetimes 'dt' holds: nanoseconds since 1970-01-01T00:00:00, datetime64[ns]'s range. */
const NS_MIN = NAT + 1n;
const NS_MAX = 2n ** 63n - 1n;
const DATETIME_RANGE =
  'expected a datetime between 1677-09-21 00:12:43.145224193 and 2262-04-11 23:47:16.854775807';
const AWARE =
  'expected a naive datetime (no time zone), as the model was trained on: give the local ' +
  'time it was trained with (e.g. value.astimezone(zone).replace(tzinfo=None))';
/** ISO 8601 without time zone, to the nanosecond; a trailing zone is recognised to refuse it. */
const ISO_DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

const WHAT_INPUT =
  'expected a record (an object of column name to value) or an array of records';

class PredictlibError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** A model artifact is damaged, tampered with, or needs a newer client. */
class ArtifactError extends PredictlibError {}

/**
 * The input cannot be predicted. `problems` lists every refused value:
 * `{ row, column, value, reason, code }` (`row` is null for a single record; `value`
 * is undefined when there is none, e.g. for a missing column).
 */
class InputError extends PredictlibError {
  constructor(problems) {
    const first = problems[0];
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
    super(`${describeProblem(first)}${more}`);
    this.problems = problems;
    Object.assign(this, { row: first.row, column: first.column, value: first.value, reason: first.reason });
  }
}

function describeProblem(p) {
  const where = [];
  if (p.row !== null && p.row !== undefined) where.push(`row ${p.row}`);
  if (p.column !== null && p.column !== undefined) where.push(`column '${p.column}'`);
  const value = p.value === undefined ? '' : `: value ${show(p.value)}`;
  return `${where.join(', ') || 'input'}${value}: ${p.reason}`;
}

function show(value) {
  let text;
  try {
    if (isDatetimeObject(value)) text = `{ $datetime: ${JSON.stringify(value.$datetime)} }`;
    else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    else text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}

function typeName(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function problem(row, column, value, reason, code) {
  return { row, column, value, reason, code };
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(year, month) {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * ISO 8601 text as nanoseconds since 1970-01-01T00:00:00 (a BigInt), or a string
 * saying why it is not a naive datetime ('aware' or 'malformed').
 */
function parseIsoDatetime(text) {
  const m = ISO_DATETIME.exec(text);
  if (!m) return 'malformed';
  if (m[8] !== undefined) return 'aware';
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((k) => Number(m[k] || 0));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return 'malformed';
  if (hour > 23 || minute > 59 || second > 59) return 'malformed';
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return BigInt(seconds) * 1000000000n + BigInt((m[7] || '').padEnd(9, '0'));
}

// ---------------------------------------------------------------- canonical JSON

/**
 * Parse a JSON text into a tree whose leaves are already canonical text: objects are
 * Maps (a repeated key: the last one wins, as in Python), arrays are arrays, every
 * other value is its canonical lexeme (see canonicalJson).
 */
function parseCanonical(text) {
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const expect = (ch) => {
    ws();
    if (text[i] !== ch) fail(`expected '${ch}'`);
    i++;
  };
  const stringToken = () => {
    if (text[i] !== '"') fail('expected a string');
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const members = new Map();
      ws();
      if (text[i] === '}') {
        i++;
        return members;
      }
      for (;;) {
        ws();
        const key = stringToken();
        expect(':');
        members.delete(key);
        members.set(key, value());
        ws();
        if (text[i] !== ',') break;
        i++;
      }
      expect('}');
      return members;
    }
    if (c === '[') {
      i++;
      const items = [];
      ws();
      if (text[i] === ']') {
        i++;
        return items;
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] !== ',') break;
        i++;
      }
      expect(']');
      return items;
    }
    if (c === '"') return pythonString(stringToken());
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return literal;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail('unexpected character');
    i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) return m[0] === '-0' ? '0' : m[0]; // an int: its digits
    const x = Number(m[0]);
    if (!Number.isFinite(x)) fail('a number out of the float64 range');
    return pythonFloatRepr(x);
  };
  const tree = value();
  ws();
  if (i !== text.length) fail('trailing data');
  return tree;
}

function serializeCanonical(node) {
  if (node instanceof Map) {
    const keys = [...node.keys()].sort(compareCodePoints);
    return `{${keys.map((k) => `${pythonString(k)}:${serializeCanonical(node.get(k))}`).join(',')}}`;
  }
  if (Array.isArray(node)) return `[${node.map(serializeCanonical).join(',')}]`;
  return node;
}

/**
 * The canonical form of a JSON text, the one the manifest digest is computed on:
 * Python's `json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False, allow_nan=False)`. Integers keep their digits; other numbers
 * are written as Python's repr of the float; keys are sorted by code point; strings
 * escape only `"`, `\` and control characters.
 */
function canonicalJson(text) {
  return serializeCanonical(parseCanonical(text));
}

function compareCodePoints(a, b) {
  const x = Array.from(a, (ch) => ch.codePointAt(0));
  const y = Array.from(b, (ch) => ch.codePointAt(0));
  for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return x[k] - y[k];
  return x.length - y.length;
}

const SHORT_ESCAPES = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function pythonString(s) {
  let out = '"';
  for (const ch of s) {
    if (SHORT_ESCAPES[ch] !== undefined) out += SHORT_ESCAPES[ch];
    else if (ch.codePointAt(0) < 0x20) out += `\\u${ch.codePointAt(0).toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Python's repr() of a finite float (shortest round-trip digits). */
function pythonFloatRepr(x) {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exponent] = x.toExponential().split('e');
  const exp = Number(exponent);
  const sign = mantissa.startsWith('-') ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

/** sha256 of a manifest's text without its own `integrity.manifest_sha256` field. */
function manifestDigest(text) {
  const tree = parseCanonical(text);
  if (tree instanceof Map && tree.get('integrity') instanceof Map) tree.get('integrity').delete('manifest_sha256');
  return sha256(Buffer.from(serializeCanonical(tree), 'utf8'));
}

// ---------------------------------------------------------------- artifacts

/** Parse and check manifest.json's text: format version and manifest_sha256. */
function checkManifest(text, source) {
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (exc) {
    throw new ArtifactError(`${source}: ${MANIFEST_FILE} is not valid JSON (${exc.message})`);
  }
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new ArtifactError(`${source}: ${MANIFEST_FILE} is not a JSON object`);
  }
  if (!Number.isInteger(manifest.format_version)) {
    throw new ArtifactError(`${source}: the manifest has no integer format_version`);
  }
  if (manifest.format_version > FORMAT_VERSION) {
    const needed = (manifest.runtime && manifest.runtime.requires) || 'a newer predictlib';
    throw new ArtifactError(
      `${source}: manifest format ${manifest.format_version} is newer than this client reads ` +
        `(format <= ${FORMAT_VERSION}; the Python runtime needs ${needed})`,
    );
  }
  const integrity = manifest.integrity;
  if (integrity === null || typeof integrity !== 'object') {
    throw new ArtifactError(`${source}: the manifest has no integrity section`);
  }
  let digest;
  try {
    digest = manifestDigest(text);
  } catch (exc) {
    throw new ArtifactError(`${source}: ${MANIFEST_FILE} cannot be canonicalised (${exc.message})`);
  }
  if (integrity.manifest_sha256 !== digest) {
    throw new ArtifactError(`${source}: ${MANIFEST_FILE} was modified after it was built (sha256 mismatch)`);
  }
  for (const key of ['name', 'version', 'task', 'inputs', 'outputs']) {
    if (!(key in manifest)) throw new ArtifactError(`${source}: the manifest has no '${key}'`);
  }
  return manifest;
}

/** The sha256 the manifest records for `file` (model.onnx or one of `files`). */
function expectedDigest(manifest, file, source) {
  if (file === MODEL_FILE) return manifest.integrity.model_sha256;
  if (file === LEAN_FILE && manifest.lean) return manifest.integrity.ids_model_sha256;
  const entry = manifest.files && manifest.files[file];
  if (!entry || typeof entry.sha256 !== 'string') {
    throw new ArtifactError(`${source}: the manifest lists no file '${file}'`);
  }
  return entry.sha256;
}

/** Read a file of the artifact, checked against its sha256 in the manifest. */
function readChecked(folder, manifest, file) {
  const where = path.join(folder, file);
  let data;
  try {
    data = fs.readFileSync(where);
  } catch (exc) {
    throw new ArtifactError(`${folder}: cannot read ${file} (${exc.message})`);
  }
  const actual = sha256(data);
  const expected = expectedDigest(manifest, file, folder);
  if (actual !== expected) {
    throw new ArtifactError(
      `${folder}: ${file} does not match its manifest (sha256 ${actual}, expected ${expected}): ` +
        'the file is damaged or was replaced',
    );
  }
  return data;
}

/** Read and check an artifact folder: `{ manifest, model }` (model: the bytes of `file`). */
function readArtifact(folder, file = MODEL_FILE) {
  let text;
  try {
    text = fs.readFileSync(path.join(folder, MANIFEST_FILE), 'utf8');
  } catch (exc) {
    throw new ArtifactError(`${folder}: cannot read the artifact (${exc.message})`);
  }
  const manifest = checkManifest(text, folder);
  return { manifest, model: readChecked(folder, manifest, file) };
}

function onnxruntime(backend) {
  if (backend === 'node') return require('onnxruntime-node');
  if (backend === 'web') {
    const ort = require('onnxruntime-web');
    ort.env.wasm.numThreads = 1; // no worker threads under Node
    ort.env.logLevel = 'error';
    return ort;
  }
  throw new TypeError(`backend must be 'node' or 'web', got ${JSON.stringify(backend)}`);
}

function sessionOptions(backend, threads) {
  const common = { graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  if (backend === 'web') return { ...common, executionProviders: ['wasm'] };
  return {
    ...common,
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
}

/**
 * Load the model of an artifact folder.
 *
 * options.backend: 'node' (onnxruntime-node, default) or 'web' (onnxruntime-web, wasm);
 * options.file: 'model.onnx', 'model.ort' (the ORT-format model) or 'model.ids.onnx' (the lean
 *   graph of the manifest's 'lean': one float64 input of numbers and category ids, one refusal
 *   test; model.onnx then names the checks of the refused rows). Default: the lean graph when
 *   the manifest has one, else model.onnx;
 * options.threads: intra-op threads for onnxruntime-node (default 1);
 * options.ort: an onnxruntime module to use instead of the backend's.
 */
async function load(folder, options = {}) {
  const backend = options.backend || 'node';
  const first = readArtifact(folder, options.file === LEAN_FILE ? MODEL_FILE : options.file || MODEL_FILE);
  const { manifest } = first;
  const file = options.file || (manifest.lean ? LEAN_FILE : MODEL_FILE);
  // the lean graph runs; model.onnx (checked now, run when a row is refused) names the checks
  const lean = file === LEAN_FILE ? { reasons: first.model, options: sessionOptions(backend, options.threads || 1) } : null;
  const model = lean ? readChecked(folder, manifest, LEAN_FILE) : first.model;
  const ort = options.ort || onnxruntime(backend);
  let session;
  try {
    const bytes = new Uint8Array(model.buffer, model.byteOffset, model.byteLength);
    session = await ort.InferenceSession.create(bytes, sessionOptions(backend, options.threads || 1));
  } catch (exc) {
    throw new ArtifactError(`${folder}: onnxruntime cannot load ${file} (${exc.message})`);
  }
  return new Model(manifest, session, ort, { source: folder, file, backend, lean });
}

// ---------------------------------------------------------------- the model

function deepFreeze(value) {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function isRecord(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** Stands for text that is not valid Unicode (as in the Python runtime). */
const UNENCODABLE = '\x00predictlib:text that is not valid unicode\x00';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const isWellFormed = (text) => !LONE_SURROGATE.test(text);

const hasOwn = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

/** golden.json's spelling of a datetime: { $datetime: 'ISO 8601 text' }. */
function isDatetimeObject(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Map) &&
    Object.keys(value).length === 1 &&
    typeof value.$datetime === 'string'
  );
}

/** A loaded model. Create it with load(). */
class Model {
  constructor(manifest, session, ort, info) {
    this.manifest = deepFreeze(manifest);
    this.name = manifest.name;
    this.version = manifest.version;
    this.task = manifest.task;
    this.source = info.source;
    this.file = info.file;
    this.backend = info.backend;
    this._session = session;
    this._ort = ort;
    try {
      const inputs = manifest.inputs;
      this.numeric = [...inputs.numeric];
      this.categorical = [...inputs.categorical];
      this.datetime = [...(inputs.datetime || [])];
      this.missing = inputs.missing_category;
      if (typeof this.missing !== 'string') throw new TypeError('inputs.missing_category');
      const outputs = manifest.outputs;
      this._checks = (outputs.refusals && outputs.refusals.checks) || [];
      this._refusals = this._checks.length ? outputs.refusals.name : null;
      if (this.task === 'regression') {
        this.classes = [];
        this._outputs = [outputs.prediction.name];
      } else if (this.task === 'classification') {
        this.classes = [...outputs.probabilities.classes];
        this._outputs = [outputs.label.name, outputs.probabilities.name];
      } else {
        throw new ArtifactError(`${info.source}: unknown task ${JSON.stringify(this.task)}`);
      }
    } catch (exc) {
      if (exc instanceof ArtifactError) throw exc;
      throw new ArtifactError(`${info.source}: the manifest lacks ${exc.message}`);
    }
    this._fetch = this._refusals ? [...this._outputs, this._refusals] : [...this._outputs];
    this._lean = info.lean ? this._leanSpec(manifest, info) : null;
    if (this._lean) this._fetch = this._lean.fetch;
    const names = new Set(session.outputNames);
    for (const name of this._fetch) {
      if (!names.has(name)) throw new ArtifactError(`${info.source}: the graph has no output '${name}'`);
    }
    const groups = this._lean
      ? [[this._lean.input, this.columns.slice(0, this._lean.width)], [DT, this.datetime]]
      : [[NUM, this.numeric], [CAT, this.categorical], [DT, this.datetime]];
    for (const [group, columns] of groups) {
      if (columns.length && !session.inputNames.includes(group)) {
        throw new ArtifactError(`${info.source}: the graph has no input '${group}'`);
      }
    }
    const fed = new Set(groups.filter(([, columns]) => columns.length).map(([group]) => group));
    for (const name of session.inputNames) {
      if (!fed.has(name)) {
        throw new ArtifactError(`${info.source}: the graph's input '${name}' is not in the manifest (a newer model?)`);
      }
    }
    this._columnSet = new Set(this.columns);
  }

  /** The manifest's 'lean' section, checked against the columns (docs/embedding.md). */
  _leanSpec(manifest, info) {
    const lean = manifest.lean;
    const columns = [...this.numeric, ...this.categorical];
    if (
      !lean ||
      !Array.isArray(lean.columns) ||
      lean.columns.join('\u0000') !== columns.join('\u0000') ||
      lean.columns.length !== columns.length ||
      lean.numeric !== this.numeric.length ||
      !Array.isArray(lean.vocabulary)
    ) {
      throw new ArtifactError(`${info.source}: the manifest's lean section does not match its inputs`);
    }
    const signal = lean.refused;
    const packed = signal && signal.kind === 'nan' && this._outputs.includes(signal.output);
    const fetch = signal && !packed ? [...this._outputs, signal.output] : [...this._outputs];
    return {
      input: lean.input,
      width: columns.length,
      index: new Map(lean.vocabulary.map((text, k) => [text, k])),
      unseen: lean.vocabulary.length,
      signal,
      packed,
      fetch,
      reasons: null,
      reasonsBytes: info.lean.reasons,
      reasonsOptions: info.lean.options,
    };
  }

  /** The rows (0..n-1) the lean graph refuses. */
  _leanRefused(results, n) {
    const { signal } = this._lean;
    if (!signal) return [];
    const data = results[signal.output].data;
    const width = data.length / n;
    const refused = [];
    for (let k = 0; k < n; k++) {
      if (signal.kind === 'flags') {
        for (let c = 0; c < width; c++) {
          if (data[k * width + c]) {
            refused.push(k);
            break;
          }
        }
      } else if (!Number.isFinite(data[k * width + signal.column])) refused.push(k);
    }
    return refused;
  }

  /** model.onnx's refusal flags of `rows` (indices into records), its session made once. */
  async _reasons(cells, rows) {
    const lean = this._lean;
    if (!lean.reasons) {
      const bytes = new Uint8Array(lean.reasonsBytes.buffer, lean.reasonsBytes.byteOffset, lean.reasonsBytes.byteLength);
      lean.reasons = await this._ort.InferenceSession.create(bytes, lean.reasonsOptions);
    }
    // the main outputs too: onnxruntime-node 1.23 returns a wrong output when asked for 'refusals' alone
    const results = await lean.reasons.run(this._feeds(cells, rows), [...this._outputs, this._refusals]);
    return results[this._refusals].data;
  }

  /** The input columns the model needs. */
  get columns() {
    return [...this.numeric, ...this.categorical, ...this.datetime];
  }

  /**
   * Predict one record (an object: returns one output) or an array of records
   * (returns an array). Regression: a number; classification: { label, probabilities }
   * (probabilities in the order of `classes`). Throws InputError when any record is
   * refused, listing the problems of every record in record order: the input
   * contract's, or for records that pass it, the graph's refusals (as the Python
   * runtime does).
   */
  async predict(data) {
    let records;
    let single;
    if (Array.isArray(data)) {
      records = data;
      single = false;
    } else if (isRecord(data)) {
      records = [data];
      single = true;
    } else {
      throw new InputError([problem(null, null, data, WHAT_INPUT, 'not_a_record')]);
    }
    const results = await this._evaluate(records, single);
    const problems = results.flatMap((result) => (result.ok ? [] : result.problems));
    if (problems.length) throw new InputError(problems);
    const outputs = results.map((result) => result.output);
    return single ? outputs[0] : outputs;
  }

  /**
   * Every record on its own: `[{ ok: true, output } | { ok: false, problems }]`,
   * problems' `row` being the record's index. The same answers as predicting each
   * record alone, in one graph run.
   */
  async evaluate(records) {
    if (!Array.isArray(records)) throw new TypeError('evaluate() takes an array of records');
    return this._evaluate(records, false);
  }

  async _evaluate(records, single) {
    const prepared = this._prepare(records, single);
    const good = prepared.rows.filter((i) => prepared.problems[i].length === 0);
    const result = await this._run(prepared.cells, good, single);
    const out = records.map((_, i) => ({ ok: false, problems: prepared.problems[i] }));
    good.forEach((row, k) => {
      out[row] = result.problems[k].length
        ? { ok: false, problems: result.problems[k] }
        : { ok: true, output: result.outputs[k] };
    });
    return out;
  }

  // ----------------------------------------------------------- input contract
  _number(value, row, column, problems) {
    if (typeof value === 'number') return value; // NaN is a missing value; +-Infinity are values
    if (value === null) return NaN;
    if (typeof value === 'bigint') {
      const x = Number(value);
      if (!Number.isFinite(x)) problems.push(problem(row, column, value, 'expected a number in the float64 range', 'out_of_range'));
      return x;
    }
    let reason;
    if (typeof value === 'boolean') reason = 'expected a number, got a bool';
    else if (typeof value === 'string') {
      reason = 'expected a number, got text (numbers given as text are refused, as by the original pipeline)';
    } else reason = `expected a number, got ${typeName(value)}`;
    problems.push(problem(row, column, value, reason, 'wrong_type'));
    return NaN;
  }

  _category(value, row, column, problems) {
    if (typeof value === 'string') {
      if (value === this.missing) {
        problems.push(problem(row, column, value, 'this text is reserved to mark missing values', 'reserved_value'));
      }
      // text that is not valid Unicode (lone surrogates) cannot enter a string tensor
      // as is; it equals no fitted category, so it stands as an unseen one
      return isWellFormed(value) ? value : UNENCODABLE;
    }
    if (value === null || (typeof value === 'number' && Number.isNaN(value))) return this.missing;
    problems.push(
      problem(row, column, value, `expected a string (a category) or null, got ${typeName(value)}`, 'wrong_type'),
    );
    return this.missing;
  }

  /** A datetime cell as BigInt nanoseconds since the epoch (NAT when missing). */
  _moment(value, row, column, problems) {
    if (value === null || (typeof value === 'number' && Number.isNaN(value))) return NAT;
    let ns;
    if (value instanceof Date) {
      const ms = value.getTime();
      if (Number.isNaN(ms)) {
        problems.push(problem(row, column, value, 'expected a datetime, got an invalid Date', 'wrong_type'));
        return NAT;
      }
      ns = BigInt(ms) * 1000000n;
    } else if (typeof value === 'string' || isDatetimeObject(value)) {
      ns = parseIsoDatetime(typeof value === 'string' ? value : value.$datetime);
      if (ns === 'aware') {
        problems.push(problem(row, column, value, AWARE, 'wrong_type'));
        return NAT;
      }
      if (ns === 'malformed') {
        const reason = 'expected a datetime (a Date, or ISO 8601 text without time zone such as ' +
          "'2020-01-01T12:00:00.000000001'), got text that is not one";
        problems.push(problem(row, column, value, reason, 'wrong_type'));
        return NAT;
      }
    } else {
      const reason = typeof value === 'boolean' ? 'expected a datetime, got a bool' : `expected a datetime, got ${typeName(value)}`;
      problems.push(problem(row, column, value, reason, 'wrong_type'));
      return NAT;
    }
    if (ns < NS_MIN || ns > NS_MAX) {
      problems.push(problem(row, column, value, DATETIME_RANGE, 'out_of_range'));
      return NAT;
    }
    return ns;
  }

  /** Per record: its problems and its cells (numbers, categories, then datetimes). */
  _prepare(records, single) {
    const problems = [];
    const cells = [];
    const rows = [];
    records.forEach((record, i) => {
      const row = single ? null : i;
      const found = [];
      problems.push(found);
      if (!isRecord(record)) {
        found.push(problem(row, null, record, `expected an object of column name to value, got ${typeName(record)}`, 'not_a_record'));
        cells.push(null);
        return;
      }
      const isMap = record instanceof Map;
      const get = (column) => {
        if (isMap) return record.has(column) ? record.get(column) : undefined;
        return hasOwn(record, column) ? record[column] : undefined;
      };
      const num = new Array(this.numeric.length);
      this.numeric.forEach((column, j) => {
        const value = get(column);
        if (value === undefined) {
          found.push(problem(row, column, undefined, 'required column is missing', 'missing_column'));
          num[j] = NaN;
        } else num[j] = this._number(value, row, column, found);
      });
      const cat = new Array(this.categorical.length);
      this.categorical.forEach((column, j) => {
        const value = get(column);
        if (value === undefined) {
          found.push(problem(row, column, undefined, 'required column is missing', 'missing_column'));
          cat[j] = this.missing;
        } else cat[j] = this._category(value, row, column, found);
      });
      const dt = new Array(this.datetime.length);
      this.datetime.forEach((column, j) => {
        const value = get(column);
        if (value === undefined) {
          found.push(problem(row, column, undefined, 'required column is missing', 'missing_column'));
          dt[j] = NAT;
        } else dt[j] = this._moment(value, row, column, found);
      });
      cells.push({ num, cat, dt, get });
      rows.push(i);
    });
    return { problems, rows, cells };
  }

  /** Run the graph on `rows` (indices into records): outputs and refusals per row. */
  async _run(cells, rows, single) {
    const n = rows.length;
    if (n === 0) return { outputs: [], problems: [] };
    if (this._lean) return this._runLean(cells, rows, single);
    const results = await this._session.run(this._feeds(cells, rows), this._fetch);
    const problems = rows.map(() => []);
    if (this._refusals) this._explain(results[this._refusals].data, cells, rows, single, problems, rows.map((_, k) => k));
    return { outputs: this._shape(results, n), problems };
  }

  /** The lean graph on `rows`; model.onnx names the checks of the rows it refuses. */
  async _runLean(cells, rows, single) {
    const n = rows.length;
    const { width, index, unseen, input } = this._lean;
    const nNum = this.numeric.length;
    const x = new Float64Array(n * width);
    rows.forEach((row, k) => {
      const { num, cat } = cells[row];
      x.set(num, k * width);
      for (let j = 0; j < cat.length; j++) {
        const id = index.get(cat[j]);
        x[k * width + nNum + j] = id === undefined ? unseen : id;
      }
    });
    const feeds = { [input]: new this._ort.Tensor('float64', x, [n, width]) };
    const nDt = this.datetime.length;
    if (nDt) {
      const dt = new BigInt64Array(n * nDt);
      rows.forEach((row, k) => dt.set(cells[row].dt, k * nDt));
      feeds[DT] = new this._ort.Tensor('int64', dt, [n, nDt]);
    }
    const results = await this._session.run(feeds, this._fetch);
    const problems = rows.map(() => []);
    const refused = this._leanRefused(results, n);
    if (refused.length) {
      const flags = await this._reasons(cells, refused.map((k) => rows[k]));
      this._explain(flags, cells, rows, single, problems, refused);
      if (refused.some((k) => problems[k].length === 0)) {
        throw new ArtifactError(`${this.source}: the lean graph refused a row model.onnx accepts (rebuild the artifact)`);
      }
    }
    return { outputs: this._shape(results, n), problems };
  }

  /** `flags` ([refused.length, n_checks]) as problems of rows `refused` (positions in `rows`). */
  _explain(flags, cells, rows, single, problems, refused) {
    const width = this._checks.length;
    refused.forEach((k, i) => {
      const row = rows[k];
      for (let c = 0; c < width; c++) {
        if (!flags[i * width + c]) continue;
        const check = this._checks[c];
        const value = this._columnSet.has(check.column)
          ? cells[row].get(check.column)
          : `<computed column '${check.column}'>`;
        problems[k].push(
          problem(
            single ? null : row,
            check.column,
            value,
            `refused by step '${check.step}' (${check.transformer}): ${check.reason}`,
            'refused',
          ),
        );
      }
    });
  }

  /** model.onnx's inputs (num, cat texts, dt) for `rows`. */
  _feeds(cells, rows) {
    const n = rows.length;
    const nNum = this.numeric.length;
    const nCat = this.categorical.length;
    const feeds = {};
    if (nNum) {
      const num = new Float64Array(n * nNum);
      rows.forEach((row, k) => num.set(cells[row].num, k * nNum));
      feeds[NUM] = new this._ort.Tensor('float64', num, [n, nNum]);
    }
    if (nCat) {
      const cat = new Array(n * nCat);
      rows.forEach((row, k) => {
        for (let j = 0; j < nCat; j++) cat[k * nCat + j] = cells[row].cat[j];
      });
      feeds[CAT] = new this._ort.Tensor('string', cat, [n, nCat]);
    }
    const nDt = this.datetime.length;
    if (nDt) {
      const dt = new BigInt64Array(n * nDt);
      rows.forEach((row, k) => dt.set(cells[row].dt, k * nDt));
      feeds[DT] = new this._ort.Tensor('int64', dt, [n, nDt]);
    }
    return feeds;
  }

  _shape(results, n) {
    if (this.task === 'regression') {
      const data = results[this._outputs[0]].data;
      if (this._lean && this._lean.packed) {
        // the lean graph's prediction [N, 2]: the prediction and the refusal test
        const at = this._lean.signal.column === 0 ? 1 : 0;
        return Array.from({ length: n }, (_, i) => data[i * 2 + at]);
      }
      return Array.from(data.subarray(0, n));
    }
    const labels = results[this._outputs[0]].data;
    const proba = results[this._outputs[1]].data;
    const k = this.classes.length;
    const out = [];
    for (let i = 0; i < n; i++) {
      let label = labels[i];
      if (typeof label === 'bigint') label = Number.isSafeInteger(Number(label)) ? Number(label) : label;
      out.push({ label, probabilities: Array.from(proba.subarray(i * k, (i + 1) * k)) });
    }
    return out;
  }

  /** Release the onnxruntime session. */
  async close() {
    if (this._session && typeof this._session.release === 'function') await this._session.release();
    this._session = null;
    const reasons = this._lean && this._lean.reasons;
    if (reasons && typeof reasons.release === 'function') await reasons.release();
    if (this._lean) this._lean.reasons = null;
  }
}

module.exports = {
  ArtifactError,
  NAT,
  FORMAT_VERSION,
  InputError,
  LEAN_FILE,
  Model,
  PredictlibError,
  canonicalJson,
  load,
  manifestDigest,
  parseIsoDatetime,
  pythonFloatRepr,
  readArtifact,
};
