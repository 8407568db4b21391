"""The loaded model: input adaptation, one onnxruntime session, output shaping."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np
import onnxruntime as ort

from ._artifact import Artifact, installed, read_artifact
from ._errors import ArtifactError, InputError, PredictlibError, Problem
from ._inputs import InputAdapter, ValueAt


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def default_session_options(threads: int = 1) -> ort.SessionOptions:
    """Options tuned for per-request calls: one thread, sequential, full graph
    optimisation. Batches of many thousand rows gain from ``threads`` > 1."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


class Model:
    """A model ready to predict. Create it with :func:`predictlib.load`.

    ``predict`` is safe to call from many threads at once.
    """

    def __init__(
        self, artifact: Artifact, *, threads: int = 1, session_options: ort.SessionOptions | None = None
    ) -> None:
        manifest = artifact.manifest
        self._manifest = _freeze(manifest)
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.task: str = manifest["task"]
        self.source = artifact.source
        try:
            inputs = manifest["inputs"]
            self._adapter = InputAdapter(
                inputs["numeric"],
                inputs["categorical"],
                inputs["missing_category"],
                inputs.get("datetime", []),
            )
            outputs = manifest["outputs"]
            if self.task == "classification":
                self.classes: tuple[Any, ...] = tuple(outputs["probabilities"]["classes"])
                main = [outputs["label"]["name"], outputs["probabilities"]["name"]]
            elif self.task == "regression":
                self.classes = ()
                main = [outputs["prediction"]["name"]]
            else:
                raise ArtifactError(f"{artifact.source}: unknown task {self.task!r}")
            self._checks = [dict(c) for c in outputs.get("refusals", {}).get("checks", [])]
        except (KeyError, TypeError) as exc:
            raise ArtifactError(f"{artifact.source}: the manifest lacks {exc}") from None
        try:
            self._session = ort.InferenceSession(
                artifact.model,
                sess_options=session_options or default_session_options(threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ArtifactError(f"{artifact.source}: onnxruntime cannot load the model ({exc})") from None
        self._output_names = main + (["refusals"] if self._checks else [])
        self._refusals = len(main) if self._checks else None
        self._has_num = bool(self._adapter.numeric)
        self._has_cat = bool(self._adapter.categorical)
        self._has_dt = bool(self._adapter.datetime)
        groups = {
            g for g, has in (("num", self._has_num), ("cat", self._has_cat), ("dt", self._has_dt)) if has
        }
        graph_inputs = {i.name for i in self._session.get_inputs()}
        if graph_inputs != groups:
            raise ArtifactError(
                f"{artifact.source}: the graph's inputs {sorted(graph_inputs)} are not the manifest's "
                f"column groups {sorted(groups)} (a model of a newer predictlib?)"
            )

    @property
    def manifest(self) -> Mapping[str, Any]:
        """The model's manifest (read-only)."""
        return self._manifest  # type: ignore[no-any-return]

    @property
    def columns(self) -> list[str]:
        """The input columns the model needs."""
        return list(self._adapter.columns)

    def __repr__(self) -> str:
        return f"<predictlib.Model {self.name} {self.version} ({self.task})>"

    # ----------------------------------------------------------------- predict
    def predict(self, data: Any) -> Any:
        """Predict one record (a mapping) or many rows (a sequence of mappings, a pandas
        DataFrame or a mapping of column -> values).

        Regression: a float for one record, a float64 array for rows. Classification:
        the predicted label (a class of :attr:`classes`) for one record, an array of
        labels for rows. Raises :class:`InputError` for input the model refuses.
        """
        results, single = self._run(data)
        if results is None:
            return np.empty(
                0, dtype=object if self.task == "classification" and self._string_labels() else np.float64
            )
        if self.task == "classification":
            labels = results[0]
            if single:
                label = labels[0]
                return label.item() if isinstance(label, np.generic) else label
            return labels
        return results[0].item(0) if single else results[0].reshape(-1)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities (float64), columns in the order of :attr:`classes`:
        shape ``[n_classes]`` for one record, ``[N, n_classes]`` for rows."""
        if self.task != "classification":
            raise PredictlibError(
                f"model '{self.name}' is a {self.task} model: predict_proba is for classifiers"
            )
        results, single = self._run(data)
        if results is None:
            return np.empty((0, len(self.classes)), dtype=np.float64)
        probabilities: np.ndarray = results[1]
        return probabilities[0] if single else probabilities

    def _string_labels(self) -> bool:
        return bool(self.classes) and isinstance(self.classes[0], str)

    def _run(self, data: Any) -> tuple[list[np.ndarray] | None, bool]:
        num, cat, value_at, problems, dt, single = self._adapt(data)
        if problems:
            self._refuse_with(problems, num, cat, dt, value_at, single)
        if num.shape[0] == 0:
            return None, single
        try:
            results = self._session_run(num, cat, dt)
        except UnicodeEncodeError:
            self._refuse_with([], num, cat, dt, value_at, single)
        if self._refusals is not None and results[self._refusals].any():
            raise InputError(
                self._refusal_problems(results[self._refusals], np.arange(num.shape[0]), value_at, single)
            )
        return results, single

    def _session_run(self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray) -> list[np.ndarray]:
        feeds = {}
        if self._has_num:
            feeds["num"] = num
        if self._has_cat:
            feeds["cat"] = cat
        if self._has_dt:
            feeds["dt"] = dt
        return self._session.run(self._output_names, feeds)  # type: ignore[no-any-return]

    def _refuse_with(
        self,
        problems: list[Problem],
        num: np.ndarray,
        cat: np.ndarray,
        dt: np.ndarray,
        value_at: ValueAt,
        single: bool,
    ) -> NoReturn:
        """Raise for ``problems`` found in the cells, plus every refusal of the other rows."""
        bad = {0 if p.row is None else p.row for p in problems}
        problems = list(problems)
        good = np.array([i for i in range(num.shape[0]) if i not in bad], dtype=np.int64)
        if good.size:
            results: list[np.ndarray] | None
            try:
                results = self._session_run(num[good], cat[good], dt[good])
            except UnicodeEncodeError:
                odd = _unencodable(cat[good])
                for i, j in odd:
                    row = int(good[i])
                    problems.append(
                        Problem(
                            None if single else row, self._adapter.categorical[j], cat[row, j], _NOT_UNICODE
                        )
                    )
                good = np.delete(good, sorted({i for i, _ in odd}))
                results = self._session_run(num[good], cat[good], dt[good]) if good.size else None
            if results is not None and self._refusals is not None:
                problems += self._refusal_problems(results[self._refusals], good, value_at, single)
        problems.sort(key=lambda p: -1 if p.row is None else p.row)
        raise InputError(problems)

    def _refusal_problems(
        self, flags: np.ndarray, rows: np.ndarray, value_at: ValueAt, single: bool
    ) -> list[Problem]:
        problems = []
        hit_rows, checks = np.nonzero(flags)
        for i, k in zip(hit_rows.tolist(), checks.tolist(), strict=True):
            row = int(rows[i])
            check = self._checks[k]
            column = check["column"]
            value = value_at(row, column) if column in self._adapter.columns else _derived(column)
            problems.append(
                Problem(
                    None if single else row,
                    column,
                    value,
                    f"refused by step '{check['step']}' ({check['transformer']}): {check['reason']}",
                )
            )
        return problems

    def _adapt(self, data: Any) -> tuple[np.ndarray, np.ndarray, ValueAt, list[Problem], np.ndarray, bool]:
        """(num, cat, value_at, problems, dt, single): see :data:`predictlib._inputs.Adapted`."""
        adapter = self._adapter
        if isinstance(data, Mapping):
            fast = adapter.one(data)
            if fast is not None:
                return fast[0], fast[1], _record_value(data), [], fast[2], True
            if data and all(_is_column(v) for v in data.values()):
                return (*adapter.from_columns(data), False)
            return (*adapter.from_records([data], single=True), True)
        if _is_dataframe(data):
            return (*adapter.from_columns(data), False)
        if _is_arrow(data):
            return (*adapter.from_arrow(data), False)
        if isinstance(data, (list, tuple)):
            return (*adapter.from_records(data, single=False), False)
        raise InputError([Problem(None, None, data, _WHAT_INPUT)])


_WHAT_INPUT = (
    "expected a record (a mapping of column name to value), a list of records, "
    "a pandas DataFrame or a mapping of column name to a sequence of values"
)


#: text that cannot enter a string tensor; the original pipeline fails on it too
#: (pandas cannot store it as a string)
_NOT_UNICODE = "text that is not valid Unicode (a lone surrogate), which the original pipeline cannot process"


def _unencodable(cat: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) of the cells holding text that is not valid Unicode."""
    found = []
    for (i, j), value in np.ndenumerate(cat):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            found.append((i, j))
    return found


def _record_value(record: Mapping[str, Any]) -> ValueAt:
    return lambda row, column: record.get(column)


def _derived(column: str) -> str:
    return f"<computed column '{column}'>"


def _is_column(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "iloc")


def _is_arrow(data: Any) -> bool:
    return type(data).__module__.startswith("pyarrow") and hasattr(data, "column_names")


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "iloc")


# --------------------------------------------------------------- module-level API

_CACHE: dict[str, Model] = {}
_CACHE_LOCK = threading.Lock()


def load(
    model: str | os.PathLike[str], *, threads: int = 1, session_options: ort.SessionOptions | None = None
) -> Model:
    """Load a model: an installed model's name, an artifact folder or a model wheel file."""
    return Model(read_artifact(model), threads=threads, session_options=session_options)


def _cached(name: str) -> Model:
    model = _CACHE.get(name)
    if model is None:
        with _CACHE_LOCK:
            model = _CACHE.get(name)
            if model is None:
                model = _CACHE[name] = load(name)
    return model


def predict(data: Any, *, model: str) -> Any:
    """Predict with an installed model (loaded once, then cached), see :meth:`Model.predict`."""
    return _cached(model).predict(data)


def available() -> dict[str, str]:
    """Installed models: name -> model version."""
    result = {}
    for name, ep in sorted(installed().items()):
        dist = ep.dist
        result[name] = dist.version if dist is not None else "?"
    return result
