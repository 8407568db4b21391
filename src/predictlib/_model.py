"""The loaded model: input adaptation, one onnxruntime session, output shaping."""

from __future__ import annotations

import dataclasses
import operator
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, TypeVar

import numpy as np
import onnxruntime as ort

from ._artifact import Artifact, installed, read_artifact, read_checked
from ._drift import DriftReport, Monitor, Thresholds
from ._drift import drift as drift_of
from ._errors import ArtifactError, InputError, PredictlibError, Problem, show_value
from ._ids import CategoryIds, encodable
from ._inputs import NAT, NOT_UNICODE, InputAdapter, ValueAt
from ._kinds import InputKind, kind_of
from ._lean import NO_ANSWER, LeanGraph


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
#: house_prices runs 1M rows in 0.41 s by chunks of 2,048 rows, 0.62 s by 65,536; by
#: rows per CPU-second on one thread, 512 / 2,048 rows: house_prices 557k / 539k, the
#: penguins forest, whose [rows, 200 trees, 3 classes] block then stays in cache,
#: 258k / 231k).
RUN_CHUNK = 512
#: rows per slice of a large DataFrame or arrow table, adapted (then run by
#: RUN_CHUNK rows) on one thread: large enough that pandas' per-column cost is
#: spread over many rows (house_prices, 1M rows on 2 threads: 0.89 s by slices of
#: 32,768, 0.72 s by 131,072), small enough that the batch is never copied whole
ADAPT_CHUNK = 131_072

#: DataFrames of at most this many rows are adapted as records (see
#: InputAdapter.from_small_frame): pandas' per-column calls cost more than the rows
SMALL_FRAME = 200

#: the most threads ``threads=`` / ``batch_threads=`` take (onnxruntime makes each one)
MAX_THREADS = 256

_POOLS: dict[int, Any] = {}
_POOLS_LOCK = threading.Lock()
#: set on the pools' own threads: work they run never waits on a pool (all its threads
#: could be waiting the same way: a deadlock); it runs in place instead
_ON_POOL = threading.local()
_T = TypeVar("_T")
_R = TypeVar("_R")


def _mark_pool_thread() -> None:
    _ON_POOL.active = True


def _pool(workers: int) -> Any:
    """A shared thread pool of ``workers`` threads (concurrent.futures is imported on
    the first large batch, not at import: it would cost every cold start)."""
    pool = _POOLS.get(workers)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(workers)
            if pool is None:
                from concurrent.futures import ThreadPoolExecutor

                pool = _POOLS[workers] = ThreadPoolExecutor(
                    workers, thread_name_prefix="predictlib", initializer=_mark_pool_thread
                )
    return pool


def _map(workers: int, function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """``[function(item) for item in items]``, on the shared pool of ``workers`` threads
    unless ``workers`` is 1 or the caller is itself a pool thread (nested work runs in
    place: a refusal found while a slice runs on the pool, a large slice's chunks)."""
    if workers > 1 and not getattr(_ON_POOL, "active", False):
        return list(_pool(workers).map(function, items))
    return [function(item) for item in items]


def _after_fork_in_child() -> None:
    """A forked child (gunicorn, celery, multiprocessing workers) has none of its
    parent's threads: its pools are forgotten (new ones are made on first use) and the
    module's locks made again (a parent thread may have held one at the fork)."""
    global _POOLS_LOCK, _CACHE_LOCK, _RESTORED_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()
    _CACHE_LOCK = threading.Lock()
    _RESTORED_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _threads(name: str, value: Any) -> int:
    """A thread count given to :func:`load`: an int from 1 to :data:`MAX_THREADS`."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise PredictlibError(
            f"{name} must be an int from 1 to {MAX_THREADS}, got {type(value).__name__} {show_value(value)}"
        )
    count = operator.index(value)
    if not 1 <= count <= MAX_THREADS:
        raise PredictlibError(f"{name} must be an int from 1 to {MAX_THREADS}, got {show_value(count)}")
    return count


class _Prepared(NamedTuple):
    """A caller's input adapted (the fields of :class:`predictlib._inputs.Adapted`) and
    whether it was one record (``predict`` then returns one value)."""

    num: np.ndarray
    cat: np.ndarray
    value_at: ValueAt
    problems: list[Problem]
    dt: np.ndarray
    single: bool


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
        threads = _threads("threads", threads)
        if batch_threads is not None:
            batch_threads = _threads("batch_threads", batch_threads)
        if session_options is not None:
            if not isinstance(session_options, ort.SessionOptions):
                raise PredictlibError(
                    f"session_options must be an onnxruntime.SessionOptions, got {type(session_options).__name__}"
                )
            _threads("session_options.intra_op_num_threads", max(1, session_options.intra_op_num_threads))
            _threads("session_options.inter_op_num_threads", max(1, session_options.inter_op_num_threads))
        #: threads running the chunks of a large batch at once
        self.batch_threads = batch_threads or min(os.cpu_count() or 1, MAX_THREADS)
        #: what a pickled Model is loaded again with (see __reduce__)
        self._load_args = (artifact.locator, artifact.pin, threads, batch_threads)
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
            # the lean graph (manifest "lean", predictlib._lean) takes the same category ids
            lean = manifest.get("lean") if artifact.ids_model is not None and spec is None else None
            spec = lean if lean is not None else spec
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
        self._lean: LeanGraph | None = None
        #: the per-request call of a model with a lean graph (see LeanGraph.compile_one)
        self._lean_one: Callable[[Mapping[str, Any]], Any] | None = None
        if lean is not None:
            self._lean = LeanGraph.of(
                lean, self._session, artifact.model, self._adapter, main, len(self._checks), artifact.source
            )
            groups = self._lean.inputs
            self._output_names = self._lean.names
            self._lean_one = self._lean.compile_one()
        graph_inputs = {i.name for i in self._session.get_inputs()}
        if graph_inputs != groups:
            raise ArtifactError(
                f"{artifact.source}: the graph's inputs {sorted(graph_inputs)} are not the manifest's "
                f"column groups {sorted(groups)} (a model of a newer predictlib?)"
            )
        self._check_graph(artifact.source)

    def _check_graph(self, source: str) -> None:
        """The graph against its manifest, before the first call: the types and widths
        of its inputs, its outputs, and one run on a row of missing values (the output
        shapes). A sealed but inconsistent artifact (checks dropped, a column missing,
        another model's graph) is refused here, not inside ``predict``."""
        if self._lean is not None:
            label = self._manifest["outputs"].get("label")
            kind = (
                None if label is None else "tensor(string)" if label["dtype"] == "string" else "tensor(int64)"
            )
            self._lean.check(source, self.classes, kind)
            return
        adapter = self._adapter
        expected_inputs = {
            "num": ("tensor(double)", len(adapter.numeric)),
            "cat": ("tensor(string)", len(adapter.categorical)),
            "cat_ids": ("tensor(int64)", len(adapter.categorical)),
            "dt": ("tensor(int64)", len(adapter.datetime)),
        }
        for spec in self._session.get_inputs():
            kind, width = expected_inputs[spec.name]
            shape = list(spec.shape)
            if spec.type != kind or len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != width):
                raise ArtifactError(
                    f"{source}: the graph's input '{spec.name}' is {spec.type} {shape}, the manifest's "
                    f"columns make {kind} [N, {width}]"
                )
        outputs = {o.name: o.type for o in self._session.get_outputs()}
        manifest_outputs = self._manifest["outputs"]
        wanted = {name: "tensor(double)" for name in self._output_names}
        if self.task == "classification":
            label = manifest_outputs["label"]
            wanted[label["name"]] = "tensor(string)" if label["dtype"] == "string" else "tensor(int64)"
        if self._checks:
            wanted["refusals"] = "tensor(bool)"
        for name, kind in wanted.items():
            if outputs.get(name) != kind:
                raise ArtifactError(
                    f"{source}: the graph has no {kind} output '{name}' (its outputs: {outputs}), "
                    "which the manifest describes"
                )
        cat: np.ndarray
        if adapter.ids is not None:
            cat = np.full((1, len(adapter.categorical)), adapter.ids.missing, dtype=np.int64)
        else:
            cat = np.full((1, len(adapter.categorical)), adapter.missing, dtype=object)
        feeds = {
            "num": np.full((1, len(adapter.numeric)), np.nan),
            self._cat_input: cat,
            "dt": np.full((1, len(adapter.datetime)), NAT, dtype=np.int64),
        }
        graph_inputs = {i.name for i in self._session.get_inputs()}
        try:
            results = self._run_session(
                self._output_names, {k: v for k, v in feeds.items() if k in graph_inputs}, self._run_options
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ArtifactError(
                f"{source}: the graph does not run on the manifest's columns ({exc})"
            ) from None
        widths = {name: 1 for name in self._output_names}
        if self.task == "classification":
            widths[manifest_outputs["probabilities"]["name"]] = len(self.classes)
        if self._checks:
            widths["refusals"] = len(self._checks)
        for name, result in zip(self._output_names, results, strict=True):
            if result.shape[0] != 1 or result.size != widths[name]:
                raise ArtifactError(
                    f"{source}: the graph's output '{name}' has shape {list(result.shape)} for one row, "
                    f"the manifest describes {widths[name]} value(s) per row"
                )

    def __reduce__(self) -> tuple[Any, ...]:
        """A Model pickles as where it was loaded from and the sha256 of its manifest: the
        other side loads it again from there and checks it is the same artifact
        (:func:`load` with ``sha256=``; threads as given; session_options are not carried)."""
        locator, pin, threads, batch_threads = self._load_args
        if locator is None or pin is None:
            raise PredictlibError(
                f"{self!r} cannot be pickled: it was not loaded by predictlib.load (no place to load it from)"
            )
        return (_restore, (locator, pin, threads, batch_threads))

    @property
    def sha256(self) -> str | None:
        """The sha256 of the artifact's manifest.json file, which seals its graphs: give it
        to :func:`load` (``sha256=``) to load exactly this artifact again (release records
        list it as ``manifest_sha256``). None for a Model made from an Artifact directly."""
        return self._load_args[1]

    def refusal_reasons(self) -> dict[str, tuple[str, ...]]:
        """Why the model may refuse a value, by column: the reasons of the manifest's
        refusal checks (``outputs.refusals.checks``), each once per column (several steps
        may check the same thing), only those that can apply to the column's kind:

        * categorical column of a model fed category ids: the reasons some category
          (any text of the vocabulary, an unseen text, a missing value) triggers, found
          by running the graph on each of them;
        * datetime column: none about infinite numbers (a datetime is a finite int64);
        * numeric and computed columns: every reason of their checks.

        Input columns come first, in the manifest's order, then computed columns."""
        reasons: dict[str, list[str]] = {c: [] for c in self._adapter.columns}
        for check in self._checks:
            found = reasons.setdefault(check["column"], [])
            if check["reason"] not in found:
                found.append(check["reason"])
        for column in self._adapter.datetime:
            reasons[column] = [r for r in reasons[column] if "infinit" not in r]
        possible = self._category_reasons()
        if possible is not None:
            for column in self._adapter.categorical:
                reasons[column] = [r for r in reasons[column] if r in possible[column]]
        return {column: tuple(found) for column, found in reasons.items()}

    #: the most rows :meth:`refusal_reasons` runs to find what categories trigger
    _REASON_ROWS = 1_000_000

    def _category_reasons(self) -> dict[str, set[str]] | None:
        """Per categorical column, the reasons of the checks some id fires (each id of the
        vocabulary, the unseen one), or None when the model takes texts or the vocabulary
        is too large to run whole."""
        ids, adapter = self._adapter.ids, self._adapter
        if ids is None or not adapter.categorical:
            return None
        values = np.arange(ids.unseen + 1, dtype=np.int64)
        width = len(adapter.categorical)
        if values.size * width > self._REASON_ROWS:
            return None
        rows = values.size * width
        cat = np.full((rows, width), ids.missing, dtype=np.int64)
        for j in range(width):
            cat[j * values.size : (j + 1) * values.size, j] = values
        num = np.zeros((rows, len(adapter.numeric)))
        dt = np.zeros((rows, len(adapter.datetime)), dtype=np.int64)
        flags = self._session_run(num, cat, dt)[1]
        possible: dict[str, set[str]] = {c: set() for c in adapter.categorical}
        if flags is not None:
            for k in np.nonzero(flags.any(axis=0))[0].tolist():
                check = self._checks[k]
                column = check["column"]
                if column in possible:
                    j = adapter.categorical.index(column)
                    if flags[j * values.size : (j + 1) * values.size, k].any():
                        possible[column].add(check["reason"])
        return possible

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
        if type(data) is dict and self._lean_one is not None:
            # the per-request call, a plain record: read by the model's compiled reader
            answer = self._lean_one(data)
            if answer is not NO_ANSWER:
                return answer
        elif type(data) is dict and self._regression:
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
        kind = kind_of(data)
        data = kind.prepare(self._adapter, data)
        rows = kind.rows(data)
        if rows <= ADAPT_CHUNK:
            return self._predict_rows(data)
        parts = []
        for a in range(0, rows, ADAPT_CHUNK):
            found = self._predict_rows(kind.slice(data, a, a + ADAPT_CHUNK))
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

    def _run(self, data: Any) -> tuple[list[np.ndarray] | None, bool]:
        if type(data) in (list, tuple) and data and self._lean is not None:
            # a list of plain records: read by the model's compiled reader
            found = self._run_records(data)
            if found is not None:
                return found, False
        kind = kind_of(data)  # the input's kind (_kinds.py): how it is sliced and read
        data = kind.prepare(self._adapter, data)
        rows = kind.rows(data)
        if rows > ADAPT_CHUNK:
            return self._run_by_chunks(kind, data, rows), False
        prepared = self._adapt(data)
        num, cat, dt = prepared.num, prepared.cat, prepared.dt
        if prepared.problems:
            self._refuse_with(prepared.problems, num, cat, dt, prepared.value_at, prepared.single)
        if num.shape[0] == 0:
            return None, prepared.single
        try:
            results, flags = self._session_run(num, cat, dt)
        except UnicodeEncodeError:
            self._refuse_with([], num, cat, dt, prepared.value_at, prepared.single)
        if flags is not None:
            rows_run = np.arange(num.shape[0])
            raise InputError(self._refusal_problems(flags, rows_run, prepared.value_at, prepared.single))
        return results, prepared.single

    def _run_records(self, records: list[Any] | tuple[Any, ...]) -> list[np.ndarray] | None:
        """The outputs of a list of records read by the lean graph's compiled reader, by
        chunks of :data:`RUN_CHUNK` rows (each run on the pool while the next is read);
        None when a record is not plain or a row is refused: the checked path then reads
        the whole list and names every problem, as it does for any input."""
        lean = self._lean
        assert lean is not None
        n = len(records)
        pool = None
        if self.batch_threads > 1 and n > RUN_CHUNK and not getattr(_ON_POOL, "active", False):
            pool = _pool(self.batch_threads)
        pending: list[Any] = []
        for a in range(0, n, RUN_CHUNK):
            feeds = lean.read_records(records, a, min(n, a + RUN_CHUNK))
            if feeds is None:
                if pool is not None:
                    for future in pending:
                        future.cancel()
                return None
            pending.append(lean.run_x(feeds) if pool is None else pool.submit(lean.run_x, feeds))
        parts: list[tuple[list[np.ndarray], np.ndarray | None]] = (
            pending if pool is None else [future.result() for future in pending]
        )
        if any(refused is not None for _, refused in parts):
            return None
        return _joined([p[0] for p in parts])

    def _run_by_chunks(self, kind: InputKind, data: Any, rows: int) -> list[np.ndarray]:
        """A large input (DataFrame, arrow table, column mapping), adapted and run by
        slices of :data:`ADAPT_CHUNK` rows (on ``batch_threads`` threads), so the whole
        batch is never copied at once. Raises one :class:`InputError` naming the problems
        of every slice."""
        starts = range(0, rows, ADAPT_CHUNK)

        def part(a: int) -> Any:
            return kind.slice(data, a, a + ADAPT_CHUNK)

        def run(a: int) -> tuple[list[np.ndarray], list[Problem]]:
            try:
                results, _ = self._run(part(a))
            except InputError as exc:
                return [], [
                    dataclasses.replace(p, row=None if p.row is None else p.row + a) for p in exc.problems
                ]
            assert results is not None
            return results, []

        parts = _map(self.batch_threads, run, starts)
        problems = [p for _, found in parts for p in found]
        if problems:
            raise InputError(problems)
        return _joined([p[0] for p in parts])

    def _session_run(
        self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The main outputs, and the refusal flags when a row is refused (None otherwise).
        Batches over :data:`RUN_CHUNK` rows run by chunks, on ``batch_threads`` threads
        (in place when called on a pool thread: see :func:`_map`)."""
        n = num.shape[0]
        if n <= RUN_CHUNK:
            return self._run_chunk(num, cat, dt)
        starts = range(0, n, RUN_CHUNK)

        def chunk(a: int) -> tuple[list[np.ndarray], np.ndarray | None]:
            return self._run_chunk(num[a : a + RUN_CHUNK], cat[a : a + RUN_CHUNK], dt[a : a + RUN_CHUNK])

        parts = _map(self.batch_threads, chunk, starts)
        results = _joined([p[0] for p in parts])
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
        if self._lean is not None:
            return self._lean.run(num, cat, dt)
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

    def _adapt(self, data: Any, adapter: InputAdapter | None = None) -> _Prepared:
        """The caller's input adapted (see :class:`_Prepared`). ``adapter``: another
        adapter of the same columns (predictlib._drift's gives texts)."""
        adapter = self._adapter if adapter is None else adapter
        adapted, single = kind_of(data).adapt(adapter, data)
        return _Prepared(*adapted, single)


def _joined(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The outputs of consecutive chunks (or slices), joined row-wise output by output."""
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]


def _unencodable(cat: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) of the cells holding text that is not valid Unicode."""
    return [(i, j) for (i, j), value in np.ndenumerate(cat) if not encodable(value)]


def _derived(column: str) -> str:
    return f"<computed column '{column}'>"


# --------------------------------------------------------------- module-level API

_CACHE: dict[str, Model] = {}
_CACHE_LOCK = threading.Lock()
#: Models unpickled in this process, by how they were pickled: a pool worker loads a
#: model once, not once per task
_RESTORED: dict[tuple[Any, ...], Model] = {}
_RESTORED_LOCK = threading.Lock()


def load(
    model: str | os.PathLike[str],
    *,
    threads: int = 1,
    session_options: ort.SessionOptions | None = None,
    batch_threads: int | None = None,
    sha256: str | None = None,
) -> Model:
    """Load a model: an installed model's name, an artifact folder or a model wheel file.

    ``threads``: onnxruntime's threads inside one run (1 is fastest for one record);
    ``batch_threads``: how many chunks of a large batch (over :data:`RUN_CHUNK` rows)
    run at once (None: one per CPU core); both at most :data:`MAX_THREADS`.
    ``sha256`` pins the artifact: the sha256 of its ``manifest.json`` file (which seals
    the graphs' sha256; :attr:`Model.sha256`, a release record's ``manifest_sha256``),
    or of the wheel file when ``model`` is one. Another artifact is refused
    (:class:`ArtifactError`)."""
    _threads("threads", threads)
    if batch_threads is not None:
        _threads("batch_threads", batch_threads)
    return Model(
        read_artifact(model, sha256=sha256),
        threads=threads,
        session_options=session_options,
        batch_threads=batch_threads,
    )


def _restore(locator: str, sha256: str, threads: int, batch_threads: int | None) -> Model:
    """A pickled Model: loaded again (once per process) and checked to be the same artifact."""
    key = (locator, sha256, threads, batch_threads)
    model = _RESTORED.get(key)
    if model is None:
        with _RESTORED_LOCK:
            model = _RESTORED.get(key)
            if model is None:
                model = _RESTORED[key] = load(
                    locator, threads=threads, batch_threads=batch_threads, sha256=sha256
                )
    return model


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
