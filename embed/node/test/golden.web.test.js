'use strict';
// Every artifact folder's golden vectors through onnxruntime-web (wasm, one thread) under Node.
require('../golden').goldenSuite('web', { integrity: true });
