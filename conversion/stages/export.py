"""Export a fitted pipeline to one ONNX graph with grouped inputs.

Graph interface (recorded in the manifest):

* inputs: ``num`` (float64, ``[N, n_num]``, missing = NaN), ``cat`` (string,
  ``[N, n_cat]``, missing = :data:`MISSING`) and ``dt`` (int64, ``[N, n_dt]``:
  naive datetimes as nanoseconds since 1970-01-01T00:00:00, missing = the int64
  minimum, numpy's NaT), the column order given by the manifest; a group with no
  column is left out (so graphs without datetime columns have no ``dt``);
* outputs: ``prediction`` (float64 ``[N, 1]``) for a regressor; and
  ``refusals`` (bool ``[N, n_checks]``) when the pipeline can refuse a row,
  each column described by one entry of :attr:`Exported.checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, helper
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType
from sklearn.base import is_classifier, is_regressor
from sklearn.pipeline import Pipeline

from .. import converters  # noqa: F401 - registers every converter
from ..boosters import as_estimator
from ..converters.sklearn.estimators import finalize_ml_opset
from ..core.frame import (
    DT,
    MISSING,
    NUM,
    STR,
    TARGET_OPSET,
    Check,
    Column,
    ExportError,
    exporting,
    is_frame_aware,
    no_converter,
    shape_calculator,
)
from ..core.parsing import (
    FrameOutputs,
    GroupedInputs,
    _parse_sklearn,
    frame_from_grouped_inputs,
    parse_frame_outputs,
)
from ..core.refused import check_convertible
from ..passes.fold import Folding, fold_numeric
from ..passes.fuse import Fusion, fuse_categorical, ids_variant
from ..passes.lean import Lean, lean_variant
from ..passes.simplify import protect_matmul_scales, simplify

#: IR version of the written models (onnxruntime 1.17+ loads IR <= 9).
IR_VERSION = 9


@dataclass
class Exported:
    """An exported graph and what a runtime needs to know to call it."""

    model: ModelProto
    columns: list[Column]
    checks: list[Check]
    task: str
    #: for task "transform": the columns of the ``num_out``, ``cat_out`` (and ``dt_out``) outputs
    output_columns: dict[str, list[str]] = field(default_factory=dict)
    #: for task "classification": the class labels, in the order of ``probabilities``
    classes: list[Any] = field(default_factory=list)
    #: what the fusion of the categorical part did (None: not fused, see predictlib.build.passes.fuse)
    fusion: Fusion | None = None
    #: for a fused graph, the graph the Python runtime runs (``model.ids.onnx``): the lean
    #: graph (:attr:`lean`), or else the same graph taking category ids (``cat_ids``)
    ids_model: ModelProto | None = None
    #: what the folding of the numeric part did (None: not folded, see predictlib.build.passes.fold)
    folding: Folding | None = None
    #: the lean graph (one input, one refusal test; see predictlib.build.passes.lean), None
    #: when it was not made (``lean=False``, an unfused graph) or not exact
    lean: Lean | None = None

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == NUM]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == STR]

    @property
    def datetime(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == DT]


@dataclass
class _Whole:
    """Grouped inputs followed by the user's model: the object handed to skl2onnx."""

    inputs: GroupedInputs
    model: Any
    frame_outputs: FrameOutputs | None = None


def _parse_whole(scope: Any, whole: _Whole, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    frame = frame_from_grouped_inputs(scope, whole.inputs, inputs)
    check_convertible(whole.model)  # a bare step: the same refusal as in a pipeline
    outputs = list(_parse_sklearn(scope, whole.model, frame, custom_parsers=custom_parsers))
    if _task(whole.model) == "transform":
        outputs, whole.frame_outputs = parse_frame_outputs(scope, outputs)
    elif any(hasattr(v, "predictlib_columns") for v in outputs):
        # e.g. scikit-learn's RFE as the last step: a regressor / classifier by its tags,
        # whose predict is its estimator's on the selected columns
        raise ExportError(
            f"{type(whole.model).__name__} is a {_task(whole.model)} model whose last step only "
            "transforms the columns here (its own prediction is not exported): end the pipeline "
            "with an estimator"
        )
    return outputs


update_registered_converter(_Whole, "PredictlibWhole", shape_calculator, no_converter, parser=_parse_whole)


def _task(model: Any) -> str:
    if is_regressor(model):
        return "regression"
    if is_classifier(model):
        return "classification"
    return "transform"


def infer_columns(frame: Any) -> list[Column]:
    """Column kinds from a training DataFrame: numbers (and booleans) are ``num``,
    ``object`` / ``str`` / ``category`` columns are ``str``, naive ``datetime64``
    columns (any unit) are ``dt``. Timezone-aware datetime columns are refused."""
    import pandas as pd

    columns = []
    for name, dtype in frame.dtypes.items():
        if getattr(dtype, "pyarrow_dtype", None) is not None and pd.api.types.is_datetime64_any_dtype(dtype):
            raise ExportError(
                f"column '{name}' has dtype {dtype}: give datetime columns as numpy-backed "
                "datetime64 columns at training (e.g. X[col] = X[col].astype('datetime64[ns]'))"
            )
        if isinstance(dtype, pd.DatetimeTZDtype):
            raise ExportError(
                f"column '{name}' has dtype {dtype}: predictlib exports naive datetime64 columns only "
                "(a timezone-aware column's calendar fields depend on its time zone and on the steps' "
                "utc= setting); convert it before fitting, e.g. "
                "X[col] = X[col].dt.tz_convert('UTC').dt.tz_localize(None)"
            )
        if pd.api.types.is_datetime64_dtype(dtype):
            columns.append(Column(str(name), DT))
        elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            columns.append(Column(str(name), NUM))
        elif isinstance(dtype, pd.CategoricalDtype) and all(isinstance(c, str) for c in dtype.categories):
            columns.append(Column(str(name), STR, tuple(dtype.categories)))
        elif (
            pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        ):
            columns.append(Column(str(name), STR))
        else:
            raise ExportError(f"column '{name}' has dtype {dtype}, which predictlib does not export yet")
    return columns


def export_pipeline(
    model: Any,
    columns: Sequence[Column],
    *,
    name: str = "predictlib",
    fuse: bool = True,
    clean_up: bool = True,
    fold: bool = True,
    lean: bool = True,
    X_train: Any = None,
) -> Exported:
    """Convert fitted ``model`` (whose input columns are ``columns``) to one graph.

    ``model`` is a regressor (outputs ``prediction``), a classifier (outputs ``label``
    [N] and ``probabilities`` [N, n_classes], classes in :attr:`Exported.classes`), or
    a transformer / pipeline of transformers (outputs ``num_out`` and ``cat_out``, the
    final frame's numeric and string columns, listed in :attr:`Exported.output_columns`;
    ``dt_out`` too when datetime columns reach the end).

    ``fuse``: replace the categorical part by table lookups when it can be done
    exactly (:mod:`predictlib.build.passes.fuse`); the graph then also has an ids variant
    (:attr:`Exported.ids_model`). ``clean_up``: the graph clean-ups of
    :mod:`predictlib.build.passes.simplify`. ``fold``: the affine steps folded into fewest
    nodes and duplicate nodes merged (:mod:`predictlib.build.passes.fold`). ``lean``: the
    graph the Python runtime runs is the lean graph of :mod:`predictlib.build.passes.lean`
    (one input, one refusal test) rather than the ids variant. All only make the graph
    faster; tests export without them to check that. ``X_train``: the frame ``model`` was
    fitted on, for the converters that need training values (CatBoost's one-hot categories).
    """
    model = as_estimator(model)  # a raw LightGBM / XGBoost Booster: predictlib.build.booster(raw)
    task = _task(model)
    classes = _classes(model) if task == "classification" else []
    columns = list(columns)
    numeric = [c.name for c in columns if c.kind == NUM]
    categorical = [c.name for c in columns if c.kind == STR]
    datetime = [c.name for c in columns if c.kind == DT]
    initial_types: list[tuple[str, Any]] = []
    if numeric:
        initial_types.append(("num", DoubleTensorType([None, len(numeric)])))
    if categorical:
        initial_types.append(("cat", StringTensorType([None, len(categorical)])))
    if datetime:
        initial_types.append(("dt", Int64TensorType([None, len(datetime)])))
    parsed = model
    if task != "transform" and not isinstance(model, Pipeline) and not is_frame_aware(type(model)):
        # a bare estimator: as the last step of a pipeline, so it gets the pipeline parser's
        # input guards (NaN / inf refusals) and plain (label, probabilities) outputs
        parsed = Pipeline([("model", model)])
    whole = _Whole(GroupedInputs(numeric, categorical, [c.name for c in columns], datetime), parsed)
    with exporting(model, X_train) as state:
        onx = convert_sklearn(whole, name=name, initial_types=initial_types, target_opset=TARGET_OPSET)
    finalize_ml_opset(onx)  # float64 trees: ai.onnx.ml opset 5's TreeEnsemble
    fusion = fuse_categorical(onx, state) if fuse else None
    graph = onx.graph
    output_columns: dict[str, list[str]] = {}
    if task == "regression":
        if len(graph.output) != 1:
            raise ExportError(f"expected one output from a regressor, got {[o.name for o in graph.output]}")
        _rename_output(graph, graph.output[0].name, "prediction", onnx.TensorProto.DOUBLE, [None, 1])
    elif task == "classification":
        if len(graph.output) != 2:
            raise ExportError(f"expected label and probabilities, got {[o.name for o in graph.output]}")
        label_type = onnx.TensorProto.STRING if isinstance(classes[0], str) else onnx.TensorProto.INT64
        label, proba = (o.name for o in graph.output)
        _rename_output(graph, label, "label", label_type, [None])
        _rename_output(graph, proba, "probabilities", onnx.TensorProto.DOUBLE, [None, len(classes)])
    else:
        assert whole.frame_outputs is not None
        spec = whole.frame_outputs
        blocks = [
            (label, cols, dtype)
            for label, cols, dtype in (
                ("num_out", spec.numeric, onnx.TensorProto.DOUBLE),
                ("cat_out", spec.categorical, onnx.TensorProto.STRING),
                ("dt_out", spec.datetime, onnx.TensorProto.INT64),
            )
            if cols
        ]
        for (label, cols, dtype), old in zip(blocks, [o.name for o in graph.output], strict=True):
            _rename_output(graph, old, label, dtype, [None, len(cols)])
            output_columns[label] = list(cols)
    if state.tensors:
        graph.node.append(
            helper.make_node("Concat", list(state.tensors), ["refusals"], axis=1, name="refusals")
        )
        graph.output.append(
            helper.make_tensor_value_info("refusals", onnx.TensorProto.BOOL, [None, len(state.checks)])
        )
    onx.ir_version = IR_VERSION
    if clean_up:
        simplify(onx)
    folding = fold_numeric(onx) if fold else None
    protect_matmul_scales(onx)  # onnxruntime would fold a float64 scale into a MatMul as a float32
    # one order for the opset imports (skl2onnx's depends on what the process converted before)
    opsets = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(opsets)
    onx.producer_name = "predictlib"
    onx.producer_version = ""
    onx.doc_string = f"predictlib graph; missing categories are {MISSING!r}"
    onnx.checker.check_model(onx, full_check=True)
    ids_model = ids_variant(onx, len(categorical)) if fusion is not None else None
    made = lean_variant(ids_model, len(numeric), len(categorical)) if lean and ids_model is not None else None
    if made is not None:
        protect_matmul_scales(made.model)
    return Exported(
        onx,
        columns,
        list(state.checks),
        task,
        output_columns,
        classes,
        fusion,
        ids_model if made is None else made.model,
        folding,
        made,
    )


def _classes(model: Any) -> list[Any]:
    """The classifier's labels as JSON-friendly Python values (str or int)."""
    classes = list(getattr(model, "classes_", []))
    if not classes:
        raise ExportError(f"{type(model).__name__} has no classes_")
    if all(isinstance(c, str) for c in classes):
        return [str(c) for c in classes]
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in classes):
        return [int(c) for c in classes]
    raise ExportError(
        f"{type(model).__name__}: class labels {classes[:5]} are neither all strings nor all integers"
    )


def _rename_output(graph: Any, old: str, new: str, dtype: int, shape: list[Any]) -> None:
    """Expose graph output ``old`` as ``new`` (an Identity node; onnxruntime removes it)."""
    if old != new:
        graph.node.append(helper.make_node("Identity", [old], [new], name=new))
    kept = [o for o in graph.output if o.name != old]
    del graph.output[:]
    graph.output.extend(kept)
    graph.output.append(helper.make_tensor_value_info(new, dtype, shape))
