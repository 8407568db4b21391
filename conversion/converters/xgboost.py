"""XGBoost's ``XGBRegressor`` / ``XGBClassifier`` (and their random-forest variants) in the
graph, reproducing XGBoost's float32 arithmetic bit for bit.

XGBoost computes in float32: it reads the input as float32, compares it with float32
split conditions, starts each output from the base margin and adds the trees' float32
leaf values one tree after the other (``cpu_predictor.cc``), then applies the link in
float32. The graph does the same, read from the booster's own JSON model
(``Booster.save_raw("json")``: every float32 printed so that it reads back exactly):

* **input**: ``Cast`` to float32 (1e300 becomes inf, as in XGBoost);
* **numerical split**: ``x < split_condition`` goes left (``BRANCH_LT``), NaN takes
  ``default_left``; ±inf are numbers;
* **categorical split** (``enable_categorical=True``): the node lists the categories that
  go *right*; NaN takes the default direction; a value is the category ``int(x)``
  (truncated) when ``0 <= x < 2**24``, and anything else (negative, too large, inf) goes
  left. The graph computes that code (-1 for the invalid ones) in an extra float32 column
  and splits on it with ``BRANCH_MEMBER``. Categories learnt from pandas ``category``
  columns are stored in the model; the graph maps a text column to its category's
  position, and missing values and texts the model does not know to NaN (missing) --
  XGBoost refuses a frame whose categories it does not know, so a caller of the original
  casts the column to the training dtype, which makes an unknown text NaN;
* **sum**: the base margin (``base_score`` through the objective's ``ProbToMargin``,
  checked against the booster: predicting with that ``base_margin`` gives the same
  margins bit for bit) as a first constant tree, then the trees in order, up to
  ``best_iteration`` (early stopping), in one float32 ``TreeEnsemble`` (one target per
  class); dart trees' weights are folded into their leaves as ``predict`` (XGBoost's
  ``inplace_predict``) applies them: ``((base + leaf) - base) * weight`` in float32;
* **links**, in float32 as XGBoost: identity, ``exp`` (count:poisson, reg:gamma,
  reg:tweedie), ``1 / (1 + exp(-x))`` (reg:logistic, binary:logistic), softmax with a
  float64 sum (multi:softprob). ``expf`` is glibc's algorithm (the ``expf`` XGBoost calls)
  in float64 graph operations: its table of 2^(j/32) and cubic, rounded once to float32
  (glibc's is not always the correctly rounded value; the emulation matches it on every
  tested value). ``XGBClassifier``'s probabilities: ``[1 - p, p]`` in float32;
  its label: ``p > 0.5``, or the argmax of the probabilities;
* the outputs are float32 values, given as float64 (exactly).

Bit for bit when onnxruntime runs the ``TreeEnsemble`` on one intra-op thread (the
runtime's default); with more, it adds partial sums of blocks of trees in float32, which
can change the last bit (see :mod:`predictlib.build.core.trees`).

A raw ``xgboost.Booster`` (``xgb.train``) wrapped by :func:`predictlib.build.booster`
(``XGBBoosterRegressor`` / ``XGBBoosterClassifier``, ``get_booster()`` being the raw
booster) goes through the same code, with all its trees (as its ``inplace_predict``).

Refused at export with the reason: gblinear, other objectives (multi:softmax, ranking,
survival, binary:logitraw / hinge), multi-output models, numeric category values.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from ..boosters import XGBBoosterClassifier, XGBBoosterRegressor
from ..core.frame import StepContext
from ..core.trees import Ensemble, Tree, constant, label, model_error
from .boosting import feature_matrix, register_boosting

try:  # a build-time dependency: nothing is registered without it
    import xgboost
except ImportError:  # pragma: no cover - exercised in environments without XGBoost
    xgboost = None

_IDENTITY = (
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
)
_EXP = ("count:poisson", "reg:gamma", "reg:tweedie")
_SIGMOID = ("reg:logistic", "binary:logistic")
#: XGBoost's largest valid category (``OutOfRangeCat``: the float32 mantissa)
_MAX_CATEGORY = float(2**24)

SUPPORTS = (
    "objectives reg:squarederror, reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror, "
    "reg:quantileerror (one quantile), reg:logistic, binary:logistic, multi:softprob, count:poisson, "
    "reg:gamma, reg:tweedie; gbtree and dart; missing values (default directions); enable_categorical "
    "splits (pandas category columns of text, or feature_types='c' codes); base_score; best_iteration; "
    "float32 bit for bit"
)


@dataclass
class _Model:
    """What the converter reads from the booster's JSON."""

    objective: str
    trees: list[dict[str, Any]]
    groups: list[int]
    weights: list[float]
    k: int
    base: np.ndarray  # float32 base margin per output
    feature_names: list[str] | None
    feature_types: list[str] | None
    categories: dict[int, list[str]] = field(default_factory=dict)


def _load(model: Any) -> _Model:
    booster = model.get_booster()
    learner = json.loads(booster.save_raw("json"))["learner"]
    gbm = learner["gradient_booster"]
    name = gbm.get("name")
    if name not in ("gbtree", "dart"):
        raise model_error(model, "booster", f"booster {name!r} is not exported (gbtree and dart are)")
    trees_model = gbm["model"] if name == "gbtree" else gbm["gbtree"]["model"]
    weights = [float(w) for w in gbm.get("weight_drop", [])] if name == "dart" else []
    objective = str(learner["objective"]["name"])
    if objective not in (*_IDENTITY, *_EXP, *_SIGMOID, "multi:softprob"):
        raise model_error(model, "objective", f"objective {objective!r} is not exported")
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) > 1:
        raise model_error(model, "multi_strategy", "multi-output models are not exported")
    trees = list(trees_model["trees"])
    groups = [int(g) for g in trees_model["tree_info"]]
    indptr = [int(i) for i in trees_model.get("iteration_indptr", [])]
    best = getattr(model, "best_iteration", None)
    if best is not None and indptr and int(best) + 1 < len(indptr):  # what predict() uses
        end = indptr[int(best) + 1]
        trees, groups, weights = trees[:end], groups[:end], weights[:end]
    k = max(int(params.get("num_class", "0")), 1)
    base = np.array([float(v) for v in str(params["base_score"]).strip("[]").split(",")], np.float32)
    names = learner.get("feature_names") or None
    types = learner.get("feature_types") or None
    out = _Model(objective, trees, groups, weights, k, _margin(model, objective, base, k), names, types)
    out.categories = _categories(model, trees_model.get("cats"), types)
    return out


def _margin(model: Any, objective: str, base: np.ndarray, k: int) -> np.ndarray:
    """The base margin, as XGBoost's ``ProbToMargin`` computes it in float32."""
    one = np.float32(1.0)
    if objective in _SIGMOID:
        margin = [np.float32(-math.log(float(one / b - one))) for b in base]
    elif objective in _EXP:
        margin = [np.float32(math.log(float(b))) for b in base]
    else:
        margin = list(base)
    values = np.asarray(margin, np.float32)
    return np.broadcast_to(values, (k,)).copy() if values.size == 1 else values


def _check_margin(model: Any, m: _Model, rows: np.ndarray) -> None:
    """The booster, given ``m.base`` as its base margin, predicts what it predicts itself."""
    kw = {"missing": np.nan, "feature_types": m.feature_types, "enable_categorical": bool(m.categories)}
    margins = np.tile(m.base, (len(rows), 1)).reshape(len(rows), -1)
    best = getattr(model, "best_iteration", None)
    until = (0, int(best) + 1) if best is not None else (0, 0)
    booster = model.get_booster()
    expected = booster.predict(
        xgboost.DMatrix(rows, **kw), output_margin=True, iteration_range=until, validate_features=False
    )
    got = booster.predict(
        xgboost.DMatrix(rows, base_margin=margins, **kw),
        output_margin=True,
        iteration_range=until,
        validate_features=False,
    )
    if not np.array_equal(expected, got):
        raise model_error(model, "base_score", f"the base margin {m.base.tolist()} could not be reproduced")


def _categories(model: Any, cats: dict[str, Any] | None, types: list[str] | None) -> dict[int, list[str]]:
    """Feature -> the text categories XGBoost learnt from a pandas category column (the
    position is the code the trees split on)."""
    if not cats or not cats.get("enc") or types is None:
        return {}
    out: dict[int, list[str]] = {}
    for j, enc in enumerate(cats["enc"]):  # one entry per feature
        if j >= len(types) or types[j] != "c" or not enc.get("values"):
            continue
        if "offsets" not in enc:
            raise model_error(
                model,
                "enable_categorical",
                f"feature {j} has non-text categories: predictlib feeds category columns as text "
                "(cast them to str before fitting, or give integer codes as a numeric column)",
            )
        data = bytes(int(v) for v in enc["values"])
        offsets = [int(o) for o in enc["offsets"]]
        out[j] = [data[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    return out


def _tree(
    tree: dict[str, Any], codes: dict[int, int], weight: float | None, base: np.float32
) -> tuple[Tree, np.ndarray]:
    left = np.asarray(tree["left_children"], np.int64)
    right = np.asarray(tree["right_children"], np.int64)
    feature = np.asarray(tree["split_indices"], np.int64).copy()
    values = np.asarray(tree["split_conditions"], np.float32)
    if weight is not None:  # dart (inplace_predict): ((base + leaf) - base) * weight, in float32
        one_tree = (base + values).astype(np.float32)
        scaled = ((one_tree - base).astype(np.float32) * np.float32(weight)).astype(np.float32)
        values = np.where(left < 0, scaled, values).astype(np.float32)
    out = Tree(
        left=left,
        right=right,
        feature=feature,
        threshold=values.astype(np.float64),
        missing_left=np.asarray(tree["default_left"], bool),
        strict=True,
        member_missing=True,
    )
    kinds = tree.get("split_type") or [0] * len(left)
    nodes = [int(n) for n in tree.get("categories_nodes", [])]
    segments = [int(s) for s in tree.get("categories_segments", [])]
    sizes = [int(s) for s in tree.get("categories_sizes", [])]
    categories = [int(c) for c in tree.get("categories", [])]
    for node, start, size in zip(nodes, segments, sizes, strict=True):
        if kinds[node] != 1:
            continue
        feature[node] = codes[int(feature[node])]
        out.members[node] = ([float(c) for c in categories[start : start + size]], False)  # listed: right
    return out, values.astype(np.float64)


def _raw(ctx: StepContext, operator: Any, m: _Model) -> str:
    """``[N, k]`` float32 margins."""
    model = ctx.model
    n_features = int(model.get_booster().num_features())
    fitted_on_frame = getattr(model, "feature_names_in_", None) is not None

    def text_codes(columns: list[str]) -> list[dict[str, float]]:
        names = m.feature_names or []
        out = []
        for c in columns:
            j = names.index(c) if c in names else -1
            if j not in m.categories:
                raise model_error(
                    model,
                    "enable_categorical",
                    f"the frame reaching it has the text column '{c}', which it did not learn as a "
                    "pandas category column: encode the text in an earlier step",
                )
            out.append({text: float(i) for i, text in enumerate(m.categories[j])})
        return out

    x = feature_matrix(ctx, operator, m.feature_names if fitted_on_frame else None, n_features, text_codes)
    categorical = sorted(
        {
            int(t["split_indices"][node])
            for t in m.trees
            for node in t.get("categories_nodes", [])
            if (t.get("split_type") or [0])[int(node)] == 1
        }
    )
    codes = {f: n_features + j for j, f in enumerate(categorical)}
    ens = Ensemble()
    for j in range(m.k):
        ens.add_constant(j, float(m.base[j]))
    for t, (tree, group) in enumerate(zip(m.trees, m.groups, strict=True)):
        structure, leaves = _tree(tree, codes, m.weights[t] if m.weights else None, m.base[group])
        ens.add_tree(structure, group, leaves)
    x32 = ctx.node("Cast", [x], to=TensorProto.FLOAT)
    if categorical:
        x32 = ctx.node("Concat", [x32, _category_codes(ctx, x32, categorical)], axis=1)
    return ens.emit(ctx, x32, np.float32)


def _category_codes(ctx: StepContext, x32: str, features: list[int]) -> str:
    """XGBoost's category of each float32 value: ``int(x)`` for ``0 <= x < 2**24``, NaN for
    NaN (missing), -1 (no category: goes left) otherwise."""
    values = ctx.node("Gather", [x32, ctx.const(features, np.int64)], axis=1)
    valid = ctx.node(
        "And",
        [
            ctx.node("GreaterOrEqual", [values, constant(ctx, 0.0, np.float32)]),
            ctx.node("Less", [values, constant(ctx, _MAX_CATEGORY, np.float32)]),
        ],
    )
    safe = ctx.node("Where", [valid, values, constant(ctx, 0.0, np.float32)])
    whole = ctx.node("Cast", [ctx.node("Cast", [safe], to=TensorProto.INT32)], to=TensorProto.FLOAT)
    code = ctx.node("Where", [valid, whole, constant(ctx, -1.0, np.float32)])
    return ctx.node("Where", [ctx.node("IsNaN", [values]), values, code])


#: glibc's expf (``sysdeps/ieee754/flt-32/e_expf.c``, which XGBoost calls): exp(x) =
#: 2^(k/32) * 2^(r/32), k = round(x * 32 / ln 2), the table 2^(j/32) and a cubic in r, in
#: float64, rounded once to float32. Its result is not always the correctly rounded one
#: (rounding float64's exp: 387 of 600,000 values differ from glibc's; this emulation: 0).
_EXPF_N = 32
# fmt: off
#: glibc's ``__exp2f_data.tab``: tab[j] = bits of 2^(j/32) minus j << 47
_GLIBC_EXP2F_TAB = (
    0x3FF0000000000000, 0x3FEFD9B0D3158574, 0x3FEFB5586CF9890F, 0x3FEF9301D0125B51,
    0x3FEF72B83C7D517B, 0x3FEF54873168B9AA, 0x3FEF387A6E756238, 0x3FEF1E9DF51FDEE1,
    0x3FEF06FE0A31B715, 0x3FEEF1A7373AA9CB, 0x3FEEDEA64C123422, 0x3FEECE086061892D,
    0x3FEEBFDAD5362A27, 0x3FEEB42B569D4F82, 0x3FEEAB07DD485429, 0x3FEEA47EB03A5585,
    0x3FEEA09E667F3BCD, 0x3FEE9F75E8EC5F74, 0x3FEEA11473EB0187, 0x3FEEA589994CCE13,
    0x3FEEACE5422AA0DB, 0x3FEEB737B0CDC5E5, 0x3FEEC49182A3F090, 0x3FEED503B23E255D,
    0x3FEEE89F995AD3AD, 0x3FEEFF76F2FB5E47, 0x3FEF199BDD85529C, 0x3FEF3720DCEF9069,
    0x3FEF5818DCFBA487, 0x3FEF7C97337B9B5F, 0x3FEFA4AFA2A490DA, 0x3FEFD0765B6E4540,
)
# fmt: on
_EXPF_TABLE = [
    float(np.frombuffer(np.uint64(t + (j << 47)).tobytes(), np.float64)[0])
    for j, t in enumerate(_GLIBC_EXP2F_TAB)
]
_EXPF_POLY = [
    float.fromhex("0x1.c6af84b912394p-5") / _EXPF_N**3,
    float.fromhex("0x1.ebfce50fac4f3p-3") / _EXPF_N**2,
    float.fromhex("0x1.62e42ff0c52d6p-1") / _EXPF_N,
]
_EXPF_INV_LN2_N = float.fromhex("0x1.71547652b82fep+0") * _EXPF_N
_EXPF_SHIFT = float.fromhex("0x1.8p+52")
#: beyond these expf overflows to inf / underflows to 0
_EXPF_HIGH, _EXPF_LOW = float.fromhex("0x1.62e42ep6"), -float.fromhex("0x1.9fe368p6")
#: 2^e for the exponents e = k // 32 of the finite range
_EXPF_POWERS_FROM = -160


def _expf(ctx: StepContext, z32: str) -> str:
    """float32 ``expf`` as glibc computes it (see ``_EXPF_TABLE``)."""
    x = ctx.node("Cast", [z32], to=TensorProto.DOUBLE)
    nan = ctx.node("IsNaN", [x])
    finite = ctx.node(
        "And",
        [
            ctx.node("LessOrEqual", [x, ctx.const(_EXPF_HIGH)]),
            ctx.node("GreaterOrEqual", [x, ctx.const(_EXPF_LOW)]),
        ],
    )
    xd = ctx.node("Where", [finite, x, ctx.const(0.0)])
    z = ctx.node("Mul", [ctx.const(_EXPF_INV_LN2_N), xd])
    kd = ctx.node("Sub", [ctx.node("Add", [z, ctx.const(_EXPF_SHIFT)]), ctx.const(_EXPF_SHIFT)])
    r = ctx.node("Sub", [z, kd])
    ki = ctx.node("Cast", [kd], to=TensorProto.INT64)
    j = ctx.node("Mod", [ki, ctx.const(_EXPF_N, np.int64)], fmod=0)  # ki % N, non-negative
    e = ctx.node("Div", [ctx.node("Sub", [ki, j]), ctx.const(_EXPF_N, np.int64)])  # exact: floor(ki / N)
    powers = [2.0**p for p in range(_EXPF_POWERS_FROM, 130)]
    scale = ctx.node(
        "Gather", [ctx.const(powers), ctx.node("Sub", [e, ctx.const(_EXPF_POWERS_FROM, np.int64)])], axis=0
    )
    s = ctx.node("Mul", [ctx.node("Gather", [ctx.const(_EXPF_TABLE), j], axis=0), scale])
    c0, c1, c2 = (ctx.const(c) for c in _EXPF_POLY)
    zz = ctx.node("Add", [ctx.node("Mul", [c0, r]), c1])
    r2 = ctx.node("Mul", [r, r])
    y = ctx.node("Add", [ctx.node("Mul", [c2, r]), ctx.const(1.0)])
    y = ctx.node("Add", [ctx.node("Mul", [zz, r2]), y])
    y = ctx.node("Mul", [y, s])
    y = ctx.node("Where", [ctx.node("Greater", [x, ctx.const(_EXPF_HIGH)]), ctx.const(np.inf), y])
    y = ctx.node("Where", [ctx.node("Less", [x, ctx.const(_EXPF_LOW)]), ctx.const(0.0), y])
    y = ctx.node("Where", [nan, x, y])
    return ctx.node("Cast", [y], to=TensorProto.FLOAT)


def _sigmoid32(ctx: StepContext, z32: str) -> str:
    """XGBoost's ``common::Sigmoid``: ``1.0f / (expf(min(-x, 88.7f)) + 1.0f + 1e-16f)`` in float32
    (adding 1e-16f to a number >= 1 changes nothing)."""
    clipped = ctx.node("Min", [ctx.node("Neg", [z32]), constant(ctx, 88.7, np.float32)])
    e = _expf(ctx, clipped)
    return ctx.node(
        "Div", [constant(ctx, 1.0, np.float32), ctx.node("Add", [e, constant(ctx, 1.0, np.float32)])]
    )


def _softmax32(ctx: StepContext, z32: str) -> str:
    """XGBoost's ``common::Softmax``: ``expf(x - max)`` in float32, their sum in float64,
    each divided by the sum rounded to float32."""
    axes = ctx.const([1], np.int64)
    e = _expf(ctx, ctx.node("Sub", [z32, ctx.node("ReduceMax", [z32, axes], keepdims=1)]))
    total = ctx.node("ReduceSum", [ctx.node("Cast", [e], to=TensorProto.DOUBLE), axes], keepdims=1)
    return ctx.node("Div", [e, ctx.node("Cast", [total], to=TensorProto.FLOAT)])


def _as_double(ctx: StepContext, x32: str, out: str) -> str:
    return ctx.node("Cast", [x32], out, to=TensorProto.DOUBLE)


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    m = _load(ctx.model)
    if m.objective == "multi:softprob" or m.k != 1:
        raise model_error(
            ctx.model, "objective", f"a regressor with objective {m.objective!r} is not exported"
        )
    _check_margin(ctx.model, m, _probe_rows(m))
    raw = _raw(ctx, operator, m)
    if m.objective in _EXP:
        raw = _expf(ctx, raw)
    elif m.objective in _SIGMOID:
        raw = _sigmoid32(ctx, raw)
    _as_double(ctx, raw, ctx.y(0))


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    ctx = StepContext(scope, operator, container)
    model = ctx.model
    m = _load(model)
    n_classes = len(model.classes_)
    _check_margin(model, m, _probe_rows(m))
    raw = _raw(ctx, operator, m)
    if m.objective == "binary:logistic" and m.k == 1 and n_classes == 2:
        p = _sigmoid32(ctx, raw)
        p0 = ctx.node("Sub", [constant(ctx, 1.0, np.float32), p])
        _as_double(ctx, ctx.node("Concat", [p0, p], axis=1), ctx.y(1))
        above = ctx.node("Greater", [p, constant(ctx, 0.5, np.float32)])  # classes_[p > 0.5]
        index = ctx.node(
            "Cast", [ctx.node("Reshape", [above, ctx.const([-1], np.int64)])], to=TensorProto.INT64
        )
        label(ctx, index, ctx.y(0))
        return
    if m.objective != "multi:softprob" or m.k != n_classes:
        raise model_error(
            model, "objective", f"objective {m.objective!r} for {n_classes} classes is not exported"
        )
    proba = _softmax32(ctx, raw)
    _as_double(ctx, proba, ctx.y(1))
    label(ctx, ctx.node("ArgMax", [proba], axis=1, keepdims=0, select_last_index=0), ctx.y(0))


def _probe_rows(m: _Model) -> np.ndarray:
    """Rows to check the base margin on: all missing, and a few numbers per feature."""
    width = len(m.feature_names or []) or (
        1 + max((int(f) for t in m.trees for f in t["split_indices"]), default=0)
    )
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(16, width)).astype(np.float32)
    rows[0] = np.nan
    return rows


#: a raw Booster (``xgb.train``), wrapped by :func:`predictlib.build.booster`
BOOSTER_SUPPORTS = (
    "a trained xgboost.Booster (xgb.train) wrapped by predictlib.build.booster(), all its trees: " + SUPPORTS
)

if xgboost is not None:
    for _cls, _classifier, _supports in (
        (xgboost.XGBRegressor, False, SUPPORTS),
        (xgboost.XGBRFRegressor, False, SUPPORTS),
        (xgboost.XGBClassifier, True, SUPPORTS),
        (xgboost.XGBRFClassifier, True, SUPPORTS),
        (XGBBoosterRegressor, False, BOOSTER_SUPPORTS),
        (XGBBoosterClassifier, True, BOOSTER_SUPPORTS),
    ):
        register_boosting(
            _cls,
            _convert_classifier if _classifier else _convert_regressor,
            library="xgboost",
            classifier=_classifier,
            supports=_supports,
        )
