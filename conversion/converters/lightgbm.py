"""LightGBM's ``LGBMRegressor`` and ``LGBMClassifier`` in the graph, in float64, exact.

Read from the fitted booster's own dump (``Booster.dump_model()``: thresholds and
leaf values printed with 17 significant digits, so read back bit for bit) and
reproducing LightGBM's C++ prediction (``tree.h``, ``gbdt_prediction.cpp``):

* **input**: LightGBM reads a row as float64 and drops values with
  ``|x| <= kZeroThreshold`` (``1e-35f``) -- they become 0.0 -- when the model has a
  split where that matters (a ``missing_type=Zero`` node or a threshold within it);
* **numerical split** (``decision_type '<='``): ``x <= threshold`` goes left. By
  ``missing_type``: *None*, NaN is read as 0.0 (it goes where 0.0 goes); *Zero*, 0.0
  and NaN take the default direction (``default_left``); *NaN*, NaN takes it;
* **categorical split** (``'=='``, the left categories as a bitset): NaN, and values
  whose C++ ``int`` is negative (``x <= -1``) or that overflow it, go right; otherwise
  ``int(x)`` (truncation: -0.5 and 2.7 are categories 0 and 2) goes left when in the
  set. The graph computes that integer code in an extra column and splits on it with
  ``BRANCH_MEMBER`` (exact for integers; onnxruntime truncates non-integer inputs
  its own way);
* **pandas categories**: a model fitted on pandas ``category`` columns maps each
  column's text to its position in the training categories
  (``Booster.pandas_categorical``), NaN for a missing value or a text the training
  column did not have -- so the graph maps the text of the frame's ``cat`` columns
  the same way (a caller of the original model passes those columns as
  ``category`` dtype, or LightGBM refuses them);
* **sum**: ``output[k] = 0; output[k] += tree(x)`` for the trees of class ``k`` in
  iteration order, up to ``best_iteration`` when training stopped early (what
  ``predict()`` uses). One ``TreeEnsemble`` with one target per class adds them in
  that order (see :mod:`predictlib.build.core.trees`); ``boosting='rf'`` averages
  them (``/ n_iterations``);
* **linear trees** (``linear_tree=True``: ``leaf_const``, ``leaf_features``,
  ``leaf_coeff`` per leaf in the dump): ``Tree::Predict`` finds the leaf as above, then
  computes ``leaf_const + coeff[0] * x[f0] + coeff[1] * x[f1] + ...`` in float64, in that
  order, from the features as it reads them (``|x| <= 1e-35`` is 0.0), and returns the
  plain ``leaf_value`` when one of the leaf's features is NaN. The graph's
  ``TreeEnsemble`` gives each tree's leaf (its row in per-leaf tables: one target per
  tree), ``Gather`` fetches the constants, coefficients, feature indices and leaf values,
  ``GatherElements`` the features, ``CumSum`` adds the terms in LightGBM's order, ``Where``
  takes the leaf value on NaN; the trees are then added in order (``CumSum`` over the
  iterations, one column per class): bit for bit on any number of threads;
* **objective** (the link in the graph): identity for regression / regression_l1 /
  huber / fair / quantile / mape, ``sign(x) * x * x`` with ``reg_sqrt``, ``exp`` for
  poisson / gamma / tweedie, ``1 / (1 + exp(-sigmoid * x))`` for binary /
  cross_entropy / multiclassova, softmax for multiclass; ``LGBMClassifier``'s label
  is the argmax of its probabilities (first maximum), as its ``predict`` does.

A raw ``lightgbm.Booster`` (``lgb.train``) wrapped by :func:`predictlib.build.booster`
(``LGBMBoosterRegressor`` / ``LGBMBoosterClassifier``, ``booster_`` being the raw booster)
goes through the same code.

Refused at export, with the reason: custom objectives, ranking / cross_entropy_lambda
objectives, pandas categories that are not text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from ..boosters import LGBMBoosterClassifier, LGBMBoosterRegressor
from ..core.frame import StepContext
from ..core.trees import (
    Ensemble,
    Tree,
    argmax_label,
    binary_proba,
    model_error,
    running_total,
    sigmoid,
    softmax,
)
from .boosting import feature_matrix, register_boosting

try:  # a build-time dependency: nothing is registered without it
    import lightgbm
except ImportError:  # pragma: no cover - exercised in environments without LightGBM
    lightgbm = None

#: LightGBM's kZeroThreshold (``const double kZeroThreshold = 1e-35f``)
ZERO_THRESHOLD = float(np.float32(1e-35))
#: objectives whose output is the raw score
_IDENTITY = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
_EXP = ("poisson", "gamma", "tweedie")
_SIGMOID = ("binary", "cross_entropy", "multiclassova")
#: how LightGBM prints an infinite threshold (``Common::AvoidInf``)
_PRINTED_INFINITY = 1e300
#: the largest float64 whose C++ int conversion is defined (int32)
_INT_LIMIT = 2.0**31

SUPPORTS = (
    "objectives regression, regression_l1, huber, fair, quantile, mape (reg_sqrt too), poisson, gamma, "
    "tweedie, binary, cross_entropy, multiclass, multiclassova; boosting gbdt / dart / goss / rf; "
    "numerical splits with missing_type None / Zero / NaN (zero_as_missing, use_missing); categorical "
    "splits (categorical_feature=, pandas category columns of text); best_iteration; linear_tree (leaf_const "
    "+ sum(coeff * x), leaf_value when a leaf's feature is NaN)"
)


def _booster(model: Any) -> Any:
    return model.booster_


def _dump(model: Any) -> dict[str, Any]:
    return dict(_booster(model).dump_model())  # num_iteration None: best_iteration, as predict()


def _objective(model: Any, dump: dict[str, Any]) -> tuple[str, dict[str, str], bool]:
    """(name, parameters, sqrt) of the booster's objective string, e.g. 'binary sigmoid:1'."""
    words = str(dump.get("objective", "")).split()
    if not words:
        raise model_error(
            model, "objective", "a custom objective: its output transformation is unknown to the graph"
        )
    name = words[0]
    params = dict(w.split(":", 1) for w in words[1:] if ":" in w)
    sqrt = "sqrt" in words[1:]
    if name not in (*_IDENTITY, *_EXP, *_SIGMOID, "multiclass"):
        raise model_error(model, "objective", f"objective {name!r} is not exported")
    return name, params, sqrt


def _walk(
    node: dict[str, Any], nodes: list[dict[str, Any]], parent: int, side: int, links: list[list[int]]
) -> None:
    """Flatten a dumped tree (iteratively: trees can be deep) into ``nodes`` / ``links``."""
    stack = [(node, parent, side)]
    while stack:
        item, up, where = stack.pop()
        index = len(nodes)
        nodes.append(item)
        links.append([-1, -1])
        if up >= 0:
            links[up][where] = index
        if "leaf_value" not in item and "split_feature" in item:
            stack.append((item["right_child"], index, 1))
            stack.append((item["left_child"], index, 0))


def _tree(
    model: Any, info: dict[str, Any], columns: _Columns, k: int
) -> tuple[Tree, np.ndarray, list[dict[str, Any]]]:
    """A dumped tree as a :class:`Tree` reading the graph's columns (``columns``: where the
    category codes and the zero-as-missing copies of features are), its leaf values, and its
    nodes (node ``i`` of the :class:`Tree` is ``nodes[i]``)."""
    nodes: list[dict[str, Any]] = []
    links: list[list[int]] = []
    _walk(info["tree_structure"], nodes, -1, 0, links)
    n = len(nodes)
    left = np.array([lk[0] for lk in links], dtype=np.int64)
    right = np.array([lk[1] for lk in links], dtype=np.int64)
    feature = np.zeros(n, dtype=np.int64)
    threshold = np.zeros(n)
    missing_left = np.zeros(n, dtype=bool)
    values = np.zeros(n)
    tree = Tree(left, right, feature, threshold, missing_left)
    for i, node in enumerate(nodes):
        if left[i] < 0:
            values[i] = float(node.get("leaf_value", 0.0))
            continue
        f = int(node["split_feature"])
        if node["decision_type"] == "==":
            feature[i] = columns.codes[f]
            members = sorted({int(c) for c in str(node["threshold"]).split("||") if c != ""})
            tree.members[i] = ([float(c) for c in members], True)
            continue
        if node["decision_type"] != "<=":
            raise model_error(model, "decision_type", f"split {node['decision_type']!r} is not exported")
        t = float(node["threshold"])
        if abs(t) == _PRINTED_INFINITY:
            t = _huge_threshold(model, info, nodes, links, i, k)
        threshold[i] = t
        feature[i] = f
        missing = str(node.get("missing_type", "None"))
        if missing == "NaN":
            missing_left[i] = bool(node.get("default_left", False))
        elif missing == "Zero":  # NaN -> 0.0, and 0.0 takes the default way: read the copy
            feature[i] = columns.zero_as_nan[f]  # whose zeros are NaN
            missing_left[i] = bool(node.get("default_left", False))
        else:  # None: NaN is read as 0.0
            missing_left[i] = t >= 0.0
    return tree, values, nodes


def _huge_threshold(
    model: Any, info: dict[str, Any], nodes: list[dict[str, Any]], links: list[list[int]], i: int, k: int
) -> float:
    """The threshold of node ``i``, printed as +-1e300: LightGBM prints an infinite
    threshold (a split sending every number left) that way, and a booster read back from
    its text (a pickled model) then really has +-1e300. The booster says which: a row
    reaching the node with the feature at +-1.5e300 takes the left branch iff the
    threshold is infinite."""
    printed = float(nodes[i]["threshold"])
    parent = {child: up for up, pair in enumerate(links) for child in pair if child >= 0}
    path: list[tuple[int, int]] = []  # (ancestor, 0 left / 1 right)
    node = i
    while node in parent:
        up = parent[node]
        path.append((up, links[up].index(node)))
        node = up
    f = int(nodes[i]["split_feature"])
    row = np.full(int(model.booster_.num_feature()), np.nan)
    for up, side in path:
        a = nodes[up]
        g = int(a["split_feature"])
        if g == f:
            continue
        if a["decision_type"] == "==":
            members = [float(c) for c in str(a["threshold"]).split("||") if c != ""]
            row[g] = members[0] if side == 0 else np.nan
        else:
            t = float(a["threshold"])
            step = np.nextafter(t, np.inf) if side else t
            row[g] = step if step != 0.0 else (1.0 if side else -1.0)
    row[f] = 1.5 * printed
    leaves = model.booster_.predict(
        row[None, :], pred_leaf=True, start_iteration=int(info["tree_index"]) // k, num_iteration=1
    )
    leaf = int(np.asarray(leaves).reshape(-1)[int(info["tree_index"]) % k])
    stack, left_leaves = [links[i][0]], set()
    while stack:
        j = stack.pop()
        if links[j][0] < 0:
            left_leaves.add(int(nodes[j].get("leaf_index", -1)))
        else:
            stack += links[j]
    went_left = leaf in left_leaves
    # printed +1e300: 1.5e300 <= inf goes left; printed -1e300: -1.5e300 <= -1e300 goes left
    if printed > 0:
        return np.inf if went_left else printed
    return printed if went_left else -np.inf


@dataclass
class _Columns:
    """Extra columns of the trees' input: per categorical feature its category code, per
    feature with ``missing_type=Zero`` splits a copy with zeros (and tiny values) as NaN;
    ``zeroing``: LightGBM's reading of tiny values as 0 matters to a threshold."""

    codes: dict[int, int] = field(default_factory=dict)
    zero_as_nan: dict[int, int] = field(default_factory=dict)
    zeroing: bool = False


def _scan(dump: dict[str, Any], n_features: int) -> _Columns:
    categorical: set[int] = set()
    zero: set[int] = set()
    zeroing = False
    for info in dump["tree_info"]:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node or "leaf_value" in node:
                continue
            stack.extend((node["left_child"], node["right_child"]))
            f = int(node["split_feature"])
            if node["decision_type"] == "==":
                categorical.add(f)
                continue
            if str(node.get("missing_type")) == "Zero":
                zero.add(f)
            t = float(node["threshold"])
            zeroing |= abs(t) <= ZERO_THRESHOLD  # a tiny value and 0.0 compare differently
    columns = _Columns(zeroing=zeroing)
    for j, f in enumerate(sorted(categorical)):
        columns.codes[f] = n_features + j
    for j, f in enumerate(sorted(zero)):
        columns.zero_as_nan[f] = n_features + len(categorical) + j
    return columns


def _text_codes(model: Any) -> Any:
    """The mapping of text columns (pandas categories) to LightGBM's category codes."""
    categories = _booster(model).pandas_categorical

    def codes(text_columns: list[str]) -> list[dict[str, float]]:
        if not categories or len(categories) != len(text_columns):
            raise model_error(
                model,
                "pandas_categorical",
                f"the frame reaching it has text columns {text_columns}, but it was fitted on "
                f"{len(categories or [])} pandas category column(s): encode the text in an earlier "
                "step, or fit on pandas category columns",
            )
        out = []
        for column, cats in zip(text_columns, categories, strict=True):
            if not all(isinstance(c, str) for c in cats):
                raise model_error(
                    model,
                    "pandas_categorical",
                    f"column '{column}' has non-text categories {list(cats)[:5]}: predictlib feeds "
                    "category columns as text (cast them to str before fitting)",
                )
            out.append({str(c): float(i) for i, c in enumerate(cats)})
        return out

    return codes


def _raw(ctx: StepContext, operator: Any, dump: dict[str, Any]) -> tuple[str, int]:
    """``[N, k]`` float64 raw scores (k trees per iteration)."""
    model = ctx.model
    n_features = int(dump["max_feature_idx"]) + 1
    names = dump.get("feature_names")
    fitted_on_frame = getattr(model, "feature_names_in_", None) is not None
    x = feature_matrix(ctx, operator, names if fitted_on_frame else None, n_features, _text_codes(model))
    k = int(dump["num_tree_per_iteration"])
    columns = _scan(dump, n_features)
    ens = Ensemble()
    infos = dump["tree_info"]
    linear = _linear(infos)
    tables = _LinearTables()
    for t, info in enumerate(infos):
        tree, values, nodes = _tree(model, info, columns, k)
        if linear:  # tree t -> target t, the leaf's row in the tables as its weight
            ens.add_tree(tree, t, tables.add(nodes, tree.left < 0))
        else:
            ens.add_tree(tree, int(info["tree_index"]) % k, values)
    for j in range(k):  # a class without any tree still has an output
        if j >= ens.n_targets and not linear:
            ens.add_constant(j, 0.0)
    numbers = x  # the features as given (the linear models read them)
    extra = []
    if columns.zeroing or columns.zero_as_nan:
        tiny = ctx.node("LessOrEqual", [ctx.node("Abs", [x]), ctx.const(ZERO_THRESHOLD)])
        if columns.zero_as_nan:
            features = ctx.const(list(columns.zero_as_nan), np.int64)
            zero = ctx.node("Gather", [tiny, features], axis=1)
            values = ctx.node("Gather", [x, features], axis=1)
            extra.append(ctx.node("Where", [zero, ctx.const(np.nan), values]))
        if columns.zeroing:
            x = ctx.node("Where", [tiny, ctx.const(0.0), x])
    if columns.codes:
        extra.insert(0, _category_codes(ctx, x, list(columns.codes)))
    if extra:
        x = ctx.node("Concat", [x, *extra], axis=1)
    if linear:
        per_tree = tables.emit(ctx, ctx.node("Cast", [ens.emit(ctx, x)], to=TensorProto.INT64), numbers)
        raw = running_total(ctx, per_tree, len(infos) // k, k)
    else:
        raw = ens.emit(ctx, x)
    if dump.get("average_output"):
        iterations = len(infos) // k
        raw = ctx.node("Div", [raw, ctx.const(float(max(iterations, 1)))])
    return raw, k


def _linear(infos: list[dict[str, Any]]) -> bool:
    """Whether the trees are linear trees (``linear_tree=True``: leaves with ``leaf_const``)."""
    for info in infos:
        stack = [info["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_const" in node:
                return True
            if "leaf_value" not in node and "split_feature" in node:
                stack += [node["left_child"], node["right_child"]]
    return False


@dataclass
class _LinearTables:
    """The leaves of linear trees, one row per leaf of every tree: LightGBM's linear
    model (``leaf_const``, ``leaf_features``, ``leaf_coeff``) and ``leaf_value`` (the
    output when a feature of the leaf's model is NaN). A tree without a linear model (a
    lone leaf) has ``leaf_const = leaf_value`` and no feature."""

    const: list[float] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    features: list[list[int]] = field(default_factory=list)
    coeff: list[list[float]] = field(default_factory=list)
    first_leaf: list[int] = field(default_factory=list)

    def add(self, nodes: list[dict[str, Any]], is_leaf: np.ndarray) -> np.ndarray:
        """Add one tree's leaves; the tree's leaf weights: each leaf's row in the tables."""
        rows = np.zeros(len(nodes))
        offset = len(self.const)
        self.first_leaf.append(offset)
        order = sorted(
            (int(node.get("leaf_index", 0)), i) for i, node in enumerate(nodes) if bool(is_leaf[i])
        )
        for leaf, i in order:
            node = nodes[i]
            rows[i] = offset + leaf
            value = float(node["leaf_value"])
            self.value.append(value)
            self.const.append(float(node.get("leaf_const", value)))
            self.features.append([int(f) for f in node.get("leaf_features", [])])
            self.coeff.append([float(c) for c in node.get("leaf_coeff", [])])
        assert [leaf for leaf, _ in order] == list(range(len(order))), "leaf indices 0..n-1"
        return rows

    def emit(self, ctx: StepContext, rows: str, x: str) -> str:
        """``[N, n_trees]``: each tree's output, as LightGBM's ``Tree::Predict`` computes it
        for a linear tree: ``leaf_const + coeff[0] * x[f0] + coeff[1] * x[f1] + ...`` added
        in that order, in float64, from the features as LightGBM reads them (``|x| <= 1e-35``
        is 0.0); ``leaf_value`` when one of those features is NaN. ``rows``: the ``[N,
        n_trees]`` int64 leaf rows; ``x``: the ``[N, n_features]`` features."""
        const = ctx.node("Gather", [ctx.const(self.const), rows], axis=0)
        width = max((len(f) for f in self.features), default=0)
        if width == 0:
            return const
        index = np.zeros((len(self.features), width), np.int64)
        coeff = np.zeros((len(self.features), width))
        pad = np.ones((len(self.features), width), bool)
        for j, (fs, cs) in enumerate(zip(self.features, self.coeff, strict=True)):
            index[j, : len(fs)] = fs
            coeff[j, : len(cs)] = cs
            pad[j, : len(fs)] = False
        n_trees = len(self.first_leaf)
        tiny = ctx.node("LessOrEqual", [ctx.node("Abs", [x]), ctx.const(ZERO_THRESHOLD)])
        read = ctx.node("Where", [tiny, ctx.const(0.0), x])
        flat = ctx.node(
            "Reshape",
            [ctx.node("Gather", [ctx.const(index, np.int64), rows], axis=0), ctx.const([0, -1], np.int64)],
        )
        xs = ctx.node("GatherElements", [read, flat], axis=1)  # [N, n_trees * width]
        xs = ctx.node("Reshape", [xs, ctx.const([-1, n_trees, width], np.int64)])
        # the padding of a leaf with fewer features reads 0.0: adds +0.0 and is never NaN
        xs = ctx.node(
            "Where", [ctx.node("Gather", [ctx.const(pad, np.bool_), rows], axis=0), ctx.const(0.0), xs]
        )
        terms = ctx.node("Mul", [ctx.node("Gather", [ctx.const(coeff), rows], axis=0), xs])
        start = ctx.node("Unsqueeze", [const, ctx.const([2], np.int64)])
        sums = ctx.node("CumSum", [ctx.node("Concat", [start, terms], axis=2), ctx.const(2, np.int64)])
        linear = ctx.node("Gather", [sums, ctx.const(width, np.int64)], axis=2)
        nan = ctx.node("Cast", [ctx.node("IsNaN", [xs])], to=TensorProto.DOUBLE)
        any_nan = ctx.node(
            "Greater", [ctx.node("ReduceMax", [nan, ctx.const([2], np.int64)], keepdims=0), ctx.const(0.0)]
        )
        value = ctx.node("Gather", [ctx.const(self.value), rows], axis=0)
        return ctx.node("Where", [any_nan, value, linear])


def _category_codes(ctx: StepContext, x: str, features: list[int]) -> str:
    """LightGBM's category of each value: ``int(x)`` for ``-1 < x < 2**31``, else NaN (right)."""
    values = ctx.node("Gather", [x, ctx.const(features, np.int64)], axis=1)
    inside = ctx.node(
        "And",
        [
            ctx.node("Greater", [values, ctx.const(-1.0)]),
            ctx.node("Less", [values, ctx.const(_INT_LIMIT)]),
        ],
    )
    safe = ctx.node("Where", [inside, values, ctx.const(0.0)])
    whole = ctx.node("Cast", [ctx.node("Cast", [safe], to=TensorProto.INT64)], to=TensorProto.DOUBLE)
    return ctx.node("Where", [inside, whole, ctx.const(np.nan)])


def _link(ctx: StepContext, raw: str, name: str, params: dict[str, str], sqrt: bool) -> str:
    if name in _EXP:
        return ctx.node("Exp", [raw])
    if name in _SIGMOID:
        scale = float(params.get("sigmoid", 1.0))
        return sigmoid(ctx, raw if scale == 1.0 else ctx.node("Mul", [raw, ctx.const(scale)]))
    if sqrt:  # sign(x) * x * x
        return ctx.node("Mul", [ctx.node("Mul", [ctx.node("Sign", [raw]), raw]), raw])
    return raw


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    dump = _dump(ctx.model)
    name, params, sqrt = _objective(ctx.model, dump)
    if name in ("multiclass", "multiclassova"):
        raise model_error(ctx.model, "objective", f"a regressor with objective {name!r} is not exported")
    raw, _ = _raw(ctx, operator, dump)
    ctx.node("Identity", [_link(ctx, raw, name, params, sqrt)], ctx.y(0))


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    dump = _dump(model)
    name, params, sqrt = _objective(model, dump)
    raw, k = _raw(ctx, operator, dump)
    n_classes = len(model.classes_)
    if k == 1:
        if name not in ("binary", "cross_entropy") or n_classes != 2:
            raise model_error(
                model, "objective", f"objective {name!r} for {n_classes} classes is not exported"
            )
        # predict_proba: [1 - p, p]; predict: the argmax of those
        binary_proba(ctx, _link(ctx, raw, name, params, sqrt), ctx.y(1))
    else:
        if k != n_classes:
            raise model_error(model, "objective", f"{k} trees per iteration for {n_classes} classes")
        proba = softmax(ctx, raw) if name == "multiclass" else _link(ctx, raw, name, params, sqrt)
        ctx.node("Identity", [proba], ctx.y(1))
    argmax_label(ctx, ctx.y(1), ctx.y(0))


#: a raw Booster (``lgb.train``), wrapped by :func:`predictlib.build.booster`
BOOSTER_SUPPORTS = "a trained lightgbm.Booster (lgb.train) wrapped by predictlib.build.booster(): " + SUPPORTS

if lightgbm is not None:
    register_boosting(
        lightgbm.LGBMRegressor, _convert_regressor, library="lightgbm", classifier=False, supports=SUPPORTS
    )
    register_boosting(
        lightgbm.LGBMClassifier, _convert_classifier, library="lightgbm", classifier=True, supports=SUPPORTS
    )
    register_boosting(
        LGBMBoosterRegressor,
        _convert_regressor,
        library="lightgbm",
        classifier=False,
        supports=BOOSTER_SUPPORTS,
    )
    register_boosting(
        LGBMBoosterClassifier,
        _convert_classifier,
        library="lightgbm",
        classifier=True,
        supports=BOOSTER_SUPPORTS,
    )
