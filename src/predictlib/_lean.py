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
from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort

from ._errors import ArtifactError
from ._inputs import NAT, InputAdapter
from ._reader import RecordReader, c_loop
from ._validate import message_fields

_DOUBLE, _STRING, _INT64, _BOOL = 11, 8, 7, 9  # ONNX TensorProto element types


def _value_info(data: bytes, start: int, end: int) -> tuple[str, tuple[int, list[int | None]]]:
    """A ValueInfoProto: its name, element type and dimensions (None: not fixed)."""
    name, kind, dims = "", 0, []
    for number, wire, a, b in message_fields(data, start, end):
        if number == 1 and wire == 2:
            name = data[a:b].decode("utf-8", "replace")
        elif number == 2 and wire == 2:  # TypeProto
            for n2, w2, a2, b2 in message_fields(data, a, b):
                if n2 == 1 and w2 == 2:  # tensor_type
                    for n3, w3, a3, b3 in message_fields(data, a2, b2):
                        if n3 == 1 and w3 == 0:
                            kind = a3
                        elif n3 == 2 and w3 == 2:  # shape
                            for n4, w4, a4, b4 in message_fields(data, a3, b3):
                                if n4 == 1 and w4 == 2:  # dim
                                    value = None
                                    for n5, w5, a5, _ in message_fields(data, a4, b4):
                                        if n5 == 1 and w5 == 0:
                                            value = a5
                                    dims.append(value)
    return name, (kind, dims)


def graph_interface(model: bytes) -> tuple[dict[str, tuple[int, list[int | None]]], ...]:
    """The inputs and outputs of a serialized ONNX model, read from its bytes without
    onnxruntime: name -> (element type, dimensions). Raises ValueError when malformed."""
    inputs: dict[str, tuple[int, list[int | None]]] = {}
    outputs: dict[str, tuple[int, list[int | None]]] = {}
    for number, wire, a, b in message_fields(model, 0, len(model)):
        if number == 7 and wire == 2:  # ModelProto.graph
            for n2, w2, a2, b2 in message_fields(model, a, b):
                if n2 in (11, 12) and w2 == 2:  # GraphProto.input, GraphProto.output
                    name, spec = _value_info(model, a2, b2)
                    (inputs if n2 == 11 else outputs)[name] = spec
    return inputs, outputs


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


class _Bound(NamedTuple):
    """One thread's inputs and outputs bound to the lean graph's session, for one record:
    a call writes the record into ``x`` / ``dt`` and runs ``run(binding, options)``."""

    x: np.ndarray
    #: int64 ``[1, n]`` for a model with datetime columns, else None
    dt: np.ndarray | None
    #: one buffer per output of :attr:`LeanGraph.names`, in place, of its one-row shape
    #: (an empty placeholder for a text output, read with ``texts``)
    outputs: list[np.ndarray]
    #: the buffer holding the refusal test (the flags, or the column NaN when refused)
    tested: np.ndarray
    run: Callable[..., Any]
    binding: Any
    options: ort.RunOptions
    #: the binding's outputs as onnxruntime made them (for a text output), else None
    texts: Callable[[], Any] | None


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
        reader = RecordReader(
            adapter.numeric, adapter.categorical, vocabulary, adapter.missing, adapter, c_loop()
        )
        return cls(spec, session, model_onnx, session.get_session_options(), main, checks, reader, source)

    def check(self, source: str, classes: Sequence[Any], label_type: str | None = None) -> None:
        """The lean graph and model.onnx against the manifest before the first call: the
        lean graph's inputs and outputs, and its outputs' shapes on one row of missing
        values; model.onnx's inputs and ``refusals`` width (read from the graph's bytes:
        its session is only made when a row is refused)."""
        width = self.reader.width
        moments = len(self.reader.datetime)
        expected = {self._input: ("tensor(double)", width), "dt": ("tensor(int64)", moments)}
        for spec in self._session.get_inputs():
            kind, columns = expected.get(spec.name, ("?", -1))
            shape = list(spec.shape)
            if spec.type != kind or len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != columns):
                raise ArtifactError(
                    f"{source}: the graph's input '{spec.name}' is {spec.type} {shape}, the manifest's "
                    f"columns make {kind} [N, {columns}]"
                )
        outputs = {o.name: o.type for o in self._session.get_outputs()}
        wanted = {name: "tensor(double)" for name in self.names}
        if classes:
            wanted[self._main[0]] = label_type or outputs.get(self._main[0], "?")
        if self._kind == "flags":
            wanted[self.names[-1]] = "tensor(bool)"
        for name, kind in wanted.items():
            if outputs.get(name) != kind:
                raise ArtifactError(
                    f"{source}: the graph has no {kind} output '{name}' (its outputs: {outputs}), "
                    "which the manifest describes"
                )
        x = np.full((1, width), np.nan)
        x[:, self._numeric :] = self._missing_id
        feeds = {self._input: x, "dt": np.full((1, moments), NAT, dtype=np.int64)}
        try:
            results = self._run(self.names, {k: feeds[k] for k in self.inputs}, self._run_options)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ArtifactError(
                f"{source}: the graph does not run on the manifest's columns ({exc})"
            ) from None
        #: each output's shape and dtype for one row (the bound buffers of :meth:`_bind`)
        self._one_row = [(r.shape, r.dtype) for r in results]
        widths = {name: 1 for name in self._main}
        if classes:
            widths[self._main[1]] = len(classes)
        if self._kind == "packed":
            widths[self.names[self._packed_at]] += 1
        for name, result in zip(self.names, results, strict=True):
            if result.shape[0] != 1 or (name in widths and result.size != widths[name]):
                raise ArtifactError(
                    f"{source}: the graph's output '{name}' has shape {list(result.shape)} for one row, "
                    "which its manifest does not describe"
                )
        self._check_reasons_graph(source)

    def _check_reasons_graph(self, source: str) -> None:
        """model.onnx names the refused rows' checks: its inputs must be the manifest's
        groups and its ``refusals`` one column per check."""
        try:
            inputs, outputs = graph_interface(self._model_onnx)
        except ValueError as exc:
            raise ArtifactError(f"{source}: model.onnx cannot be read ({exc})") from None
        reader = self.reader
        groups = {
            "num": (_DOUBLE, reader.width - len(reader.categorical)),
            "cat": (_STRING, len(reader.categorical)),
            "dt": (_INT64, len(reader.datetime)),
        }
        expected = {name: spec for name, spec in groups.items() if spec[1]}
        found = {name: (kind, dims[1] if len(dims) == 2 else None) for name, (kind, dims) in inputs.items()}
        if found != expected:
            raise ArtifactError(
                f"{source}: the graph's inputs in model.onnx {found} are not the manifest's column groups "
                f"{expected}"
            )
        if self._checks:
            kind, dims = outputs.get("refusals", (None, []))
            if kind != _BOOL or len(dims) != 2 or dims[1] != self._checks:
                raise ArtifactError(
                    f"{source}: the graph's output 'refusals' has shape {['N', *dims[1:]]} in model.onnx, "
                    f"the manifest describes {self._checks} checks"
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
        results, refused = self.run_x(self.feeds(num, cat, dt))
        if refused is None:
            return results, None
        return results, self.explain(num, cat, dt, refused)

    def run_x(self, feeds: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The main outputs of the lean graph's own inputs, and the rows refused (a bool
        mask; None when none is)."""
        results: list[np.ndarray] = self._run(self.names, feeds, self._run_options)
        return results, self._refused(results)

    def read_records(self, records: Sequence[Any], start: int, stop: int) -> dict[str, np.ndarray] | None:
        """The lean graph's inputs for ``records[start:stop]``, read by the compiled
        reader; None when a record is not a plain dict the reader takes (the checked
        path then reads the whole input and names every problem)."""
        x, dt = self.reader.buffers(stop - start)
        if not self.reader.fill_block(records[start:stop], x, dt):
            return None
        return {self._input: x} if dt is None else {self._input: x, "dt": dt}

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
    def _bind(self) -> _Bound:
        """One thread's buffers for one record (see :class:`_Bound`)."""
        binding = self._session.io_binding()
        x, dt = self.reader.buffers(1)
        binding.bind_cpu_input(self._input, x)
        if dt is not None:
            binding.bind_cpu_input("dt", dt)
        buffers = []
        for name, (shape, dtype) in zip(self.names, self._one_row, strict=True):
            if dtype.kind == "O":
                binding.bind_output(name)  # onnxruntime makes it on each call
                buffers.append(np.empty(0))
            else:
                buffer = np.empty(shape, dtype=dtype)
                binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(buffer))
                buffers.append(buffer)
        bound = binding._iobinding
        return _Bound(
            x,
            dt,
            buffers,
            buffers[self._packed_at] if self._kind == "packed" else buffers[-1],
            self._session._sess.run_with_iobinding,
            bound,
            self._run_options,
            None if buffers[0].size else bound.get_outputs,
        )

    def compile_one(self) -> Callable[[Mapping[str, Any]], Any]:
        """record -> the answer (a float, or a label), or :data:`NO_ANSWER` when the
        record takes the checked path (not plain, or refused: the checked path names the
        problems). One closure over the reader and, per thread, the inputs and outputs
        bound to the session once (the per-request call: no array is made per call)."""
        fill, bind, local = self.reader.fill, self._bind, threading.local()
        flags, tests, column = self._kind == "flags", self._kind in ("packed", "nan"), self._column

        def one(record: Mapping[str, Any]) -> Any:
            try:
                x, dt, outputs, tested, run, binding, options, texts = local.bound
            except AttributeError:
                x, dt, outputs, tested, run, binding, options, texts = local.bound = bind()
            if not fill(record, x, dt, 0):
                return NO_ANSWER
            run(binding, options)
            if tests:
                test = tested.item(column)
                if test - test != 0.0:  # NaN or an infinity: refused
                    return NO_ANSWER
            elif flags and 1 in tested.tobytes():
                return NO_ANSWER
            return outputs[0].item(0) if texts is None else texts()[0].numpy().item(0)

        return one
