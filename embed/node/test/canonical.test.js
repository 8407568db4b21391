'use strict';
// The manifest digest: Python's canonical JSON, reproduced in JS.
const assert = require('node:assert/strict');
const { test } = require('node:test');

const { canonicalJson, pythonFloatRepr } = require('../client');

// repr() of each float, as Python 3 writes it
const PYTHON_REPRS = ["0.1", "0.2", "0.30000000000000004", "0.3333333333333333", "0.6666666666666666", "1e-05", "9.999999999999999e-05", "0.0001", "123456789012345.6", "1234567890123456.8", "9007199254740992.0", "1e+16", "1e+22", "1e+21", "5e-324", "2.2250738585072014e-308", "1.7976931348623157e+308", "-0.0", "100.0", "1e+100", "1.23e-18", "-731271.5117751976", "694867.4738744653", "527549.237953228", "-489861.9485211566", "-9129.825816118042", "-101017.8704225237", "303185.9454455259", "577446.7022710263", "-812280.8264515302", "-943305.0469559873", "0.0008357651039198697", "6.074379962852603e+18", "2.1060533511106927e-05", "2.6633056045725955e+20", "2.2876222127045264e+29", "1.0222715811004824e-11", "3.0589983033553536e-31", "6.495461355254984e-31", "9.391491627785105e-07", "0.0006864838541790798", "725.8526014465152", "0.0022169166627303504", "93916.70189485866", "2.3308445025757263e-17", "6.768485398499744e+17", "4.596034657377336e-13", "9.265066237858661e-05", "83757.79756625729", "9.221885624698874e-25", "1859062658947177.0"];

test('floats are written as Python repr() writes them', () => {
  for (const text of PYTHON_REPRS) assert.equal(pythonFloatRepr(Number(text)), text);
});

test('canonical JSON: sorted keys, no whitespace, Python escapes, int and float lexemes', () => {
  // the expected text is Python's json.dumps(json.loads(text), sort_keys=True,
  // separators=(",", ":"), ensure_ascii=False, allow_nan=False)
  const text = "{ \"b\": [1, 2.50, -0, -0.0, 1E5, 12345678901234567890, 1e-7, 0.1e1],\n  \"a\": \"tab\\t quote\\\" \\u00e9 \\u0001 \u00e9 \\/ \\ud83d\\ude00 \ud83d\ude00\",\n \"\u00e9\": {}, \"Z\": [], \"a\\u0000\": null, \"c\": true, \"\\ud83d\\ude00\": 1, \"\\uffff\": 2, \"d\": {\"y\": 1, \"x\": 2, \"y\": 3} }";
  const python = "{\"Z\":[],\"a\":\"tab\\t quote\\\" \u00e9 \\u0001 \u00e9 / \ud83d\ude00 \ud83d\ude00\",\"a\\u0000\":null,\"b\":[1,2.5,0,-0.0,100000.0,12345678901234567890,1e-07,1.0],\"c\":true,\"d\":{\"x\":2,\"y\":3},\"\u00e9\":{},\"\uffff\":2,\"\ud83d\ude00\":1}";
  assert.equal(canonicalJson(text), python);
  assert.throws(() => canonicalJson('{"a": NaN}'), SyntaxError);
  assert.throws(() => canonicalJson('{"a": 1e400}'), SyntaxError);
  assert.throws(() => canonicalJson('{"a": 1} x'), SyntaxError);
});
