"""CatBoost's ``CatBoostRegressor`` / ``CatBoostClassifier`` in the graph, in float64.

Read from the model's own JSON (``save_model(format="json")``) and reproducing CatBoost's
evaluation of oblivious trees:

* **input**: CatBoost reads features as float32 (the graph casts to float32 and back);
* **a tree of depth d** tests one split per level, the same at every node of the level:
  bit ``i`` of the leaf index is ``x[f] > border`` (float32 borders); NaN gives 0, or 1
  where the feature's ``nan_value_treatment`` is ``AsTrue`` (``nan_mode="Max"``). The
  graph unrolls each tree into a binary tree of ``2^d`` leaves (``x <= border`` left);
* **sum**: the leaf values of the trees added one after the other in float64 (one
  ``TreeEnsemble`` target per output, see :mod:`predictlib.build.core.trees`), then
  ``scale * sum + bias``;
* **output**: the raw value for RMSE-like losses, ``exp`` for Poisson / Tweedie (what
  ``predict`` returns), ``[1 - p, p]`` with ``p = 1 / (1 + exp(-x))`` for Logloss /
  CrossEntropy, softmax for MultiClass; the label is the argmax of the probabilities.

Refused at export, with the reason: categorical features (one-hot or CTR). CatBoost keeps
only the 32-bit hashes of its categories (CityHash64 of the text), not the texts, so the
graph cannot know which text is which category; CTR features are, besides, statistics of
hashed combinations of categories. Encode categories in an earlier step (e.g.
feature-engine's ``OrdinalEncoder``) and give CatBoost numbers. Text and embedding
features and other losses are refused too.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np
from onnx import TensorProto

from ..core.frame import StepContext
from ..core.trees import Ensemble, Tree, argmax_label, binary_proba, model_error, sigmoid, softmax
from .boosting import feature_matrix, register_boosting

try:  # a build-time dependency: nothing is registered without it
    import catboost
except ImportError:  # pragma: no cover - exercised in environments without CatBoost
    catboost = None

_RAW = ("RMSE", "MAE", "Quantile", "MAPE", "Huber", "Lq", "Expectile", "LogLinQuantile", "FairLoss", "SMAPE")
_EXP = ("Poisson", "Tweedie")
_BINARY = ("Logloss", "CrossEntropy")

SUPPORTS = (
    "numeric features (nan_mode Min / Max / forbidden); losses RMSE, MAE, Quantile, MAPE, Huber, Lq, "
    "Expectile, Poisson, Tweedie (exp), Logloss, CrossEntropy, MultiClass; not categorical "
    "(one-hot / CTR: CatBoost keeps only hashes of the texts), text or embedding features"
)


def _load(model: Any) -> dict[str, Any]:
    if model.get_cat_feature_indices():
        raise model_error(
            model,
            "cat_features",
            "categorical features are not exported: CatBoost keeps only the 32-bit hashes of the "
            "category texts (CityHash64), not the texts, so a graph cannot tell which text is which "
            "category (and CTR features are statistics of hashed category combinations); encode the "
            "categories in an earlier step (e.g. feature-engine's OrdinalEncoder) and give CatBoost numbers",
        )
    for kind in ("get_text_feature_indices", "get_embedding_feature_indices"):
        getter = getattr(model, kind, None)
        if getter is not None and getter():
            raise model_error(model, kind.removeprefix("get_").removesuffix("_indices"), "not exported")
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as fh:
            return dict(json.load(fh))
    finally:
        os.unlink(path)


def _loss(model: Any) -> str:
    params = model.get_all_params() if hasattr(model, "get_all_params") else model.get_params()
    loss = str(params.get("loss_function", "RMSE")).split(":")[0]
    if loss not in (*_RAW, *_EXP, *_BINARY, "MultiClass"):
        raise model_error(model, "loss_function", f"loss {loss!r} is not exported")
    return loss


def _tree(tree: dict[str, Any], features: list[dict[str, Any]], k: int) -> tuple[Tree, list[np.ndarray]]:
    """An oblivious tree unrolled into a binary tree (node 0 the root, level by level), and
    per output its leaf values."""
    splits = tree.get("splits", [])
    depth = len(splits)
    n_inner = 2**depth - 1
    n = 2 * n_inner + 1
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    feature = np.zeros(n, dtype=np.int64)
    threshold = np.zeros(n)
    missing_left = np.zeros(n, dtype=bool)
    leaf_index = np.zeros(n, dtype=np.int64)
    for node in range(n_inner):  # heap layout: level = floor(log2(node + 1))
        level = (node + 1).bit_length() - 1
        split = splits[level]
        f = int(split["float_feature_index"])
        left[node], right[node] = 2 * node + 1, 2 * node + 2
        feature[node] = int(features[f]["flat_feature_index"])
        threshold[node] = float(np.float32(split["border"]))
        missing_left[node] = features[f].get("nan_value_treatment") != "AsTrue"
    for node in range(n_inner, n):  # leaf: its path's bits, bit i = the side taken at level i
        bits, current, level = 0, node, depth - 1
        while current > 0:
            parent = (current - 1) // 2
            bits |= int(current == 2 * parent + 2) << level
            current, level = parent, level - 1
        leaf_index[node] = bits
    values = np.asarray(tree["leaf_values"], dtype=np.float64).reshape(2**depth, k)
    return Tree(left, right, feature, threshold, missing_left), [values[leaf_index, j] for j in range(k)]


def _raw(ctx: StepContext, operator: Any, data: dict[str, Any]) -> tuple[str, int]:
    model = ctx.model
    info = data["features_info"]
    features = info.get("float_features", [])
    for split in (s for t in data["oblivious_trees"] for s in t.get("splits", [])):
        if split.get("split_type", "FloatFeature") != "FloatFeature":
            raise model_error(model, "splits", f"split {split.get('split_type')!r} is not exported")
    names = [str(n) for n in model.feature_names_] if getattr(model, "feature_names_", None) else None
    n_features = len(names) if names else 1 + max((int(f["flat_feature_index"]) for f in features), default=0)
    fitted_on_frame = getattr(model, "feature_names_in_", None) is not None or _fitted_on_frame(model)
    x = feature_matrix(ctx, operator, names if fitted_on_frame else None, n_features)
    x = ctx.node("Cast", [ctx.node("Cast", [x], to=TensorProto.FLOAT)], to=TensorProto.DOUBLE)
    scale, bias = data.get("scale_and_bias", [1.0, [0.0]])
    bias = [float(b) for b in (bias if isinstance(bias, list) else [bias])]
    k = max(1, len(bias))
    ens = Ensemble()
    for tree in data["oblivious_trees"]:
        structure, per_output = _tree(tree, features, k)
        if not tree.get("splits"):  # a tree without a split: one leaf
            for j in range(k):
                ens.add_constant(j, float(per_output[j][0]))
            continue
        for j in range(k):
            ens.add_tree(structure, j, per_output[j])
    for j in range(k):
        if j >= ens.n_targets:
            ens.add_constant(j, 0.0)
    total = ens.emit(ctx, x)
    if float(scale) != 1.0:
        total = ctx.node("Mul", [ctx.const(float(scale)), total])
    if any(b != 0.0 for b in bias):
        total = ctx.node("Add", [total, ctx.const([bias] if k > 1 else bias[:1])])
    return total, k


def _fitted_on_frame(model: Any) -> bool:
    names = getattr(model, "feature_names_", None) or []
    return bool(names) and any(str(n) != str(i) for i, n in enumerate(names))


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    loss = _loss(ctx.model)
    if loss in (*_BINARY, "MultiClass"):
        raise model_error(ctx.model, "loss_function", f"a regressor with loss {loss!r} is not exported")
    data = _load(ctx.model)
    raw, _ = _raw(ctx, operator, data)
    ctx.node("Exp" if loss in _EXP else "Identity", [raw], ctx.y(0))


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    loss = _loss(model)
    data = _load(model)
    raw, k = _raw(ctx, operator, data)
    if loss in _BINARY and k == 1 and len(model.classes_) == 2:
        binary_proba(ctx, sigmoid(ctx, raw), ctx.y(1))
    elif loss == "MultiClass" and k == len(model.classes_):
        ctx.node("Identity", [softmax(ctx, raw)], ctx.y(1))
    else:
        raise model_error(
            model, "loss_function", f"loss {loss!r} for {len(model.classes_)} classes is not exported"
        )
    argmax_label(ctx, ctx.y(1), ctx.y(0))


if catboost is not None:
    register_boosting(
        catboost.CatBoostRegressor,
        _convert_regressor,
        library="catboost",
        classifier=False,
        supports=SUPPORTS,
    )
    register_boosting(
        catboost.CatBoostClassifier,
        _convert_classifier,
        library="catboost",
        classifier=True,
        supports=SUPPORTS,
    )
