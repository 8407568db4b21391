"""``model.monitor()``: counts over many calls, the same as ``model.drift`` over the same
rows; states serialised as JSON and merged across processes equal one process over
the same rows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import predictlib
from predictlib.build.project import Built
from predictlib.build.stages.verify import records_from_frame

CHILD = textwrap.dedent(
    """
    import sys
    import pandas as pd
    import predictlib
    from predictlib.build.stages.verify import records_from_frame

    folder, rows, start, stop, out = sys.argv[1:6]
    model = predictlib.load(folder)
    monitor = model.monitor()
    for record in records_from_frame(pd.read_parquet(rows).iloc[int(start):int(stop)]):
        try:
            monitor.predict(record)  # one record per call, as a web app would
        except predictlib.InputError:
            pass
    open(out, "w").write(monitor.to_json())
    """
)


def _rows(built: Built):
    """Training rows, then the same rows with one numeric column x3 (so the state is not
    the training histogram)."""
    X = built.trained.X_train
    moved = X.copy()
    number = built.manifest["inputs"]["numeric"][0]
    moved[number] = moved[number] * 3
    import pandas as pd

    return pd.concat([X, moved], ignore_index=True)


@pytest.mark.parametrize("name", ["house_dated", "penguins"])
def test_states_merged_from_two_processes_equal_one_process(
    name: str, built_models: dict[str, Built], tmp_path: Path
) -> None:
    built = built_models[name]
    rows = _rows(built)
    data = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), data)
    half = len(rows) // 2 + 17  # not a multiple of the flush size
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(built.folder),
                str(data),
                str(a),
                str(b),
                str(tmp_path / f"{k}.json"),
            ]
        )
        for k, (a, b) in enumerate([(0, half), (half, len(rows))])
    ]
    for child in children:
        assert child.wait(timeout=300) == 0
    model = predictlib.load(built.folder)
    states = [(tmp_path / f"{k}.json").read_text() for k in range(2)]
    merged = predictlib.Monitor.from_json(model, states[0]).merge(states[1])

    one = model.monitor()
    for record in records_from_frame(rows):
        one.predict(record)
    assert merged.to_json() == one.to_json()
    assert merged.rows == one.rows == len(rows)
    assert merged.report() == one.report()
    # and both are what drift() says about the same rows at once
    assert one.report() == model.drift(rows)
    state = json.loads(merged.to_json())
    assert state["format"] == "predictlib-monitor" and state["rows"] == len(rows)
    assert state["model"]["name"] == name


def test_monitor_paths_agree(built_models: dict[str, Built]) -> None:
    """predict per record, predict on batches, predict_proba and observe count the same."""
    built = built_models["penguins"]
    model = predictlib.load(built.folder)
    frame = _rows(built)
    records = records_from_frame(frame)
    by_record, by_batch, by_proba, observed = (model.monitor() for _ in range(4))
    for record in records:
        by_record.predict(record)
    for start in range(0, len(frame), 100):
        labels = by_batch.predict(frame.iloc[start : start + 100])
        assert list(labels) == list(model.predict(frame.iloc[start : start + 100]))
        by_proba.predict_proba(records[start : start + 100])
    observed.observe(frame)
    assert by_record.to_json() == by_batch.to_json() == by_proba.to_json() == observed.to_json()


def test_monitor_is_thread_safe(built_models: dict[str, Built]) -> None:
    built = built_models["house_prices"]
    model = predictlib.load(built.folder)
    records = records_from_frame(built.trained.X_train)
    shared = model.monitor()

    def work(part: list[dict]) -> None:
        for record in part:
            shared.predict(record)

    threads = [threading.Thread(target=work, args=(records[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = model.monitor()
    for record in records:
        alone.predict(record)
    assert shared.to_json() == alone.to_json()
    assert shared.report().status == "ok"


def test_refused_calls_are_counted_and_raised(built_models: dict[str, Built]) -> None:
    built = built_models["penguins"]
    model = predictlib.load(built.folder)
    monitor = model.monitor()
    record = records_from_frame(built.trained.X_train.iloc[:1])[0]
    number = built.manifest["inputs"]["numeric"][0]
    with pytest.raises(predictlib.InputError):
        monitor.predict({**record, number: "text"})
    with pytest.raises(predictlib.InputError):
        monitor.predict({k: v for k, v in record.items() if k != number})
    monitor.predict(record)
    report = monitor.report()
    assert report.rows == 3 and report.refused == 2
    assert report.column(number).invalid_share == pytest.approx(2 / 3)
    assert report.predictions.rows == 1


def test_states_merge_only_for_the_same_model(built_models: dict[str, Built]) -> None:
    penguins = predictlib.load(built_models["penguins"].folder)
    houses = predictlib.load(built_models["house_prices"].folder)
    with pytest.raises(predictlib.PredictlibError, match="states merge for the same model only"):
        penguins.monitor().merge(houses.monitor().to_json())
    with pytest.raises(predictlib.PredictlibError, match="not valid JSON"):
        penguins.monitor().merge("{")
    state = json.loads(penguins.monitor().to_json())
    state["columns"]["island"]["categories"] = [1]
    with pytest.raises(predictlib.PredictlibError, match="malformed"):
        penguins.monitor().merge(state)
    state = json.loads(penguins.monitor().to_json())
    state["rows"] = -1
    with pytest.raises(predictlib.PredictlibError, match="malformed"):
        penguins.monitor().merge(state)


def test_reset_and_empty_reports(built_models: dict[str, Built]) -> None:
    model = predictlib.load(built_models["penguins"].folder)
    monitor = model.monitor()
    empty = monitor.report()
    assert empty.rows == 0 and empty.status == "ok" and empty.predictions.psi is None
    monitor.observe(built_models["penguins"].trained.X_train)
    assert monitor.rows > 0
    monitor.reset()
    assert monitor.report() == empty
    assert "penguins" in repr(monitor)
