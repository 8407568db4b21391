"""Tree ensembles in the graph: the one place for the graph maths every tree converter shares.

scikit-learn's trees (``converters/sklearn/estimators.py``), feature-engine's
``DecisionTreeFeatures`` and the boosting libraries (``converters/lightgbm.py``,
``xgboost.py``, ``catboost.py``) describe their trees as :class:`Tree` objects and
collect them in an :class:`Ensemble`, which emits one ai.onnx.ml opset-5
``TreeEnsemble`` node: float64 (or, for XGBoost, float32) thresholds and leaves.

How the trees' values are added up, exactly:

* :meth:`Ensemble.emit` with one target per tree (``[N, n_trees]``) and
  :func:`running_total` (``CumSum`` over the tree axis, a sequential sum in
  onnxruntime): the library's order of additions whatever onnxruntime's thread count.
* :meth:`Ensemble.emit` with the trees summed into one target per output (``SUM``):
  onnxruntime's ``TreeEnsemble`` adds a target's leaves one tree after the other,
  starting from 0, when the session runs on one intra-op thread (predictlib's
  runtime default: batches are run by chunks on several threads, each chunk on one).
  With more intra-op threads it adds per-thread partial sums of blocks of trees,
  which changes the last bits (float64: ~1e-16 relative). A library's starting value
  (a base score) is added as a first constant "tree" so that it enters the sum first.

The link functions (:func:`sigmoid`, :func:`softmax`) and the label helpers
(:func:`argmax_label`, :func:`sign_label`) are shared by every classifier converter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import ModelProto, TensorProto, numpy_helper

from .frame import ExportError, StepContext, current_step

ML = "ai.onnx.ml"
#: the ai.onnx.ml opset of a graph with a TreeEnsemble node (float64 trees)
TREE_ML_OPSET = 5
#: ai.onnx.ml operators removed from opset 5 (a graph cannot mix them with TreeEnsemble)
DEPRECATED_IN_ML_5 = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")

#: TreeEnsemble ``nodes_modes``
LEQ, LT, EQ, MEMBER = 0, 1, 4, 6


def finalize_ml_opset(model: ModelProto) -> ModelProto:
    """Raise the ai.onnx.ml opset import of ``model`` to 5 when it has a TreeEnsemble node.

    skl2onnx writes the graphs with ai.onnx.ml opset 3 (it cannot target more); the
    TreeEnsemble nodes exist from opset 5, where TreeEnsembleClassifier and
    TreeEnsembleRegressor no longer do: if one is left (a tree model converted by
    skl2onnx's own converter, e.g. inside a meta-estimator), :class:`ExportError`.
    Modifies ``model`` in place and returns it.
    """
    ml_nodes = [n for n in _all_nodes(model) if n.domain == ML]
    if not any(n.op_type == "TreeEnsemble" for n in ml_nodes):
        return model
    old = sorted({n.op_type for n in ml_nodes if n.op_type in DEPRECATED_IN_ML_5})
    if old:
        raise ExportError(
            f"the graph mixes float64 TreeEnsemble nodes (ai.onnx.ml opset {TREE_ML_OPSET}) with "
            f"{', '.join(old)} (removed from that opset): some trees were converted by skl2onnx's "
            "own float32 tree code (a model whose trees predictlib does not convert)"
        )
    for opset in model.opset_import:
        if opset.domain == ML:
            opset.version = max(opset.version, TREE_ML_OPSET)
            break
    else:
        entry = model.opset_import.add()
        entry.domain, entry.version = ML, TREE_ML_OPSET
    return model


def _all_nodes(model: ModelProto) -> list[Any]:
    nodes: list[Any] = []
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            nodes.append(node)
            for attr in node.attribute:
                if attr.type == attr.GRAPH:
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    for function in model.functions:
        nodes.extend(function.node)
    return nodes


# ------------------------------------------------------------------ trees


@dataclass
class Tree:
    """One binary tree, in the arrays' layout of scikit-learn (node 0 is the root).

    ``left[i] < 0`` marks a leaf. A numeric node sends ``x[feature] <= threshold`` left
    (``x < threshold`` when ``strict``) and NaN left when ``missing_left``. A categorical
    node (``members`` has its index) sends ``x[feature]`` in ``members[i][0]`` to the
    left child when ``members[i][1]``, to the right one otherwise, and every other value
    (NaN included) the other way. A node in ``zero_left`` first sends an exact 0
    (either sign) left when ``zero_left[i]``, right otherwise (LightGBM's
    ``missing_type=Zero``).
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    members: dict[int, tuple[list[float], bool]] = field(default_factory=dict)
    strict: bool = False
    member_missing: bool = False
    zero_left: dict[int, bool] = field(default_factory=dict)


@dataclass
class Ensemble:
    """Trees collected in the ai.onnx.ml opset-5 TreeEnsemble encoding."""

    n_targets: int = 0
    featureids: list[int] = field(default_factory=list)
    modes: list[int] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    truenodeids: list[int] = field(default_factory=list)
    trueleafs: list[int] = field(default_factory=list)
    falsenodeids: list[int] = field(default_factory=list)
    falseleafs: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    membership: list[float] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)
    leaf_targetids: list[int] = field(default_factory=list)
    leaf_weights: list[float] = field(default_factory=list)

    def _leaf(self, target: int, weight: float) -> tuple[bool, int]:
        self.leaf_targetids.append(target)
        self.leaf_weights.append(float(weight))
        return True, len(self.leaf_weights) - 1

    def _node(
        self,
        feature: int,
        mode: int,
        split: float,
        true: tuple[bool, int],
        false: tuple[bool, int],
        missing_true: bool,
    ) -> tuple[bool, int]:
        self.featureids.append(int(feature))
        self.modes.append(mode)
        self.splits.append(float(split))
        self.trueleafs.append(int(true[0]))
        self.truenodeids.append(true[1])
        self.falseleafs.append(int(false[0]))
        self.falsenodeids.append(false[1])
        self.missing_true.append(int(missing_true))
        return False, len(self.featureids) - 1

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def add_tree(self, tree: Tree, target: int, weights: np.ndarray) -> None:
        """Add ``tree``, whose leaf ``i`` contributes ``weights[i]`` to ``target``."""
        ref: dict[int, tuple[bool, int]] = {}
        numeric_mode = LT if tree.strict else LEQ
        for i in _postorder(tree.left, tree.right):
            if tree.left[i] < 0:
                ref[i] = self._leaf(target, weights[i])
                continue
            left, right = ref[int(tree.left[i])], ref[int(tree.right[i])]
            if i not in tree.members:
                ref[i] = self._node(
                    tree.feature[i], numeric_mode, tree.threshold[i], left, right, bool(tree.missing_left[i])
                )
                if i in tree.zero_left:  # x == 0 (NaN is not) -> its own branch first
                    zero = left if tree.zero_left[i] else right
                    ref[i] = self._node(tree.feature[i], EQ, 0.0, zero, ref[i], False)
                continue
            members, to_left = tree.members[i]
            hit, miss = (left, right) if to_left else (right, left)
            if not members:  # nothing is a member: the node always takes the other branch
                ref[i] = miss
                continue
            self.membership.extend([*map(float, members), np.nan])
            nan_hits = tree.member_missing and bool(tree.missing_left[i]) == to_left
            ref[i] = self._node(tree.feature[i], MEMBER, 0.0, hit, miss, nan_hits)
        root = ref[0]
        if root[0]:  # a lone leaf: one node whose branches both lead to it
            root = self._node(0, LEQ, 0.0, root, root, False)
        self.roots.append(root[1])
        self.n_targets = max(self.n_targets, target + 1)

    def add_constant(self, target: int, value: float) -> None:
        """A tree that always contributes ``value`` (an init / baseline prediction)."""
        leaf = self._leaf(target, value)
        self.roots.append(self._node(0, LEQ, 0.0, leaf, leaf, False)[1])
        self.n_targets = max(self.n_targets, target + 1)

    def emit(self, ctx: StepContext, x: str, dtype: Any = np.float64) -> str:
        """The TreeEnsemble node: ``[N, n_targets]`` sums of the leaves, in ``dtype``
        (float64, or float32 for a float32 input ``x``: thresholds, leaves and sums)."""
        dtype = np.dtype(dtype)
        attrs: dict[str, Any] = {
            "n_targets": self.n_targets,
            "aggregate_function": 1,  # SUM
            "post_transform": 0,
            "tree_roots": self.roots,
            "nodes_featureids": self.featureids,
            "nodes_modes": numpy_helper.from_array(np.asarray(self.modes, np.uint8), "nodes_modes"),
            "nodes_splits": numpy_helper.from_array(np.asarray(self.splits, dtype), "nodes_splits"),
            "nodes_truenodeids": self.truenodeids,
            "nodes_trueleafs": self.trueleafs,
            "nodes_falsenodeids": self.falsenodeids,
            "nodes_falseleafs": self.falseleafs,
            "nodes_missing_value_tracks_true": self.missing_true,
            "leaf_targetids": self.leaf_targetids,
            "leaf_weights": numpy_helper.from_array(np.asarray(self.leaf_weights, dtype), "leaf_weights"),
        }
        if self.membership:
            attrs["membership_values"] = numpy_helper.from_array(
                np.asarray(self.membership, dtype), "membership_values"
            )
        # skl2onnx cannot target ai.onnx.ml 5: added as version 3, see finalize_ml_opset
        return ctx.node("TreeEnsemble", [x], domain=ML, **attrs)


def _postorder(left: np.ndarray, right: np.ndarray) -> list[int]:
    """Node indices, children before parents (iterative: trees can be deep)."""
    order: list[int] = []
    stack = [0]
    while stack:
        i = stack.pop()
        order.append(i)
        if left[i] >= 0:
            stack.append(int(left[i]))
            stack.append(int(right[i]))
    return order[::-1]


# ------------------------------------------------------------------ graph pieces


def model_error(model: Any, parameter: str, reason: str) -> ExportError:
    """``step 'x' Class: parameter: reason``: how an estimator converter refuses a model."""
    step = current_step()
    where = f"step '{step}' " if step != "<model>" else ""
    return ExportError(f"{where}{type(model).__name__}: {parameter}: {reason}")


def running_total(ctx: StepContext, per_tree: str, n_trees: int, width: int) -> str:
    """``[N, n_trees * width]`` (or ``[N, n_trees, width]``) -> ``[N, width]``: the sum over
    trees, added one tree after the other (``CumSum``, then its last slice)."""
    cube = ctx.node("Reshape", [per_tree, ctx.const([-1, n_trees, width], np.int64)])
    totals = ctx.node("CumSum", [cube, ctx.const(1, np.int64)])
    return ctx.node("Gather", [totals, ctx.const(n_trees - 1, np.int64)], axis=1)


def constant(ctx: StepContext, value: Any, dtype: Any = np.float64) -> str:
    """An initializer holding ``value`` as float64 or float32 (``ctx.const`` for other types)."""
    arr = np.asarray(value, dtype=dtype)
    if arr.dtype != np.float32:
        return ctx.const(arr, arr.dtype)
    name = ctx.name("c")
    ctx.container.add_initializer(name, TensorProto.FLOAT, list(arr.shape), arr.ravel().tolist())
    return name


def sigmoid(ctx: StepContext, z: str, dtype: Any = np.float64) -> str:
    """``1 / (1 + exp(-z))`` (scipy.special.expit, LightGBM's binary link)."""
    e = ctx.node("Exp", [ctx.node("Neg", [z])])
    return ctx.node("Reciprocal", [ctx.node("Add", [constant(ctx, 1.0, dtype), e])])


def softmax(ctx: StepContext, z: str) -> str:
    """``exp(z - max) / sum``, row-wise, in float64 (scikit-learn's and LightGBM's softmax)."""
    axes = ctx.const([1], np.int64)
    shifted = ctx.node("Sub", [z, ctx.node("ReduceMax", [z, axes], keepdims=1)])
    e = ctx.node("Exp", [shifted])
    return ctx.node("Div", [e, ctx.node("ReduceSum", [e, axes], keepdims=1)])


def binary_proba(ctx: StepContext, p1: str, out: str, dtype: Any = np.float64) -> None:
    """``[1 - p1, p1]`` (scikit-learn's binomial ``predict_proba``)."""
    p0 = ctx.node("Sub", [constant(ctx, 1.0, dtype), p1])
    ctx.node("Concat", [p0, p1], out, axis=1)


def class_labels(model: Any) -> tuple[np.ndarray, Any]:
    """``classes_`` as the graph's label constant (int64 or strings), as skl2onnx types them."""
    if isinstance(model.classes_, list):
        raise model_error(model, "classes_", "multi-output classification is not exported")
    classes = np.asarray(model.classes_)
    if classes.ndim != 1:
        raise model_error(model, "classes_", "multi-output classification is not exported")
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64), np.int64
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes)) or np.any(classes != np.round(classes)):
            raise model_error(model, "classes_", f"float class labels {classes.tolist()} are not integers")
        return classes.astype(np.int64), np.int64
    return np.array([str(c) for c in classes], dtype=object), object


def label(ctx: StepContext, index: str, out: str) -> None:
    """``classes_[index]`` (``index``: int64 ``[N]``)."""
    classes, dtype = class_labels(ctx.model)
    ctx.node("Gather", [ctx.const(classes, dtype), index], out, axis=0)


def argmax_label(ctx: StepContext, scores: str, out: str) -> None:
    """Label of the first maximum of each row (numpy's argmax)."""
    label(ctx, ctx.node("ArgMax", [scores], axis=1, keepdims=0, select_last_index=0), out)


def sign_label(ctx: StepContext, raw: str, out: str, *, strict: bool, dtype: Any = np.float64) -> None:
    """Binary label from a ``[N, 1]`` score: class 1 when ``raw > 0`` (``>= 0`` if not strict)."""
    op = "Greater" if strict else "GreaterOrEqual"
    positive = ctx.node(op, [raw, constant(ctx, 0.0, dtype)])
    index = ctx.node("Cast", [positive], to=TensorProto.INT64)
    label(ctx, ctx.node("Reshape", [index, ctx.const([-1], np.int64)]), out)
