'use strict';
/**
 * golden.json (the golden vectors written beside model.onnx by the build): decoding,
 * comparison with the client's answers, and the node:test suite that runs them.
 *
 * Encoding: a float JSON cannot hold is {"$float": "nan" | "inf" | "-inf"}, in
 * records, expected outputs and problem values alike; a datetime is
 * {"$datetime": "<ISO 8601>"}, which decode() keeps as it is (client.js takes it as a
 * datetime, to the nanosecond); a column left out of a record is absent from the input.
 */

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { isDeepStrictEqual } = require('node:util');

const { ArtifactError, InputError, LEAN_FILE, load, readArtifact } = require('./client');

const GOLDEN_FILE = 'golden.json';
const FLOAT = '$float';
const FLOATS = { nan: NaN, inf: Infinity, '-inf': -Infinity };

/** golden.json's JSON values -> JS values (NaN and infinities restored; datetimes kept
 * as { $datetime: text }, the client's exact form). */
function decode(value) {
  if (Array.isArray(value)) return value.map(decode);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === FLOAT) {
      if (!(value[FLOAT] in FLOATS)) throw new Error(`unknown ${FLOAT} value ${JSON.stringify(value[FLOAT])}`);
      return FLOATS[value[FLOAT]];
    }
    return Object.fromEntries(keys.map((k) => [k, decode(value[k])]));
  }
  return value;
}

/** JS values -> golden.json's JSON values (undefined members are left out). */
function encode(value) {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return { [FLOAT]: 'nan' };
    if (value === Infinity) return { [FLOAT]: 'inf' };
    if (value === -Infinity) return { [FLOAT]: '-inf' };
    return value;
  }
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(encode);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, encode(v)]),
    );
  }
  return value;
}

/** The equivalence rule: equal (NaN and infinities included), or both finite and
 * |a - b| <= atol + rtol * |b|. */
function withinTolerance(got, expected, tolerance) {
  if (got === expected || (Number.isNaN(got) && Number.isNaN(expected))) return true;
  if (!Number.isFinite(got) || !Number.isFinite(expected)) return false;
  return Math.abs(got - expected) <= tolerance.atol + tolerance.rtol * Math.abs(expected);
}

/** How the client's `got` output differs from golden `expected` (decoded): [] when it matches. */
function outputMismatches(expected, got, tolerance) {
  const out = [];
  if ('prediction' in expected && !withinTolerance(got, expected.prediction, tolerance)) {
    out.push(`prediction ${got}, expected ${expected.prediction}`);
  }
  if ('label' in expected && got.label !== expected.label) {
    out.push(`label ${JSON.stringify(got.label)}, expected ${JSON.stringify(expected.label)}`);
  }
  if ('probabilities' in expected) {
    const p = got.probabilities;
    const q = expected.probabilities;
    if (p.length !== q.length || p.some((a, k) => !withinTolerance(a, q[k], tolerance))) {
      out.push(`probabilities ${JSON.stringify(p)}, expected ${JSON.stringify(q)}`);
    }
  }
  return out;
}

/**
 * How the client's problems for one record differ from golden's (as written, encoded):
 * the same columns, codes and values in the same order; the same reason text except for
 * `wrong_type`, whose text names a type in the runtime's own language.
 */
function problemMismatches(expected, got) {
  const view = (p, exact) => encode({ column: p.column, code: p.code, value: p.value, reason: exact ? p.reason : undefined });
  const want = expected.map((p) => view(p, p.code !== 'wrong_type'));
  const have = got.map((p) => view(p, p.code !== 'wrong_type'));
  return isDeepStrictEqual(want, have) ? [] : [`problems ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`];
}

/** golden.json of an artifact folder, checked against the manifest's sha256 (raw, not decoded). */
function readGolden(folder, manifest) {
  const data = fs.readFileSync(path.join(folder, GOLDEN_FILE));
  const entry = manifest.files && manifest.files[GOLDEN_FILE];
  if (!entry) throw new ArtifactError(`${folder}: the manifest lists no ${GOLDEN_FILE}`);
  const actual = crypto.createHash('sha256').update(data).digest('hex');
  if (actual !== entry.sha256) throw new ArtifactError(`${folder}: ${GOLDEN_FILE} does not match its manifest`);
  const golden = JSON.parse(data.toString('utf8'));
  if (golden.format !== 'predictlib-golden' || golden.format_version !== 1) {
    throw new ArtifactError(`${folder}: ${GOLDEN_FILE} is not predictlib-golden format 1`);
  }
  return golden;
}

/**
 * The artifact folders to test: PREDICTLIB_ARTIFACTS (folders separated by the path
 * delimiter, ':' on POSIX), else every folder of the repository's artifacts/.
 */
function artifactFolders() {
  const given = process.env.PREDICTLIB_ARTIFACTS;
  if (given) return given.split(path.delimiter).filter(Boolean);
  const root = path.resolve(__dirname, '..', '..', 'artifacts');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((name) => path.join(root, name))
    .filter((folder) => fs.existsSync(path.join(folder, 'manifest.json')))
    .sort();
}

const clean = (problems) => problems.map(({ row, ...rest }) => rest);

/** The node:test suite: every artifact folder's golden vectors through `backend`. */
function goldenSuite(backend, { integrity = false } = {}) {
  const { describe, it, before, after } = require('node:test');
  const folders = artifactFolders();
  if (folders.length === 0) {
    it('has artifact folders to test', () => {
      assert.fail('no artifact folder: set PREDICTLIB_ARTIFACTS or run `nox -s build` first');
    });
    return;
  }
  for (const folder of folders) {
    const { manifest } = readArtifact(folder);
    const files = [
      'model.onnx',
      ...Object.keys(manifest.files || {}).filter((f) => manifest.files[f].role === 'ort_model'),
      ...(manifest.lean ? [LEAN_FILE] : []), // the lean graph, model.onnx naming the refused rows' checks
    ];
    for (const file of files) {
      describe(`${manifest.name} ${manifest.version}: ${file} on onnxruntime-${backend}`, () => {
        let model;
        let golden;
        let tolerance;
        before(async () => {
          model = await load(folder, { backend, file });
          golden = readGolden(folder, manifest);
          tolerance = manifest.equivalence.tolerance;
        });
        after(async () => {
          if (model) await model.close();
        });

        it('golden.json states the manifest tolerance and enough records', () => {
          assert.equal(golden.tolerance.rtol, tolerance.rtol);
          assert.equal(golden.tolerance.atol, tolerance.atol);
          assert.equal(golden.model.name, manifest.name);
          assert.ok(golden.accepted.length >= 200, `${golden.accepted.length} accepted golden records`);
          assert.ok(golden.refused.length > 0);
        });

        it('accepted golden records: the same outputs within the tolerance', async () => {
          const records = golden.accepted.map((item) => decode(item.record));
          const results = await model.evaluate(records);
          const failures = [];
          results.forEach((result, k) => {
            const item = golden.accepted[k];
            if (!result.ok) failures.push(`record ${item.id}: refused (${result.problems.map((p) => p.reason).join('; ')})`);
            else failures.push(...outputMismatches(decode(item.expected), result.output, tolerance).map((m) => `record ${item.id}: ${m}`));
          });
          assert.deepEqual(failures.slice(0, 10), [], `${failures.length} record(s) differ`);
          // the all-or-nothing API gives the same answers
          assert.deepEqual(await model.predict(records), results.map((r) => r.output));
        });

        it('refused golden records: the same problems', async () => {
          const records = golden.refused.map((item) => decode(item.record));
          const results = await model.evaluate(records);
          const failures = [];
          results.forEach((result, k) => {
            const item = golden.refused[k];
            if (result.ok) failures.push(`record ${item.id}: predicted ${JSON.stringify(result.output)}, must be refused`);
            else {
              assert.ok(result.problems.every((p) => p.row === k));
              failures.push(...problemMismatches(item.problems, clean(result.problems)).map((m) => `record ${item.id}: ${m}`));
            }
          });
          assert.deepEqual(failures.slice(0, 10), [], `${failures.length} record(s) differ`);
        });

        it('one record at a time: an output, or InputError with row null', async () => {
          for (const item of golden.accepted.slice(0, 10)) {
            const got = await model.predict(decode(item.record));
            assert.deepEqual(outputMismatches(decode(item.expected), got, tolerance), []);
          }
          for (const item of golden.refused.slice(0, 10)) {
            await assert.rejects(model.predict(decode(item.record)), (exc) => {
              assert.ok(exc instanceof InputError);
              assert.ok(exc.problems.every((p) => p.row === null));
              assert.deepEqual(problemMismatches(item.problems, clean(exc.problems)), []);
              return true;
            });
          }
        });

        it('a batch with refused records throws InputError listing every record\'s problems', async () => {
          const graph = golden.refused.find((item) => item.source !== 'input_contract');
          const contract = golden.refused.find((item) => item.source === 'input_contract');
          const ok = decode(golden.accepted[0].record);
          // an input-contract problem in one record does not hide the graph's refusal of another
          // (a model whose graph refuses nothing, e.g. a LightGBM model after imputers, has
          // input-contract refusals only)
          const batch = graph ? [ok, decode(graph.record), ok, decode(contract.record)] : [ok, decode(contract.record)];
          const contractRow = graph ? 3 : 1;
          await assert.rejects(model.predict(batch), (exc) => {
            assert.ok(exc instanceof InputError);
            assert.deepEqual([...new Set(exc.problems.map((p) => p.row))], graph ? [1, 3] : [1]);
            const rows = (row) => clean(exc.problems.filter((p) => p.row === row));
            if (graph) assert.deepEqual(problemMismatches(graph.problems, rows(1)), []);
            assert.deepEqual(problemMismatches(contract.problems, rows(contractRow)), []);
            return true;
          });
          assert.deepEqual(await model.predict([]), []);
          await assert.rejects(model.predict('not a record'), InputError);
          await assert.rejects(model.predict([ok, 42]), (exc) => exc.problems[0].code === 'not_a_record' && exc.problems[0].row === 1);
        });
      });
    }
  }
  if (integrity) integritySuite(folders[0], backend);
}

/** Damaged or edited artifacts are refused before a session exists. */
function integritySuite(folder, backend) {
  const { describe, it, before, after } = require('node:test');
  describe('artifact integrity', () => {
    let tmp;
    before(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'predictlib-embed-'));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const copy = (name) => {
      const target = path.join(tmp, name);
      fs.cpSync(folder, target, { recursive: true });
      return target;
    };

    it('refuses a model.onnx or model.ort that is not the one built', async () => {
      for (const file of ['model.onnx', 'model.ort', LEAN_FILE]) {
        const target = copy(`damaged-${file}`);
        const where = path.join(target, file);
        if (!fs.existsSync(where)) continue;
        const data = fs.readFileSync(where);
        data[data.length - 1] ^= 1;
        fs.writeFileSync(where, data);
        await assert.rejects(load(target, { backend, file }), (exc) => exc instanceof ArtifactError && /does not match its manifest/.test(exc.message));
      }
    });

    it('refuses an edited manifest, accepts a reformatted one', async () => {
      const edited = copy('edited');
      const where = path.join(edited, 'manifest.json');
      const text = fs.readFileSync(where, 'utf8');
      fs.writeFileSync(where, text.replace('"missing_category": "', '"missing_category": "x'));
      await assert.rejects(load(edited, { backend }), /modified after it was built/);
      // whitespace is not part of the digest (keys and number lexemes are kept)
      const compact = copy('compact');
      fs.writeFileSync(path.join(compact, 'manifest.json'), text.replace(/\n\s*/g, ''));
      const model = await load(compact, { backend });
      assert.equal(model.name, JSON.parse(text).name);
      await model.close();
    });

    it('refuses a manifest of a newer format', async () => {
      const newer = copy('newer');
      const where = path.join(newer, 'manifest.json');
      fs.writeFileSync(where, fs.readFileSync(where, 'utf8').replace('"format_version": 1', '"format_version": 2'));
      await assert.rejects(load(newer, { backend }), /newer than this client reads/);
    });
  });
}

module.exports = {
  GOLDEN_FILE,
  artifactFolders,
  decode,
  encode,
  goldenSuite,
  outputMismatches,
  problemMismatches,
  readGolden,
  withinTolerance,
};
