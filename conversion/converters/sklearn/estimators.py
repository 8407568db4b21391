"""Float64 converters for scikit-learn's tree models (trees, forests, gradient boosting).

skl2onnx converts these models to ``TreeEnsembleClassifier`` / ``TreeEnsembleRegressor``
(ai.onnx.ml opset 3), whose outputs are float32 in onnxruntime: a random forest's
probabilities are off by up to 3.6e-8 and the float64 variants do not even load. The
converters registered here emit the ai.onnx.ml opset-5 ``TreeEnsemble`` operator instead,
which has float64 thresholds, leaf weights and outputs, and they reproduce scikit-learn's
arithmetic operation by operation, so the outputs are equal to scikit-learn's bit for bit
except where a transcendental function is applied (sigmoid, softmax, exp: a few units
in the last place). See docs/estimators.md for the measured errors.

How each model's prediction is rebuilt:

* **Summation order.** scikit-learn adds the trees' contributions one tree after the
  other (``out += tree`` in estimator order; gradient boosting starts from the init
  prediction, HistGradientBoosting from its baseline). onnxruntime's TreeEnsemble sums a
  target's leaves in tree order only for small batches and at most 80 trees; otherwise it
  adds partial sums of blocks of trees, which changes the last bits. So every tree writes
  its own target (``[N, n_trees]``, each target receives exactly one leaf value, exact in
  any order), and a ``CumSum`` over the tree axis -- a sequential running sum in
  onnxruntime -- adds them in scikit-learn's order; the last running sum is the result.
* **Class distributions.** A tree leaf of a classifier holds a class distribution
  (``tree_.value``, already normalised by scikit-learn). An opset-5 leaf has one weight,
  so each tree outputs the *row number* of its leaf in a table of leaf distributions, and
  a ``Gather`` fetches the rows: ``[N, n_trees, n_classes]``, then ``CumSum`` and division
  by the number of trees, as ``ForestClassifier.predict_proba`` does.
* **float32 inputs.** scikit-learn's ``DecisionTree*``, forests and ``GradientBoosting*``
  cast X to float32 before comparing it with their float64 thresholds; the graph does the
  same (``Cast`` to float and back). A value too large for float32 makes scikit-learn
  raise; the graph records it as a refusal during an export.
* **HistGradientBoosting** compares float64 inputs with the real-valued thresholds of
  its predictor nodes (``num_threshold``), sends NaN where ``missing_go_to_left`` says,
  and maps categorical features through an ordinal encoder (``_preprocessor``): a value
  is a known category only if it is exactly equal to one of ``categories_``. The graph
  re-encodes the categorical columns the same way (``Equal`` against the categories,
  NaN for an unknown value) and splits on the codes with ``BRANCH_MEMBER`` nodes. An
  unknown category, a negative or missing value follows the node's missing-value branch.
* **Labels** come from the same quantity scikit-learn takes them from: the argmax of
  the (bit-exact) probabilities for trees and forests, the sign / argmax of the
  (bit-exact) raw scores for gradient boosting; ``ArgMax`` keeps the first maximum, like
  numpy, so ties are broken the same way.

Linear models (LinearRegression, Ridge, Lasso, ElasticNet, LogisticRegression) keep
skl2onnx's own converters: with a DoubleTensorType input they compute in float64
(``MatMul`` + ``Add``, then ``Sigmoid`` / ``Softmax``), within a few ulps of scikit-learn.

The graphs need ai.onnx.ml opset 5, which skl2onnx 1.20 cannot target: the nodes are
added as version 3 and :func:`finalize_ml_opset` raises the model's import afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx._parse import _parse_sklearn_classifier, _parse_sklearn_simple_model
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from ...core.frame import (
    StepContext,
    current_step,
    export_state,
    refuse_if_matrix,
)
from ...core.parsing import (
    InputGuard,
)
from ...core.trees import (  # noqa: F401 - TREE_ML_OPSET, finalize_ml_opset: re-exported
    TREE_ML_OPSET,
    Ensemble,
    Tree,
    argmax_label,
    binary_proba,
    class_labels,
    finalize_ml_opset,
    label,
    model_error,
    running_total,
    sigmoid,
    sign_label,
    softmax,
)

#: scikit-learn's DummyClassifier strategies whose predict_proba does not depend on X
_CONSTANT_DUMMY_CLASSIFIER = ("prior", "most_frequent", "constant")


# ------------------------------------------------------------------ tree ensembles


def sklearn_tree(estimator: Any, *, nan_free: bool = False) -> Tree:
    """A fitted scikit-learn tree as a :class:`Tree`.

    ``nan_free``: the input can never hold NaN (the input guard refuses it before an
    estimator whose tags say ``allow_nan=False``, e.g. GradientBoosting), so no node
    gets a missing-value track: with none in the whole ensemble onnxruntime walks the
    trees without testing ``isnan`` at every node (``has_missing_tracks_``; measured
    +3 to 6% on a 300-tree GradientBoostingRegressor). Finite values take the same
    branches either way."""
    t = estimator.tree_
    missing_left = np.asarray(t.missing_go_to_left).astype(bool)
    return Tree(
        left=np.asarray(t.children_left),
        right=np.asarray(t.children_right),
        feature=np.asarray(t.feature),
        threshold=np.asarray(t.threshold, dtype=np.float64),
        missing_left=np.zeros_like(missing_left) if nan_free else missing_left,
    )


# ------------------------------------------------------------------ graph pieces


def _input(ctx: StepContext, operator: Any) -> str:
    """The input matrix as float64."""
    var = operator.inputs[0]
    if isinstance(var.type, DoubleTensorType):
        return str(var.full_name)
    return ctx.node("Cast", [var.full_name], to=TensorProto.DOUBLE)


def _as_float32(ctx: StepContext, operator: Any, x: str) -> str:
    """``x`` rounded to float32 (and back): what scikit-learn's trees compare.

    During an export, values that overflow float32 (finite in float64) are refused:
    scikit-learn raises on them ("Input X contains infinity or a value too large for
    dtype('float32')")."""
    x32 = ctx.node("Cast", [x], to=TensorProto.FLOAT)
    if export_state() is not None:
        overflow = ctx.node("And", [ctx.node("IsInf", [x32]), ctx.node("Not", [ctx.node("IsInf", [x])])])
        refuse_if_matrix(
            ctx.step,
            type(ctx.model).__name__,
            _column_names(ctx, operator),
            overflow,
            "value too large for float32 (the estimator converts its input to float32 and raises)",
        )
    return ctx.node("Cast", [x32], to=TensorProto.DOUBLE)


def _column_names(ctx: StepContext, operator: Any) -> list[str]:
    """The names of the input matrix's columns (set by the pipeline's input guard)."""
    names = getattr(operator.inputs[0], "predictlib_names", None)
    if names is not None and len(names) == int(ctx.model.n_features_in_):
        return list(names)
    return [f"{ctx.step}[{j}]" for j in range(int(ctx.model.n_features_in_))]


def _check_single_output(model: Any) -> None:
    if getattr(model, "n_outputs_", 1) != 1:
        raise model_error(model, "n_outputs_", "multi-output models are not exported")


# ------------------------------------------------------------------ converters


def _convert_tree_regressor(scope: Any, operator: Any, container: Any) -> None:
    """DecisionTreeRegressor / ExtraTreeRegressor: the leaf value."""
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    _check_single_output(model)
    x = _as_float32(ctx, operator, _input(ctx, operator))
    ens = Ensemble()
    ens.add_tree(sklearn_tree(model), 0, model.tree_.value[:, 0, 0])
    ctx.node("Identity", [ens.emit(ctx, x)], ctx.y(0))


def _convert_forest_regressor(scope: Any, operator: Any, container: Any) -> None:
    """RandomForestRegressor / ExtraTreesRegressor: the trees' values added in order, / n."""
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    _check_single_output(model)
    x = _as_float32(ctx, operator, _input(ctx, operator))
    ens = Ensemble()
    for t, est in enumerate(model.estimators_):
        ens.add_tree(sklearn_tree(est), t, est.tree_.value[:, 0, 0])
    n = len(model.estimators_)
    total = running_total(ctx, ens.emit(ctx, x), n, 1)
    ctx.node("Div", [total, ctx.const(float(n))], ctx.y(0))


def _leaf_rows(ens: Ensemble, estimators: Sequence[Any], n_classes: int) -> np.ndarray:
    """Add the trees to ``ens`` (tree ``t`` -> target ``t``) with, as leaf weight, the row
    of the leaf's class distribution in the returned table ``[n_leaves, n_classes]``."""
    rows = []
    offset = 0
    for t, est in enumerate(estimators):
        tree = sklearn_tree(est)
        leaves = np.flatnonzero(tree.left < 0)
        weights = np.zeros(len(tree.left))
        weights[leaves] = offset + np.arange(len(leaves))
        ens.add_tree(tree, t, weights)
        rows.append(est.tree_.value[leaves, 0, :n_classes])
        offset += len(leaves)
    return np.ascontiguousarray(np.concatenate(rows), dtype=np.float64)


def _convert_tree_classifier(scope: Any, operator: Any, container: Any) -> None:
    """DecisionTreeClassifier / ExtraTreeClassifier: the leaf's class distribution."""
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    _check_single_output(model)
    x = _as_float32(ctx, operator, _input(ctx, operator))
    n_classes = len(model.classes_)
    ens = Ensemble()
    table = _leaf_rows(ens, [model], n_classes)
    row = ctx.node("Cast", [ens.emit(ctx, x)], to=TensorProto.INT64)
    row = ctx.node("Reshape", [row, ctx.const([-1], np.int64)])
    proba = ctx.node("Gather", [ctx.const(table), row], ctx.y(1), axis=0)
    argmax_label(ctx, proba, ctx.y(0))


def _convert_forest_classifier(scope: Any, operator: Any, container: Any) -> None:
    """RandomForestClassifier / ExtraTreesClassifier: mean of the trees' distributions."""
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    _check_single_output(model)
    x = _as_float32(ctx, operator, _input(ctx, operator))
    n_classes = len(model.classes_)
    n = len(model.estimators_)
    ens = Ensemble()
    table = _leaf_rows(ens, model.estimators_, n_classes)
    rows = ctx.node("Cast", [ens.emit(ctx, x)], to=TensorProto.INT64)
    per_tree = ctx.node("Gather", [ctx.const(table), rows], axis=0)  # [N, n, n_classes]
    total = running_total(ctx, per_tree, n, n_classes)
    proba = ctx.node("Div", [total, ctx.const(float(n))], ctx.y(1))
    argmax_label(ctx, proba, ctx.y(0))


def _gb_raw(ctx: StepContext, operator: Any) -> tuple[str, int]:
    """GradientBoosting*: init prediction + learning_rate * tree values, stage by stage."""
    model = ctx.model
    init = model.init_
    if isinstance(init, str):
        if init != "zero":
            raise model_error(model, "init", f"init_ {init!r} is not exported")
    elif not isinstance(init, DummyRegressor) and not (
        isinstance(init, DummyClassifier) and init.strategy in _CONSTANT_DUMMY_CLASSIFIER
    ):
        raise model_error(
            model,
            "init",
            f"an init estimator ({type(init).__name__}) whose prediction depends on the input "
            "is not exported (supported: 'zero' and the default constant DummyRegressor / "
            "DummyClassifier)",
        )
    n_features = int(model.n_features_in_)
    # the very function predict uses, on a dummy row: the init prediction is constant
    with warnings.catch_warnings():  # an init estimator fitted on a DataFrame warns about names
        warnings.simplefilter("ignore", UserWarning)
        start = np.asarray(model._raw_predict_init(np.zeros((1, n_features), np.float32)), np.float64)[0]
    stages, k = model.estimators_.shape
    ens = Ensemble()
    for j in range(k):
        ens.add_constant(j, start[j])
    rate = float(model.learning_rate)
    for i in range(stages):
        for j in range(k):
            est = model.estimators_[i, j]
            # predict_stages: out[i, k] += scale * value[node]
            # GradientBoosting does not accept NaN (its input guard refuses it): no tracks
            tree = sklearn_tree(est, nan_free=True)
            ens.add_tree(tree, (i + 1) * k + j, rate * est.tree_.value[:, 0, 0])
    x = _as_float32(ctx, operator, _input(ctx, operator))
    return running_total(ctx, ens.emit(ctx, x), stages + 1, k), k


def _convert_gb_regressor(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    raw, _ = _gb_raw(ctx, operator)
    ctx.node("Identity", [raw], ctx.y(0))  # predict returns the raw prediction, any loss


def _convert_gb_classifier(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    link = type(model._loss.link).__name__
    if link not in ("LogitLink", "HalfLogitLink", "MultinomialLogit"):
        raise model_error(model, "loss", f"loss {model.loss!r} (link {link}) is not exported")
    raw, k = _gb_raw(ctx, operator)
    if k == 1:
        # predict: raw >= 0 -> classes_[1]; predict_proba: expit(raw) (exponential: expit(2 raw))
        sign_label(ctx, raw, ctx.y(0), strict=False)
        z = raw if link == "LogitLink" else ctx.node("Mul", [raw, ctx.const(2.0)])
        binary_proba(ctx, sigmoid(ctx, z), ctx.y(1))
    else:
        argmax_label(ctx, raw, ctx.y(0))
        ctx.node("Identity", [softmax(ctx, raw)], ctx.y(1))


# ------------------------------------------------------------------ HistGradientBoosting


@dataclass
class _HGBLayout:
    """Where the predictors' features are: their index in the preprocessed matrix
    (categorical columns first, encoded) -> a column of the graph's input (extended by
    the encoded categorical columns)."""

    columns: list[int]  # predictor feature index -> graph column
    categorical: list[int]  # input columns of the categorical features, in encoder order
    categories: list[np.ndarray]  # their known raw values (code = position)
    known_codes: list[np.ndarray]  # the codes the binner saw, per categorical feature


def _hgb_layout(model: Any) -> _HGBLayout:
    pre = model._preprocessor
    n = int(model.n_features_in_)
    if pre is None:
        return _HGBLayout(list(range(n)), [], [], [])
    is_cat = np.asarray(model.is_categorical_, dtype=bool)
    categorical = [int(j) for j in np.flatnonzero(is_cat)]
    numeric = [int(j) for j in np.flatnonzero(~is_cat)]
    encoder_slice = pre.output_indices_["encoder"]
    if (encoder_slice.start, encoder_slice.stop) != (0, len(categorical)):
        raise model_error(model, "_preprocessor", "unexpected layout of the categorical encoder")
    encoder = pre.named_transformers_["encoder"]
    categories = []
    for j, cats in zip(categorical, encoder.categories_, strict=True):
        cats = np.asarray(cats)
        if cats.dtype.kind not in "fiub":
            raise model_error(
                model,
                "categorical_features",
                f"categorical column {j} has non-numeric categories {cats.tolist()[:5]}...; the "
                "exported graph receives numbers (encode the categories before the estimator)",
            )
        cats = cats.astype(np.float64)
        categories.append(cats[~np.isnan(cats)])  # NaN is the missing value, not a category
    known = [np.asarray(model._bin_mapper.bin_thresholds_[f], np.float64) for f in range(len(categorical))]
    columns = [n + f for f in range(len(categorical))] + numeric
    return _HGBLayout(columns, categorical, categories, known)


def _hgb_tree(predictor: Any, layout: _HGBLayout) -> Tree:
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    feature = np.array([layout.columns[f] for f in nodes["feature_idx"]], dtype=np.int64)
    tree = Tree(
        left=left,
        right=right,
        feature=np.where(leaf, 0, feature),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
    )
    bitsets = np.asarray(predictor.raw_left_cat_bitsets)
    for i in np.flatnonzero(~leaf & nodes["is_categorical"].astype(bool)):
        f = int(nodes["feature_idx"][i])
        words = bitsets[int(nodes["bitset_idx"][i])]
        bits = (words[:, None].astype(np.uint64) >> np.arange(32, dtype=np.uint64)) & 1
        left_codes = set(np.flatnonzero(bits.ravel()).tolist())
        if nodes["missing_go_to_left"][i]:
            # left: the left set, unknown categories and missing values -> right iff known \ left
            right_codes = [c for c in layout.known_codes[f].astype(int).tolist() if c not in left_codes]
            tree.members[int(i)] = ([float(c) for c in sorted(right_codes)], False)
        else:
            tree.members[int(i)] = ([float(c) for c in sorted(left_codes)], True)
    return tree


def _hgb_input(ctx: StepContext, operator: Any, layout: _HGBLayout) -> str:
    """The input, extended by one column per categorical feature: its category code
    (position in ``categories_``, exact equality as the OrdinalEncoder does), NaN for a
    missing value or an unknown category."""
    x = _input(ctx, operator)
    if not layout.categorical:
        return x
    width = max(len(c) for c in layout.categories) or 1
    table = np.full((1, len(layout.categorical), width), np.nan)  # NaN pads: equal to nothing
    for j, cats in enumerate(layout.categories):
        table[0, j, : len(cats)] = cats
    values = ctx.node("Gather", [x, ctx.const(layout.categorical, np.int64)], axis=1)
    names = _column_names(ctx, operator)
    refuse_if_matrix(
        ctx.step,
        type(ctx.model).__name__,
        [names[j] for j in layout.categorical],
        ctx.node("IsInf", [values]),
        "infinite value in a categorical feature (scikit-learn raises on it)",
    )
    hits = ctx.node("Equal", [ctx.node("Unsqueeze", [values, ctx.const([2], np.int64)]), ctx.const(table)])
    hits = ctx.node("Cast", [hits], to=TensorProto.DOUBLE)  # [N, n_cat, width], one 1 at most
    code = ctx.node("Cast", [ctx.node("ArgMax", [hits], axis=2, keepdims=0)], to=TensorProto.DOUBLE)
    found = ctx.node("ReduceMax", [hits, ctx.const([2], np.int64)], keepdims=0)
    codes = ctx.node("Div", [code, found])  # 0 / 0 = NaN where no category matched
    return ctx.node("Concat", [x, codes], axis=1)


def _hgb_raw(ctx: StepContext, operator: Any) -> tuple[str, int]:
    """baseline + the trees' values, iteration by iteration (``_raw_predict``)."""
    model = ctx.model
    layout = _hgb_layout(model)
    k = int(model.n_trees_per_iteration_)
    baseline = np.asarray(model._baseline_prediction, np.float64).reshape(-1)
    ens = Ensemble()
    for j in range(k):
        ens.add_constant(j, baseline[j])
    for i, predictors in enumerate(model._predictors):
        for j, predictor in enumerate(predictors):
            ens.add_tree(_hgb_tree(predictor, layout), (i + 1) * k + j, predictor.nodes["value"])
    x = _hgb_input(ctx, operator, layout)
    return running_total(ctx, ens.emit(ctx, x), len(model._predictors) + 1, k), k


def _convert_hgb_regressor(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    link = type(model._loss.link).__name__
    if link not in ("IdentityLink", "LogLink"):
        raise model_error(model, "loss", f"loss {model.loss!r} (link {link}) is not exported")
    raw, _ = _hgb_raw(ctx, operator)
    ctx.node("Exp" if link == "LogLink" else "Identity", [raw], ctx.y(0))


def _convert_hgb_classifier(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    link = type(model._loss.link).__name__
    if link not in ("LogitLink", "MultinomialLogit"):
        raise model_error(model, "loss", f"loss {model.loss!r} (link {link}) is not exported")
    raw, k = _hgb_raw(ctx, operator)
    if k == 1:
        # predict: raw > 0 -> classes_[1] (strictly, unlike GradientBoostingClassifier)
        sign_label(ctx, raw, ctx.y(0), strict=True)
        binary_proba(ctx, sigmoid(ctx, raw), ctx.y(1))
    else:
        argmax_label(ctx, raw, ctx.y(0))
        ctx.node("Identity", [softmax(ctx, raw)], ctx.y(1))


# ------------------------------------------------------------------ registration


def _regressor_shapes(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].set_type(DoubleTensorType([n, 1]))


def _classifier_shapes(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    model = operator.raw_operator
    _, dtype = class_labels(model)
    label_type = Int64TensorType([n]) if dtype is np.int64 else StringTensorType([n])
    operator.outputs[0].set_type(label_type)
    operator.outputs[1].set_type(DoubleTensorType([n, len(model.classes_)]))


def _input_columns(scope: Any, var: Any) -> list[str] | None:
    """The column names of a scikit-learn step's input matrix, when the frame knows them."""
    names = getattr(var, "predictlib_columns", None)
    if names is not None:
        return list(names)
    for op in scope.operators.values():
        if isinstance(op.raw_operator, InputGuard) and any(o is var for o in op.outputs):
            return list(op.raw_operator.columns)
    return None


def _with_step(default: Callable[..., Any]) -> Callable[..., Any]:
    """skl2onnx's parser, plus: the operator remembers its pipeline step and input columns
    (for the refusals it records)."""

    def parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
        before = set(scope.operators)
        outputs = default(scope, model, inputs, custom_parsers=custom_parsers)
        for key, op in scope.operators.items():
            if key not in before and op.raw_operator is model:
                op.predictlib_step = current_step()
                op.predictlib_columns = _input_columns(scope, inputs[0]) if inputs else None
        return outputs

    return parse


_CLASSIFIERS: dict[type, Callable[[Any, Any, Any], None]] = {
    DecisionTreeClassifier: _convert_tree_classifier,
    ExtraTreeClassifier: _convert_tree_classifier,
    RandomForestClassifier: _convert_forest_classifier,
    ExtraTreesClassifier: _convert_forest_classifier,
    GradientBoostingClassifier: _convert_gb_classifier,
    HistGradientBoostingClassifier: _convert_hgb_classifier,
}
_REGRESSORS: dict[type, Callable[[Any, Any, Any], None]] = {
    DecisionTreeRegressor: _convert_tree_regressor,
    ExtraTreeRegressor: _convert_tree_regressor,
    RandomForestRegressor: _convert_forest_regressor,
    ExtraTreesRegressor: _convert_forest_regressor,
    GradientBoostingRegressor: _convert_gb_regressor,
    HistGradientBoostingRegressor: _convert_hgb_regressor,
}

for _cls, _converter in _CLASSIFIERS.items():
    update_registered_converter(
        _cls,
        f"Predictlib{_cls.__name__}",
        _classifier_shapes,
        _converter,
        parser=_with_step(_parse_sklearn_classifier),
        options={"zipmap": [True, False, "columns"], "nocl": [False]},
    )
for _cls, _converter in _REGRESSORS.items():
    update_registered_converter(
        _cls,
        f"Predictlib{_cls.__name__}",
        _regressor_shapes,
        _converter,
        parser=_with_step(_parse_sklearn_simple_model),
    )


def registered_estimators() -> list[type]:
    """The scikit-learn classes whose conversion this module replaces."""
    return [*_CLASSIFIERS, *_REGRESSORS]
