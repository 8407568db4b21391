"""Running the lean graph (the manifest's ``lean``; ``predictlib.build.passes.lean``).

The lean graph takes one float64 ``x`` (the numeric columns, then the category ids)
and, instead of one refusal flag per check, one test: a column that is NaN on a
refused row (``kind`` ``"nan"``), or a few boolean flags (``"flags"``). Which checks
fired, for the error message, is recomputed for the refused rows only, by
``model.onnx`` (the graph every language runs, whose ``refusals`` output has one
column per check of ``outputs.refusals.checks``). Its session is made the first time a
row is refused (a few milliseconds, once), never for models that are only given
accepted rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from ._errors import ArtifactError
from ._inputs import NAT, InputAdapter
from ._reader import RecordReader

#: a fast call that did not give an answer (the record takes the checked path)
NO_ANSWER: Any = object()

_UNSEEN = "__predictlib_unseen__"


def unseen_text(vocabulary: Sequence[str]) -> str:
    """A text outside ``vocabulary`` (every such text gives the same outputs)."""
    text = _UNSEEN
    known = set(vocabulary)
    while text in known:
        text += "_"
    return text


class LeanGraph:
    """The lean graph's session and what reads it; thread-safe."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        session: ort.InferenceSession,
        model_onnx: bytes,
        session_options: ort.SessionOptions,
        main: Sequence[str],
        checks: int,
        reader: RecordReader,
        source: str,
    ) -> None:
        self._numeric = int(spec["numeric"])
        self._input = str(spec["input"])
        signal = spec.get("refused")
        self._main = list(main)
        if signal is None:
            self._kind, self._column, names = None, 0, list(main)
        elif signal.get("kind") == "nan" and signal.get("output") in main:
            self._kind, self._column, names = "packed", int(signal["column"]), list(main)
        elif signal.get("kind") in ("nan", "flags"):
            self._kind, self._column, names = (
                signal["kind"],
                int(signal.get("column", 0)),
                [*main, signal["output"]],
            )
        else:
            raise ArtifactError(f"{source}: the manifest's lean.refused is malformed")
        if (self._kind is None) != (checks == 0):
            raise ArtifactError(f"{source}: the manifest's lean.refused does not match outputs.refusals")
        self._packed_at = (
            main.index(signal["output"]) if signal is not None and self._kind == "packed" else -1
        )
        #: the outputs asked of the lean graph: the main ones, then the refusal test's own
        self.names = names
        self._session = session
        self._run = getattr(session, "_sess", session).run
        self._run_options = ort.RunOptions()
        self._model_onnx = model_onnx
        self._options = session_options
        self._explainer: Callable[..., Any] | None = None
        self._lock = threading.Lock()
        vocabulary = list(spec["vocabulary"])
        self._texts = np.array([*vocabulary, unseen_text(vocabulary)], dtype=object)
        self._missing_id = (
            float(vocabulary.index(reader.missing_text)) if reader.missing_text in vocabulary else 0.0
        )
        self._checks = checks
        self.reader = reader
        self.inputs = {self._input} | ({"dt"} if reader.datetime else set())

    @classmethod
    def of(
        cls,
        spec: Mapping[str, Any],
        session: ort.InferenceSession,
        model_onnx: bytes,
        adapter: InputAdapter,
        main: Sequence[str],
        checks: int,
        source: str,
    ) -> LeanGraph:
        """The lean graph of a loaded model, its manifest section checked against the
        model's columns (an :class:`ArtifactError` otherwise)."""
        columns = [*adapter.numeric, *adapter.categorical]
        try:
            vocabulary = list(spec["vocabulary"])
            consistent = (
                list(spec["columns"]) == columns
                and spec["numeric"] == len(adapter.numeric)
                and isinstance(spec["input"], str)
                and all(isinstance(t, str) for t in vocabulary)
            )
        except (KeyError, TypeError):
            consistent = False
        if not consistent:
            raise ArtifactError(f"{source}: the manifest's lean section does not match its inputs")
        reader = RecordReader(adapter.numeric, adapter.categorical, vocabulary, adapter.missing, adapter)
        return cls(spec, session, model_onnx, session.get_session_options(), main, checks, reader, source)

    def check(self, source: str, classes: Sequence[Any]) -> None:
        """The lean graph against its manifest before the first call: its inputs, and its
        outputs' shapes on one row of missing values."""
        width = self.reader.width
        moments = len(self.reader.datetime)
        expected = {self._input: ("tensor(double)", width), "dt": ("tensor(int64)", moments)}
        for spec in self._session.get_inputs():
            kind, columns = expected.get(spec.name, ("?", -1))
            shape = list(spec.shape)
            if spec.type != kind or len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != columns):
                raise ArtifactError(
                    f"{source}: the lean graph's input '{spec.name}' is {spec.type} {shape}, the manifest's "
                    f"columns make {kind} [N, {columns}]"
                )
        x = np.full((1, width), np.nan)
        x[:, self._numeric :] = self._missing_id
        feeds = {self._input: x, "dt": np.full((1, moments), NAT, dtype=np.int64)}
        try:
            results = self._run(self.names, {k: feeds[k] for k in self.inputs}, self._run_options)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ArtifactError(
                f"{source}: the lean graph does not run on the manifest's columns ({exc})"
            ) from None
        widths = {name: 1 for name in self._main}
        if classes:
            widths[self._main[1]] = len(classes)
        if self._kind == "packed":
            widths[self.names[self._packed_at]] += 1
        for name, result in zip(self.names, results, strict=True):
            if result.shape[0] != 1 or (name in widths and result.size != widths[name]):
                raise ArtifactError(
                    f"{source}: the lean graph's output '{name}' has shape {list(result.shape)} for one "
                    "row, which its manifest does not describe"
                )

    # ------------------------------------------------------------------ batches
    def feeds(self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray) -> dict[str, np.ndarray]:
        """The lean graph's inputs from the adapter's arrays (``cat`` holds ids)."""
        x = np.empty((num.shape[0], num.shape[1] + cat.shape[1]), dtype=np.float64)
        x[:, : num.shape[1]] = num
        x[:, num.shape[1] :] = cat
        feeds = {self._input: x}
        if "dt" in self.inputs:
            feeds["dt"] = dt
        return feeds

    def run(
        self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The main outputs, and ``model.onnx``'s refusal flags ``[N, n_checks]`` when a
        row is refused (None otherwise): ``Model._run_chunk``'s contract."""
        results: list[np.ndarray] = self._run(self.names, self.feeds(num, cat, dt), self._run_options)
        refused = self._refused(results)
        if refused is None:
            return results, None
        return results, self.explain(num, cat, dt, refused)

    def _refused(self, results: list[np.ndarray]) -> np.ndarray | None:
        """The rows refused (a bool mask), None when none is; strips the test from
        ``results`` (in place)."""
        if self._kind is None:
            return None
        if self._kind == "packed":
            packed = results[self._packed_at]
            test = packed[:, self._column]
            results[self._packed_at] = np.delete(packed, self._column, axis=1)
            bad = ~np.isfinite(test)
        elif self._kind == "nan":
            bad = ~np.isfinite(results.pop()[:, self._column])
        else:
            flags = results.pop()
            bad = flags.reshape(flags.shape[0], -1).any(axis=1)
        return bad if bad.any() else None

    def explain(self, num: np.ndarray, cat: np.ndarray, dt: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``model.onnx``'s refusal flags for ``rows`` (a bool mask), all-False elsewhere."""
        flags = np.zeros((num.shape[0], self._checks), dtype=bool)
        picked = np.flatnonzero(rows)
        feeds = {"num": num[picked], "cat": self._texts[cat[picked]], "dt": dt[picked]}
        found = self._explain(feeds)
        flags[picked] = found
        if not found.any(axis=1).all():
            raise ArtifactError(
                "the lean graph refused a row model.onnx accepts: the artifact is inconsistent "
                "(rebuild it, or report it)"
            )
        return flags

    def _explain(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        explainer = self._explainer
        if explainer is None:
            with self._lock:
                if self._explainer is None:
                    session = ort.InferenceSession(
                        self._model_onnx, sess_options=self._options, providers=["CPUExecutionProvider"]
                    )
                    inputs = {i.name for i in session.get_inputs()}
                    run = session.run
                    self._explainer = lambda f: run(["refusals"], {k: v for k, v in f.items() if k in inputs})
                explainer = self._explainer
        assert explainer is not None
        flags: np.ndarray = explainer(feeds)[0]
        return flags

    # ------------------------------------------------------------------ one record
    def compile_one(self, regression: bool) -> Callable[[Mapping[str, Any]], Any]:
        """record -> the answer (a float, or a label), or :data:`NO_ANSWER` when the
        record takes the checked path (not plain, or refused: the checked path names the
        problems). One closure over the reader and the session (the per-request call)."""
        read, run, names, options, name = (
            self.reader.read,
            self._run,
            self.names,
            self._run_options,
            self._input,
        )
        kind, column, at = self._kind, self._column, max(self._packed_at, 0)

        def one(record: Mapping[str, Any]) -> Any:
            got = read(record)
            if got is None:
                return NO_ANSWER
            x, dt = got
            results = run(names, {name: x} if dt is None else {name: x, "dt": dt}, options)
            if kind == "packed":
                test = results[at].item(column)
                if test - test != 0.0:  # NaN or an infinity: refused
                    return NO_ANSWER
            elif kind == "nan":
                test = results[-1].item(column)
                if test - test != 0.0:
                    return NO_ANSWER
            elif kind == "flags" and 1 in results[-1].tobytes():
                return NO_ANSWER
            if regression:
                return results[0].item(0)
            label = results[0][0]
            return label.item() if isinstance(label, np.generic) else label

        return one
