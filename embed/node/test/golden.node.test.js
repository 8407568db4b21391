'use strict';
// Every artifact folder's golden vectors through onnxruntime-node (model.onnx and model.ort).
require('../golden').goldenSuite('node', { integrity: true });
