"""Test helpers for converters: check an exported step against the original's ``transform``.

Use them from your own pytest to property-test a converter you registered
(``docs/custom-transformers.md``)::

    from predictlib.build.testing import check_converter

    def test_my_converter():
        check_converter(MyTransformer(), sample_frame)   # fits it on the sample, then
                                                        # hypothesis-generated frames

* :func:`frames_from_sample`: a hypothesis strategy of frames derived from a sample
  frame: its rows with cells replaced by missing values, values of other rows, zero,
  negated, rescaled and extreme numbers (+-1e300, +-inf), unseen texts;
* :func:`check_equivalent`: export a fitted transformer (or pipeline of transformers),
  run the graph with onnxruntime and compare it row by row with the original
  ``transform``: the original raises on a row <=> the graph's ``refusals`` flag it;
  otherwise the outputs are equal (numbers within :mod:`predictlib.build.tolerances`,
  texts and datetimes exactly), with the same column names;
* :func:`check_converter`: both, under hypothesis.

Needs hypothesis (``pip install hypothesis``) for the strategies; pandas and
onnxruntime come with ``predictlib[build]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from . import tolerances
from .converters.sklearn.compose import COMPOSITION_OPS
from .core.frame import MISSING, NAT, PLUMBING_OPS, Column, ExportError, registered_frame_converters
from .passes.fold import FOLD_OPS
from .passes.fuse import FUSION_OPS
from .stages.export import Exported, export_pipeline, infer_columns


def quietly(call: Callable[[], Any]) -> Any:
    """Run ``call`` with feature-engine's / pandas' warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _is_fitted(model: Any) -> bool:
    try:
        check_is_fitted(model)
    except NotFittedError:
        return False
    return True


# ----------------------------------------------------------------------- equivalence


@dataclass
class Outcome:
    """What one :func:`check_equivalent` call saw."""

    exported: Exported
    rows: int
    refused: int


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def graph_inputs(exported: Exported, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``num`` / ``cat`` inputs of the graph for ``frame`` (columns found by name)."""
    feeds: dict[str, np.ndarray] = {}
    if exported.numeric:
        feeds["num"] = frame[exported.numeric].to_numpy(dtype=np.float64).reshape(len(frame), -1)
    if exported.categorical:
        cat = np.empty((len(frame), len(exported.categorical)), dtype=object)
        for j, name in enumerate(exported.categorical):
            for i, value in enumerate(frame[name].tolist()):
                if is_missing(value):
                    cat[i, j] = MISSING
                elif isinstance(value, str):
                    cat[i, j] = value
                else:
                    raise TypeError(f"harness: categorical column {name!r} holds {value!r}")
        feeds["cat"] = cat
    if exported.datetime:
        feeds["dt"] = np.column_stack(
            [frame[name].to_numpy(dtype="datetime64[ns]").view(np.int64) for name in exported.datetime]
        ).reshape(len(frame), -1)
    return feeds


def run_graph(exported: Exported, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        exported.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, graph_inputs(exported, frame)), strict=True))


def _original(model: Any, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, Exception | None]:
    try:
        out = quietly(lambda: model.transform(frame))
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: datetime differences
        return None, exc
    if not isinstance(out, pd.DataFrame):  # a scikit-learn transformer's array (dense or sparse)
        out = _as_frame(model, out)
    return out, None


def _as_frame(model: Any, out: Any) -> pd.DataFrame:
    """A transformer's array output as a DataFrame named by ``get_feature_names_out``."""
    if hasattr(out, "toarray"):
        out = out.toarray()
    assert isinstance(out, np.ndarray) and out.ndim == 2, f"the original transform returned a {type(out)}"
    names = [str(n) for n in model.get_feature_names_out()]
    return pd.DataFrame(out, columns=names)


def _kind(series: pd.Series) -> str | None:
    """The column's kind, "num", "str" or "dt"; None for a column of missing values only,
    whose dtype says nothing (``infer_objects`` turns an object column of NaN into float64).
    An object column of numbers (booleans included, as True is 1) and missing values (e.g.
    ints and ``pd.NA``) is "num": scikit-learn's imputers output an object array of their
    values and missing-value indicators when text comes in."""
    if all(is_missing(v) for v in series.tolist()):
        return None
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "dt"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "num"
    if pd.api.types.is_object_dtype(dtype) and all(
        is_missing(v) or isinstance(v, (int, float, np.integer, np.floating, np.bool_))
        for v in series.tolist()
    ):
        return "num"
    return "str"


def check_columns(original: pd.DataFrame, exported: Exported) -> None:
    """The graph outputs the original's columns: numeric ones in ``num_out``, text ones in
    ``cat_out``, each in the original's order."""
    names = [str(c) for c in original.columns]
    got_num = exported.output_columns.get("num_out", [])
    got_cat = exported.output_columns.get("cat_out", [])
    got_dt = exported.output_columns.get("dt_out", [])
    message = f"output columns differ: original {names}; graph num_out {got_num}, cat_out {got_cat}"
    if got_dt:
        message += f", dt_out {got_dt}"
    assert len(set(names)) == len(names), f"the original output has duplicated columns {names}"
    assert sorted(got_num + got_cat + got_dt) == sorted(names), message
    assert got_num == [c for c in names if c in set(got_num)], message
    assert got_cat == [c for c in names if c in set(got_cat)], message
    assert got_dt == [c for c in names if c in set(got_dt)], message
    by_kind = {"num": got_num, "str": got_cat, "dt": got_dt}
    what = {"num": "numeric", "str": "text", "dt": "datetime"}
    for col in original.columns:
        kind = _kind(original[col])
        assert kind is None or str(col) in by_kind[kind], (
            f"{message}; column {col!r} is {what[kind]} ({original[col].dtype}) in the original"
        )


def same_number(got: float, expected: float) -> bool:
    """Equal (infinities included), both NaN, or both finite and within
    ``|got - expected| <= ATOL + RTOL * |expected|`` (applied to an infinity, that bound
    is infinite too and would accept any value)."""
    if got == expected or (math.isnan(got) and math.isnan(expected)):
        return True
    if not (math.isfinite(got) and math.isfinite(expected)):
        return False
    return abs(got - expected) <= tolerances.ATOL + tolerances.RTOL * abs(expected)


def _compare_rows(
    original: pd.DataFrame,
    outputs: dict[str, np.ndarray],
    exported: Exported,
    rows: Sequence[int],
    inputs: pd.DataFrame,
) -> None:
    """``original`` (one row per entry of ``rows``) against the graph's rows ``rows``."""
    failures: list[tuple[int, str]] = []
    for label in ("num_out", "cat_out", "dt_out"):
        for j, col in enumerate(exported.output_columns.get(label, [])):
            for pos, row in enumerate(rows):
                expected = original[col].iloc[pos]
                got = outputs[label][row, j]
                if label == "num_out":
                    assert not isinstance(expected, str), f"column {col!r}: the original gives {expected!r}"
                    exp = math.nan if is_missing(expected) else float(expected)
                    if not same_number(float(got), exp):
                        failures.append((row, f"{col!r}: graph {float(got)!r}, original {exp!r}"))
                elif label == "dt_out":
                    exp_ns = NAT if is_missing(expected) else int(pd.Timestamp(expected).as_unit("ns").value)
                    if int(got) != exp_ns:
                        failures.append((row, f"{col!r}: graph {int(got)} ns, original {expected!r}"))
                elif is_missing(expected):
                    if got != MISSING:
                        failures.append((row, f"{col!r}: graph {got!r}, original missing ({expected!r})"))
                elif not isinstance(expected, str) or got != expected:
                    failures.append((row, f"{col!r}: graph {got!r}, original {expected!r}"))
    if failures:
        lines = "\n  ".join(f"row {row}, {message}" for row, message in failures)
        shown = inputs.iloc[sorted({row for row, _ in failures})]
        raise AssertionError(f"graph and original transform differ:\n  {lines}\ninputs:\n{shown!r}")


def _flagged(exported: Exported, flags: np.ndarray) -> list[str]:
    return [f"{c.column} ({c.step}: {c.reason})" for c, f in zip(exported.checks, flags, strict=True) if f]


def _steps(model: Any) -> list[Any]:
    """``model`` and every step nested in it (pipelines, wrappers)."""
    found = [model]
    for _, step in getattr(model, "steps", []):
        found.extend(_steps(step))
    for attr in ("transformer", "regressor", "estimator"):
        inner = getattr(model, attr, None)
        if inner is not None and hasattr(inner, "fit"):
            found.extend(_steps(inner))
    # scikit-learn's compositions: ColumnTransformer (fitted transformers_), FeatureUnion
    for entry in [*getattr(model, "transformers_", []), *getattr(model, "transformer_list", [])]:
        inner = entry[1]
        if hasattr(inner, "fit"):
            found.extend(_steps(inner))
    return found


def check_declared_ops(model: Any, exported: Exported) -> None:
    """The graph keeps to the ONNX operators its converters declare (``onnx_ops``); a
    converter that declares none (``onnx_ops = None``) leaves the check out."""
    converters = registered_frame_converters()
    declared = set(PLUMBING_OPS) | COMPOSITION_OPS
    if exported.fusion is not None:
        declared |= FUSION_OPS
    if exported.folding is not None and exported.folding.chains_folded:
        declared |= FOLD_OPS
    for step in _steps(model):
        if type(step) in converters:
            ops = converters[type(step)].onnx_ops
            if ops is None:
                return
            declared |= ops
    used = {node.op_type for node in exported.model.graph.node}
    assert used <= declared, f"operators not declared by the converters' onnx_ops: {sorted(used - declared)}"


def check_equivalent(
    fitted_transformer: Any,
    fit_frame: pd.DataFrame,
    transform_frame: pd.DataFrame,
    y: pd.Series | None = None,
    *,
    columns: Sequence[Column] | None = None,
) -> Outcome:
    """Export ``fitted_transformer`` and check the graph against its ``transform`` on
    ``transform_frame``, row by row and as a batch (see the module docstring).

    An unfitted transformer is fitted on ``fit_frame`` (and ``y``) first. ``columns``:
    the graph's input columns, ``infer_columns(fit_frame)`` by default (another order
    exercises the column reordering of the export).
    """
    model = fitted_transformer
    if not _is_fitted(model):
        quietly(lambda: model.fit(fit_frame, y))
    columns = infer_columns(fit_frame) if columns is None else list(columns)
    exported = export_pipeline(model, columns)
    assert exported.task == "transform", f"expected a transformer, got task {exported.task!r}"
    check_declared_ops(model, exported)
    outputs = run_graph(exported, transform_frame)
    n = len(transform_frame)
    if "refusals" in outputs:
        refusals = outputs["refusals"]
        assert refusals.dtype == np.bool_ and refusals.shape == (n, len(exported.checks)), (
            f"refusals: dtype {refusals.dtype}, shape {refusals.shape}, {len(exported.checks)} checks"
        )
    else:
        assert not exported.checks, "checks are listed but the graph has no refusals output"
        refusals = np.zeros((n, 0), dtype=bool)
    refused = refusals.any(axis=1)
    for label, cols in exported.output_columns.items():
        assert outputs[label].shape == (n, len(cols)), (
            f"{label}: shape {outputs[label].shape}, columns {cols}"
        )

    batch, batch_error = _original(model, transform_frame)
    assert (batch_error is not None) == bool(refused.any()), (
        f"the original {'raises' if batch_error else 'accepts'} the batch ({batch_error!r}); "
        f"the graph refuses rows {np.nonzero(refused)[0].tolist()}\ninputs:\n{transform_frame!r}"
    )
    for i in range(n):
        row = transform_frame.iloc[[i]]
        single, error = _original(model, row)
        if error is not None:
            assert refused[i], f"row {i}: the original raises ({error!r}), the graph accepts it:\n{row!r}"
            continue
        assert not refused[i], (
            f"row {i}: the graph refuses it ({_flagged(exported, refusals[i])}), "
            f"the original accepts it:\n{row!r}"
        )
        assert single is not None
        check_columns(single, exported)
        _compare_rows(single, outputs, exported, [i], transform_frame)
    if batch is not None:
        check_columns(batch, exported)
        _compare_rows(batch, outputs, exported, list(range(n)), transform_frame)
    _event("rows refused: " + ("none" if not refused.any() else "all" if refused.all() else "some"))
    return Outcome(exported, n, int(refused.sum()))


def export_error(model: Any, frame: pd.DataFrame) -> str:
    """The message of the :class:`conversion.ExportError` that exporting ``model`` raises."""
    try:
        export_pipeline(model, infer_columns(frame))
    except ExportError as exc:
        return str(exc)
    raise AssertionError(f"exporting {model!r} did not raise ExportError")


def _event(text: str) -> None:
    """A hypothesis event (for --hypothesis-show-statistics), when under hypothesis."""
    try:
        from hypothesis import event
        from hypothesis.control import currently_in_test_context
    except ImportError:  # pragma: no cover - hypothesis is optional here
        return
    if currently_in_test_context():
        event(text)


# --------------------------------------------------------------- frames from a sample

#: numbers a cell may become: edge cases every numeric step meets in production
EDGE_NUMBERS = (0.0, -0.0, -1.0, 1.0, 1e300, -1e300, math.inf, -math.inf, 1e-300)
#: texts no fitted category is likely to hold
UNSEEN_TEXTS = ("__unseen__", "zz", "", " ", "ü")


def frames_from_sample(sample: pd.DataFrame, *, max_rows: int = 12, missing: bool = True) -> Any:
    """A hypothesis strategy of frames with ``sample``'s columns and dtypes: rows of
    ``sample`` with some cells replaced by an edge case (missing when ``missing``; a value
    of another row; for numbers zero, negated, x10 / x0.1, :data:`EDGE_NUMBERS`; for
    texts :data:`UNSEEN_TEXTS`; for datetimes NaT)."""
    from hypothesis import strategies as st

    if len(sample) == 0:
        raise ValueError("frames_from_sample needs a sample with rows")
    base = sample.reset_index(drop=True)
    kinds = {c.name: c.kind for c in infer_columns(base)}

    @st.composite
    def frames(draw: Any) -> pd.DataFrame:
        n = draw(st.integers(1, max_rows))
        rows = [draw(st.integers(0, len(base) - 1)) for _ in range(n)]
        frame = base.iloc[rows].reset_index(drop=True).copy()
        for column in base.columns:
            kind = kinds[str(column)]
            values = frame[column].astype(object).tolist()
            changed = False
            for i in range(n):
                if not draw(st.booleans()):
                    continue
                choice = draw(st.integers(0, 3))
                if choice == 0 and missing:
                    values[i] = None
                elif choice == 1:
                    values[i] = base[column].iloc[draw(st.integers(0, len(base) - 1))]
                elif kind == "num" and not is_missing(values[i]):
                    v = float(values[i])
                    values[i] = draw(st.sampled_from([0.0, -v, v * 10, v * 0.1, *EDGE_NUMBERS]))
                elif kind == "str":
                    values[i] = draw(st.sampled_from(UNSEEN_TEXTS))
                else:
                    continue
                changed = True
            if changed:
                frame[column] = _like(base[column], values, kind)
        return frame

    return frames()


def _like(original: pd.Series, values: list[Any], kind: str) -> pd.Series:
    """``values`` as a column of ``original``'s dtype where it can hold them."""
    if kind == "num":
        out = pd.Series([math.nan if is_missing(v) else float(v) for v in values], dtype=np.float64)
        if pd.api.types.is_integer_dtype(original.dtype) and out.notna().all():
            finite = np.isfinite(out) & (out == np.floor(out)) & (out.abs() < 2**53)
            if finite.all():
                return out.astype(original.dtype)
        return out
    if kind == "dt":
        return pd.Series(pd.to_datetime([None if is_missing(v) else v for v in values])).astype(
            original.dtype
        )
    text = pd.Series([None if is_missing(v) else v for v in values], dtype=object)
    if isinstance(original.dtype, pd.CategoricalDtype):
        return text.astype("category")
    return text.astype(original.dtype) if pd.api.types.is_string_dtype(original.dtype) else text


def check_converter(
    transformer: Any,
    sample: pd.DataFrame,
    y: Any = None,
    *,
    max_examples: int = 50,
    max_rows: int = 12,
) -> None:
    """Property-test ``transformer``'s converter against its own ``transform``.

    Fits ``transformer`` on ``sample`` (and ``y``) unless it is fitted, then checks
    :func:`check_equivalent` on ``max_examples`` frames of :func:`frames_from_sample`
    (hypothesis, derandomized: the same examples each run). Raises ``AssertionError``
    with the rows that differ, or the :class:`ExportError` of a step that does not
    export. ``transformer`` may be a pipeline of transformers.
    """
    from hypothesis import HealthCheck, given, settings

    if not _is_fitted(transformer):
        quietly(lambda: transformer.fit(sample, y))
    columns = infer_columns(sample)

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(frames_from_sample(sample, max_rows=max_rows))
    def run(frame: pd.DataFrame) -> None:
        check_equivalent(transformer, sample, frame, columns=columns)

    run()


__all__ = [
    "Outcome",
    "check_converter",
    "check_declared_ops",
    "check_equivalent",
    "export_error",
    "frames_from_sample",
    "graph_inputs",
    "run_graph",
]
