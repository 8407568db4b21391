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

* **one-hot categorical features** (``cat_features`` with at most ``one_hot_max_size``
  categories): CatBoost splits on ``hash(text) == value``, its 32-bit hash of the text
  (``CalcCatFeatureHash``, a CityHash64 of the UTF-8 bytes); the model keeps only the
  hashes. At export the texts of the training frame (``export_pipeline(..., X_train=)``,
  as ``package()`` gives it, recomputed for the step through the pipeline's earlier steps;
  and the categories of a pandas ``category`` column) are hashed by CatBoost itself
  (:func:`category_hashes`), so each split value is known as a text; the graph looks the
  text up (a code per split value, NaN for any other text: an unseen text takes the
  "not equal" side, as CatBoost does, unless its 32-bit hash collides with a split
  value's, a chance of about 2^-32 per split value) and splits on the code with
  ``BRANCH_MEMBER``. A missing value (None / NaN) makes CatBoost raise: the graph refuses
  the row.

Refused at export, with the reason: CTR-encoded categorical features (more categories
than ``one_hot_max_size``: target statistics of hashed category combinations computed at
training), categorical features given as numbers (CatBoost hashes their decimal text;
give them as text), a one-hot split whose text is not in the training frame, text and
embedding features, other losses.
"""

from __future__ import annotations

import ast
import json
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import numpy as np
from onnx import TensorProto

from ..core.frame import STR, ExportError, Frame, StepContext
from ..core.trees import Ensemble, Tree, argmax_label, binary_proba, model_error, sigmoid, sign_label, softmax
from .boosting import at_step, feature_matrix, register_boosting, training_input

try:  # a build-time dependency: nothing is registered without it
    import catboost
except ImportError:  # pragma: no cover - exercised in environments without CatBoost
    catboost = None

_RAW = ("RMSE", "MAE", "Quantile", "MAPE", "Huber", "Lq", "Expectile", "LogLinQuantile", "FairLoss", "SMAPE")
_EXP = ("Poisson", "Tweedie")
_BINARY = ("Logloss", "CrossEntropy")

SUPPORTS = (
    "numeric features (nan_mode Min / Max / forbidden); losses RMSE, MAE, Quantile, MAPE, Huber, Lq, "
    "Expectile, Poisson, Tweedie (exp), Logloss, CrossEntropy, MultiClass; one-hot categorical "
    "features given as text (hashed at export from the training texts, missing refused); not CTR "
    "categorical features, categories given as numbers, text or embedding features"
)


def _load(model: Any) -> dict[str, Any]:
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


def _tree(
    tree: dict[str, Any],
    floats: list[dict[str, Any]],
    cats: list[dict[str, Any]],
    codes: dict[int, list[int]],
    k: int,
) -> tuple[Tree, list[np.ndarray]]:
    """An oblivious tree unrolled into a binary tree (node 0 the root, level by level), and
    per output its leaf values. A one-hot split tests the code of its hash value (the
    position in ``codes[categorical feature]``): equal -> bit 1 (right), else bit 0."""
    splits = tree.get("splits", [])
    depth = len(splits)
    n_inner = 2**depth - 1
    n = 2 * n_inner + 1
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    feature = np.zeros(n, dtype=np.int64)
    threshold = np.zeros(n)
    missing_left = np.zeros(n, dtype=bool)
    members: dict[int, tuple[list[float], bool]] = {}
    leaf_index = np.zeros(n, dtype=np.int64)
    for node in range(n_inner):  # heap layout: level = floor(log2(node + 1))
        level = (node + 1).bit_length() - 1
        split = splits[level]
        left[node], right[node] = 2 * node + 1, 2 * node + 2
        if split.get("split_type", "FloatFeature") == "OneHotFeature":
            c = int(split["cat_feature_index"])
            feature[node] = int(cats[c]["flat_feature_index"])
            members[node] = ([float(codes[c].index(int(split["value"])))], False)
            missing_left[node] = True
            continue
        f = int(split["float_feature_index"])
        feature[node] = int(floats[f]["flat_feature_index"])
        threshold[node] = float(np.float32(split["border"]))
        missing_left[node] = floats[f].get("nan_value_treatment") != "AsTrue"
    for node in range(n_inner, n):  # leaf: its path's bits, bit i = the side taken at level i
        bits, current, level = 0, node, depth - 1
        while current > 0:
            parent = (current - 1) // 2
            bits |= int(current == 2 * parent + 2) << level
            current, level = parent, level - 1
        leaf_index[node] = bits
    values = np.asarray(tree["leaf_values"], dtype=np.float64).reshape(2**depth, k)
    structure = Tree(left, right, feature, threshold, missing_left, members=members)
    return structure, [values[leaf_index, j] for j in range(k)]


def category_hashes(texts: Iterable[str]) -> dict[str, int]:
    """CatBoost's hash of each text (``CalcCatFeatureHash``: the low 32 bits of CityHash64
    of the UTF-8 bytes, as the int32 a one-hot split stores), computed by CatBoost itself:
    its Python export of a model (``save_model(format="python", pool=...)``) writes the
    hash of every categorical value of the pool it is given. Texts CatBoost's export does
    not give back (none seen) are left out."""
    wanted = sorted(set(texts))
    if not wanted:
        return {}
    import pandas as pd

    rows = wanted if len(wanted) > 1 else wanted * 2
    frame = pd.DataFrame({"c": rows})
    pool = catboost.Pool(frame, label=np.arange(len(rows)) % 2, cat_features=[0])
    dummy = catboost.CatBoostRegressor(
        iterations=1, verbose=0, thread_count=1, allow_writing_files=False, allow_const_label=True
    )
    dummy.fit(pool)
    handle, path = tempfile.mkstemp(suffix=".py")
    os.close(handle)
    try:
        dummy.save_model(path, format="python", pool=catboost.Pool(frame, cat_features=[0]))
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    finally:
        os.unlink(path)
    head = "cat_features_hashes = {"
    start = source.index(head) + len(head) - 1
    end = source.index("\n}\n", start) + 2
    printed = ast.literal_eval(source[start:end])  # non-ASCII bytes printed as \xNN escapes
    found: dict[str, int] = {}
    for key, value in printed.items():
        try:
            text = key.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        found[text] = int(value)
    return {t: found[t] for t in wanted if t in found}


def _ctr_error(model: Any, info: dict[str, Any]) -> ExportError:
    cats = info.get("categorical_features", [])
    used = sorted(
        {
            int(e["cat_feature_index"])
            for ctr in info.get("ctrs", [])
            for e in ctr.get("elements", [])
            if "cat_feature_index" in e
        }
    )
    names = [str(cats[c].get("feature_id") or cats[c]["flat_feature_index"]) for c in used if c < len(cats)]
    size = model.get_all_params().get("one_hot_max_size") if hasattr(model, "get_all_params") else None
    return model_error(
        model,
        "cat_features",
        f"the categorical features {names} are encoded with CTRs (target statistics of hashed "
        f"category combinations, computed at training), which are not exported: they have more "
        f"categories than one_hot_max_size={size}; fit with one_hot_max_size above their number of "
        "categories (one-hot splits on the texts are exported), or encode them in an earlier step "
        "(e.g. feature-engine's OrdinalEncoder or MeanEncoder)",
    )


def _text_codes(
    ctx: StepContext, frame: Frame, cats: list[dict[str, Any]], codes: dict[int, list[int]]
) -> list[dict[str, float]]:
    """Per categorical column of ``frame`` (in frame order): text -> code of its hash (the
    position in ``codes``), for the texts whose hash a one-hot split tests."""
    model = ctx.model
    order = list(frame.order)
    by_flat = {int(c["flat_feature_index"]): i for i, c in enumerate(cats)}
    known = {c.name: c for c in frame.columns()}
    training = training_input(model)
    out: list[dict[str, float]] = []
    for name in (c for c in order if known[c].kind == STR):
        j = order.index(name)
        values = codes.get(by_flat[j], [])
        if not values:
            out.append({})
            continue
        texts: set[str] = set(known[name].categories or ())
        if training is not None:
            column = (
                training.iloc[:, j] if hasattr(training, "iloc") else np.asarray(training, dtype=object)[:, j]
            )
            texts.update(v for v in _distinct(column) if isinstance(v, str))
        elif not texts:
            raise model_error(
                model,
                "cat_features",
                f"column '{name}' is a one-hot categorical feature, and CatBoost keeps only 32-bit hashes "
                "of its texts: the export needs the frame the model was fitted on to know which text "
                "each split tests (predictlib.build.package(pipeline, X_train, ...) gives it, or "
                "export_pipeline(..., X_train=X_train))",
            )
        hashes = category_hashes(texts)
        mapping = {t: float(values.index(h)) for t, h in hashes.items() if h in values}
        lost = sorted(set(values) - {h for h in hashes.values()})
        if lost:
            raise model_error(
                model,
                "cat_features",
                f"column '{name}': {len(lost)} of the categories the one-hot splits test (CatBoost "
                f"hashes {lost[:5]}) are not among the texts of the training frame given to the "
                "export: give the frame the model was fitted on (the categories must be text)",
            )
        out.append(mapping)
    return out


def _distinct(column: Any) -> list[Any]:
    """The distinct values of a column (any objects), in order of appearance."""
    seen: dict[Any, None] = {}
    for v in column:
        try:
            seen.setdefault(v, None)
        except TypeError:  # unhashable: not a category text anyway
            continue
    return list(seen)


def _raw(ctx: StepContext, operator: Any, data: dict[str, Any]) -> tuple[str, int]:
    model = ctx.model
    info = data["features_info"]
    floats = info.get("float_features", [])
    cats = info.get("categorical_features", [])
    splits = [s for t in data["oblivious_trees"] for s in t.get("splits", [])]
    kinds = {s.get("split_type", "FloatFeature") for s in splits}
    if "OnlineCtr" in kinds:
        raise _ctr_error(model, info)
    if kinds - {"FloatFeature", "OneHotFeature"}:
        raise model_error(model, "splits", f"splits {sorted(kinds)} are not exported")
    hashed: dict[int, set[int]] = {}
    for split in splits:
        if split.get("split_type") == "OneHotFeature":
            hashed.setdefault(int(split["cat_feature_index"]), set()).add(int(split["value"]))
    codes = {c: sorted(v) for c, v in hashed.items()}
    names = [str(n) for n in model.feature_names_] if getattr(model, "feature_names_", None) else None
    flats = [int(f["flat_feature_index"]) for f in (*floats, *cats)]
    n_features = len(names) if names else 1 + max(flats, default=0)
    fitted_on_frame = getattr(model, "feature_names_in_", None) is not None or _fitted_on_frame(model)
    frame: Frame | None = getattr(operator, "predictlib_frame", None)
    text_codes = None
    if cats:
        cat_flat = {int(c["flat_feature_index"]) for c in cats}
        if frame is None:
            raise model_error(
                model,
                "cat_features",
                "the categorical features reach CatBoost as numbers (the matrix of a scikit-learn step): "
                "CatBoost hashes the decimal text of a number, which is not exported; give CatBoost the "
                "categories as text columns",
            )
        order = list(frame.order)
        kind = {c.name: c.kind for c in frame.columns()}
        if len(order) == n_features:
            numeric_cats = [c for j, c in enumerate(order) if j in cat_flat and kind[c] != STR]
            if numeric_cats:
                raise model_error(
                    model,
                    "cat_features",
                    f"the categorical features {numeric_cats} are numbers: CatBoost hashes the decimal "
                    "text of an integer (and refuses other numbers), which is not exported; give them "
                    "as text (e.g. X[col] = X[col].astype(str) before fitting)",
                )
            texts_as_floats = [c for j, c in enumerate(order) if j not in cat_flat and kind[c] == STR]
            if texts_as_floats:
                raise model_error(
                    model,
                    "cat_features",
                    f"the text columns {texts_as_floats} are not categorical features of the model",
                )

        def text_codes(columns: list[str]) -> list[dict[str, float]]:
            assert frame is not None
            return _text_codes(ctx, frame, cats, codes)

    x = feature_matrix(ctx, operator, names if fitted_on_frame else None, n_features, text_codes)
    if cats and frame is not None:
        kind_of = {c.name: c.kind for c in frame.columns()}
        text = [c for c in frame.order if kind_of[c] == STR]
        if text:
            ctx.refuse_if(
                text,
                ctx.is_missing(ctx.gather(text), STR),
                "missing category: CatBoost raises on None / NaN in a categorical feature",
            )
    x = ctx.node("Cast", [ctx.node("Cast", [x], to=TensorProto.FLOAT)], to=TensorProto.DOUBLE)
    scale, bias = data.get("scale_and_bias", [1.0, [0.0]])
    bias = [float(b) for b in (bias if isinstance(bias, list) else [bias])]
    k = max(1, len(bias))
    ens = Ensemble()
    for tree in data["oblivious_trees"]:
        structure, per_output = _tree(tree, floats, cats, codes, k)
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
    with at_step(operator):
        _regressor(StepContext(scope, operator, container), operator)


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    with at_step(operator):
        _classifier(StepContext(scope, operator, container), operator)


def _regressor(ctx: StepContext, operator: Any) -> None:
    loss = _loss(ctx.model)
    if loss in (*_BINARY, "MultiClass"):
        raise model_error(ctx.model, "loss_function", f"a regressor with loss {loss!r} is not exported")
    data = _load(ctx.model)
    raw, _ = _raw(ctx, operator, data)
    ctx.node("Exp" if loss in _EXP else "Identity", [raw], ctx.y(0))


def _classifier(ctx: StepContext, operator: Any) -> None:
    model = ctx.model
    loss = _loss(model)
    data = _load(model)
    raw, k = _raw(ctx, operator, data)
    if loss in _BINARY and k == 1 and len(model.classes_) == 2:
        binary_proba(ctx, sigmoid(ctx, raw), ctx.y(1))
        sign_label(ctx, raw, ctx.y(0), strict=True)  # CatBoost: raw > 0 (p of 0.5 for raw 1e-20)
    elif loss == "MultiClass" and k == len(model.classes_):
        ctx.node("Identity", [softmax(ctx, raw)], ctx.y(1))
        # CatBoost's label: the first maximum of the raw scores (exact), not of the
        # probabilities (scores 1 ulp apart can give equal probabilities)
        argmax_label(ctx, raw, ctx.y(0))
    else:
        raise model_error(
            model, "loss_function", f"loss {loss!r} for {len(model.classes_)} classes is not exported"
        )


if catboost is not None:
    register_boosting(
        catboost.CatBoostRegressor,
        _convert_regressor,
        library="catboost",
        classifier=False,
        supports=SUPPORTS,
        errors=(catboost.CatBoostError,),
    )
    register_boosting(
        catboost.CatBoostClassifier,
        _convert_classifier,
        library="catboost",
        classifier=True,
        supports=SUPPORTS,
        errors=(catboost.CatBoostError,),
    )
