"""The loaded model: input adaptation, one onnxruntime session, output shaping."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np
import onnxruntime as ort

from ._artifact import Artifact, installed, read_artifact, read_checked
from ._drift import DriftReport, Monitor, Thresholds
from ._drift import drift as drift_of
from ._errors import ArtifactError, InputError, PredictlibError, Problem
from ._ids import CategoryIds
from ._inputs import NOT_UNICODE, InputAdapter, ValueAt
from ._polars import is_polars, polars_to_arrow


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


#: rows per onnxruntime run in a large batch: a chunk's intermediate tensors stay in
#: the CPU caches (one run over a million rows spends most of its time on memory;
#: house_prices runs 1M rows in 0.41 s by chunks of 2,048 rows, 0.62 s by 65,536).
RUN_CHUNK = 2_048
#: rows per slice of a large DataFrame or arrow table, adapted (then run by
#: RUN_CHUNK rows) on one thread: large enough that pandas' per-column cost is
#: spread over many rows (house_prices, 1M rows on 2 threads: 0.89 s by slices of
#: 32,768, 0.72 s by 131,072), small enough that the batch is never copied whole
ADAPT_CHUNK = 131_072

#: DataFrames of at most this many rows are adapted as records (see
#: InputAdapter.from_small_frame): pandas' per-column calls cost more than the rows
SMALL_FRAME = 200

_POOLS: dict[int, Any] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> Any:
    """A shared thread pool of ``workers`` threads (concurrent.futures is imported on
    the first large batch, not at import: it would cost every cold start)."""
    pool = _POOLS.get(workers)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(workers)
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="predictlib")
    return pool


@dataclasses.dataclass(frozen=True)
class RowPredictions:
    """What :meth:`Model.predict_rows` returns: one entry per row of the batch; a refused
    row is marked and explained, never dropped."""

    #: regression: the float64 predictions (NaN where refused); classification: the
    #: labels (an object array, None where refused)
    predictions: np.ndarray
    #: classification: float64 ``[N, n_classes]`` in the order of ``Model.classes`` (rows
    #: of NaN where refused); regression: None
    probabilities: np.ndarray | None
    #: bool ``[N]``: True where the row was refused
    refused: np.ndarray
    #: every problem found, in row order; each names its row (0-based in the batch), the
    #: column, the value and what was expected, as :class:`InputError` does
    problems: list[Problem]


class Model:
    """A model ready to predict. Create it with :func:`predictlib.load`.

    ``predict`` is safe to call from many threads at once.
    """

    def __init__(
        self,
        artifact: Artifact,
        *,
        threads: int = 1,
        session_options: ort.SessionOptions | None = None,
        batch_threads: int | None = None,
    ) -> None:
        if batch_threads is not None and batch_threads < 1:
            raise PredictlibError(f"batch_threads must be None or at least 1, got {batch_threads}")
        #: threads running the chunks of a large batch at once
        self.batch_threads = batch_threads or os.cpu_count() or 1
        manifest = artifact.manifest
        self._manifest = _freeze(manifest)
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.task: str = manifest["task"]
        self.source = artifact.source
        self._read = artifact.read
        try:
            inputs = manifest["inputs"]
            spec = inputs.get("category_ids") if artifact.ids_model is not None else None
            ids = None
            if spec is not None:
                ids = CategoryIds(spec["vocabulary"], inputs["missing_category"])
            self._adapter = InputAdapter(
                inputs["numeric"],
                inputs["categorical"],
                inputs["missing_category"],
                inputs.get("datetime", []),
                ids,
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
        except ValueError as exc:
            raise ArtifactError(f"{artifact.source}: the manifest's inputs.category_ids: {exc}") from None
        #: the graph input of the categorical columns: texts, or their ids (inputs.category_ids)
        self._cat_input = "cat" if ids is None else "cat_ids"
        try:
            self._session = ort.InferenceSession(
                artifact.model if ids is None else artifact.ids_model,
                sess_options=session_options or default_session_options(threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ArtifactError(f"{artifact.source}: onnxruntime cannot load the model ({exc})") from None
        self._output_names = main + (["refusals"] if self._checks else [])
        # the session's run without the Python wrapper's per-call checks (which repeat
        # what the adapter guarantees: the inputs' names and types), with run options
        # made once (never changed, so shared by concurrent calls): given None,
        # onnxruntime makes default ones on every call
        self._run_session = getattr(self._session, "_sess", self._session).run
        self._run_options = ort.RunOptions()
        self._refusals = len(main) if self._checks else None
        self._regression = self.task == "regression"
        self._has_num = bool(self._adapter.numeric)
        self._has_cat = bool(self._adapter.categorical)
        self._has_dt = bool(self._adapter.datetime)
        groups = {
            g
            for g, has in (("num", self._has_num), (self._cat_input, self._has_cat), ("dt", self._has_dt))
            if has
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
        if type(data) is dict and self._regression:
            # the per-request call, a plain record: straight to the session
            fast = self._adapter.one(data)
            if fast is not None:
                found, flags = self._run_chunk(*fast)
                if flags is None:
                    return found[0].item(0)
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

    def predict_rows(self, data: Any) -> RowPredictions:
        """Predict every row of a batch that can be predicted and report the others one by
        one, where :meth:`predict` refuses the whole batch: for scoring jobs
        (:mod:`predictlib.spark`) that must neither fail nor lose a row. ``data`` is any
        input :meth:`predict` takes (one record is a batch of one row). Problems of the
        input as a whole (a missing column, an input that is not a batch) raise
        :class:`InputError` as :meth:`predict` does."""
        if is_polars(data):
            data = polars_to_arrow(data)
        rows = _sliceable_rows(data)
        if rows <= ADAPT_CHUNK:
            return self._predict_rows(data)
        parts = []
        for a in range(0, rows, ADAPT_CHUNK):
            part = data.iloc[a : a + ADAPT_CHUNK] if _is_dataframe(data) else data.slice(a, ADAPT_CHUNK)
            found = self._predict_rows(part)
            moved = [dataclasses.replace(p, row=(p.row or 0) + a) for p in found.problems]
            parts.append(dataclasses.replace(found, problems=moved))
        probabilities = [p.probabilities for p in parts if p.probabilities is not None]
        return RowPredictions(
            np.concatenate([p.predictions for p in parts]),
            np.concatenate(probabilities) if probabilities else None,
            np.concatenate([p.refused for p in parts]),
            [problem for p in parts for problem in p.problems],
        )

    def _predict_rows(self, data: Any) -> RowPredictions:
        num, cat, value_at, problems, dt, _single = self._adapt(data)
        n = num.shape[0]
        problems = [p if p.row is not None else dataclasses.replace(p, row=0) for p in problems]
        refused = np.zeros(n, dtype=bool)
        refused[[p.row or 0 for p in problems]] = True
        if self._regression:
            predictions = np.full(n, np.nan)
            probabilities = None
        else:
            predictions = np.full(n, None, dtype=object)
            probabilities = np.full((n, len(self.classes)), np.nan)
        good = np.flatnonzero(~refused)
        while good.size:
            run = (num, cat, dt) if good.size == n else (num[good], cat[good], dt[good])
            try:
                results, flags = self._session_run(*run)
            except UnicodeEncodeError:  # a model taking texts: text that is not valid Unicode
                odd = _unencodable(run[1])
                problems += [
                    Problem(int(good[i]), self._adapter.categorical[j], run[1][i, j], NOT_UNICODE)
                    for i, j in odd
                ]
                refused[good[[i for i, _ in odd]]] = True
                good = np.flatnonzero(~refused)
                continue
            if probabilities is None:
                predictions[good] = results[0].reshape(-1)
            else:
                predictions[good] = results[0].tolist()
                probabilities[good] = results[1]
            if flags is not None:
                problems += self._refusal_problems(flags, good, value_at, False)
                hit = good[flags.any(axis=1)]
                refused[hit] = True
                predictions[hit] = np.nan if probabilities is None else None
                if probabilities is not None:
                    probabilities[hit] = np.nan
            break
        problems.sort(key=lambda p: p.row or 0)
        return RowPredictions(predictions, probabilities, refused, problems)

    # ------------------------------------------------------------ drift (_drift.py)
    def read_file(self, name: str) -> bytes:
        """A file of the model's artifact, checked against the sha256 its manifest records:
        ``model.onnx``, ``model.ids.onnx`` or one of the manifest's ``files`` (``golden.json``,
        ``profile.json``, ``model.ort``...). Raises :class:`ArtifactError` otherwise."""
        return read_checked(self._manifest, self._read, name, self.source)

    def drift(self, data: Any, thresholds: Thresholds | Mapping[str, float] | None = None) -> DriftReport:
        """How ``data`` (any input :meth:`predict` takes) differs from the training data,
        per input column and for the predictions, against the training profile the
        artifact carries: a :class:`DriftReport` (``docs/monitoring.md``). Rows the model
        refuses are counted, never raised."""
        return drift_of(self, data, thresholds)

    def monitor(self) -> Monitor:
        """A :class:`Monitor`: call ``monitor.predict(data)`` instead of ``predict`` to
        accumulate drift counts over many calls (mergeable across processes)."""
        return Monitor(self)

    def _run_texts(
        self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """For _drift: the outputs and refusal flags of arrays adapted with texts in ``cat``
        (valid Unicode); the ids graph gets their ids."""
        if self._adapter.ids is not None and self._has_cat:
            cat = self._adapter.ids.column(cat)[0]
        return self._session_run(num, cat, dt)

    def _string_labels(self) -> bool:
        return bool(self.classes) and isinstance(self.classes[0], str)

    def _run(self, data: Any, parallel: bool = True) -> tuple[list[np.ndarray] | None, bool]:
        if is_polars(data):  # read through Arrow (numeric buffers shared)
            data = polars_to_arrow(data)
        rows = _sliceable_rows(data)
        if rows > ADAPT_CHUNK:
            return self._run_by_chunks(data, rows), False
        num, cat, value_at, problems, dt, single = self._adapt(data)
        if problems:
            self._refuse_with(problems, num, cat, dt, value_at, single)
        if num.shape[0] == 0:
            return None, single
        try:
            results, flags = self._session_run(num, cat, dt, parallel)
        except UnicodeEncodeError:
            self._refuse_with([], num, cat, dt, value_at, single)
        if flags is not None:
            raise InputError(self._refusal_problems(flags, np.arange(num.shape[0]), value_at, single))
        return results, single

    def _run_by_chunks(self, data: Any, rows: int) -> list[np.ndarray]:
        """A large DataFrame or arrow table, adapted and run by slices of
        :data:`ADAPT_CHUNK` rows (on ``batch_threads`` threads), so the whole batch is
        never copied at once. Raises one :class:`InputError` naming the problems of
        every slice."""
        starts = range(0, rows, ADAPT_CHUNK)
        if _is_dataframe(data):

            def part(a: int) -> Any:
                return data.iloc[a : a + ADAPT_CHUNK]
        else:

            def part(a: int) -> Any:
                return data.slice(a, ADAPT_CHUNK)

        def run(a: int) -> tuple[list[np.ndarray], list[Problem]]:
            try:
                results, _ = self._run(part(a), parallel=False)
            except InputError as exc:
                return [], [
                    dataclasses.replace(p, row=None if p.row is None else p.row + a) for p in exc.problems
                ]
            assert results is not None
            return results, []

        if self.batch_threads > 1:
            parts = list(_pool(self.batch_threads).map(run, starts))
        else:
            parts = [run(a) for a in starts]
        problems = [p for _, found in parts for p in found]
        if problems:
            raise InputError(problems)
        return [np.concatenate([p[0][k] for p in parts]) for k in range(len(parts[0][0]))]

    def _session_run(
        self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray, parallel: bool = True
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The main outputs, and the refusal flags when a row is refused (None otherwise).
        Batches over :data:`RUN_CHUNK` rows run by chunks, on ``batch_threads`` threads
        when ``parallel`` (a caller already running on the pool passes False)."""
        n = num.shape[0]
        if n <= RUN_CHUNK:
            return self._run_chunk(num, cat, dt)
        starts = range(0, n, RUN_CHUNK)

        def chunk(a: int) -> tuple[list[np.ndarray], np.ndarray | None]:
            return self._run_chunk(num[a : a + RUN_CHUNK], cat[a : a + RUN_CHUNK], dt[a : a + RUN_CHUNK])

        if parallel and self.batch_threads > 1:
            parts = list(_pool(self.batch_threads).map(chunk, starts))
        else:
            parts = [chunk(a) for a in starts]
        results = [np.concatenate([p[0][k] for p in parts]) for k in range(len(parts[0][0]))]
        flags = None
        if any(p[1] is not None for p in parts):
            flags = np.zeros((n, len(self._checks)), dtype=bool)
            for a, (_, chunk_flags) in zip(starts, parts, strict=True):
                if chunk_flags is not None:
                    flags[a : a + RUN_CHUNK] = chunk_flags
        return results, flags

    def _run_chunk(
        self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        feeds = {}
        if self._has_num:
            feeds["num"] = num
        if self._has_cat:
            feeds[self._cat_input] = cat
        if self._has_dt:
            feeds["dt"] = dt
        results: list[np.ndarray] = self._run_session(self._output_names, feeds, self._run_options)
        if self._refusals is None:
            return results, None
        flags = results.pop()
        # a small array's bytes are the fastest test; a large one is not copied
        refused = 1 in flags.tobytes() if flags.size <= 4096 else bool(flags.any())
        return results, flags if refused else None

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
            flags: np.ndarray | None
            try:
                flags = self._session_run(num[good], cat[good], dt[good])[1]
            except UnicodeEncodeError:
                odd = _unencodable(cat[good])
                for i, j in odd:
                    row = int(good[i])
                    problems.append(
                        Problem(
                            None if single else row, self._adapter.categorical[j], cat[row, j], NOT_UNICODE
                        )
                    )
                good = np.delete(good, sorted({i for i, _ in odd}))
                flags = self._session_run(num[good], cat[good], dt[good])[1] if good.size else None
            if flags is not None:
                problems += self._refusal_problems(flags, good, value_at, single)
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

    def _adapt(
        self, data: Any, adapter: InputAdapter | None = None
    ) -> tuple[np.ndarray, np.ndarray, ValueAt, list[Problem], np.ndarray, bool]:
        """(num, cat, value_at, problems, dt, single): see :data:`predictlib._inputs.Adapted`.
        ``adapter``: another adapter of the same columns (predictlib._drift's gives texts)."""
        adapter = self._adapter if adapter is None else adapter
        if isinstance(data, Mapping):
            fast = adapter.one(data)
            if fast is not None:
                return fast[0], fast[1], _record_value(data), [], fast[2], True
            if data and all(_is_column(v) for v in data.values()):
                return (*adapter.from_columns(data), False)
            return (*adapter.from_records([data], single=True), True)
        if _is_dataframe(data):
            if len(data) <= SMALL_FRAME and data.columns.is_unique:
                return (*adapter.from_small_frame(data), False)
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


def _sliceable_rows(data: Any) -> int:
    """The rows of a DataFrame or a pyarrow table (both slice rows without copying), else 0."""
    if type(data) is dict or type(data) is list:
        return 0
    if _is_dataframe(data) or (_is_arrow(data) and hasattr(data, "slice")):
        return len(data)
    return 0


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "iloc")


# --------------------------------------------------------------- module-level API

_CACHE: dict[str, Model] = {}
_CACHE_LOCK = threading.Lock()


def load(
    model: str | os.PathLike[str],
    *,
    threads: int = 1,
    session_options: ort.SessionOptions | None = None,
    batch_threads: int | None = None,
) -> Model:
    """Load a model: an installed model's name, an artifact folder or a model wheel file.

    ``threads``: onnxruntime's threads inside one run (1 is fastest for one record);
    ``batch_threads``: how many chunks of a large batch (over :data:`RUN_CHUNK` rows)
    run at once (None: one per CPU core)."""
    return Model(
        read_artifact(model), threads=threads, session_options=session_options, batch_threads=batch_threads
    )


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
