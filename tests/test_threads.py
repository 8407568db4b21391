"""Model.predict from many threads at once gives exactly the single-threaded results."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import predictlib
from predictlib.build.project import Built
from predictlib.build.stages.verify import generate_records

pytestmark = pytest.mark.slow

THREADS = 8
CALLS_PER_THREAD = 25_000


def test_eight_threads_mixed_calls_match_a_single_thread(house_prices: Built) -> None:
    model = predictlib.load(house_prices.folder)
    records = generate_records(house_prices.trained.X_train, house_prices.exported.columns, 400, seed=7)
    # every call: one record, or a batch of 2-9 records (refusals included)
    calls: list[Any] = []
    rng = np.random.default_rng(0)
    for i in range(CALLS_PER_THREAD):
        if i % 5 == 0:
            start = int(rng.integers(len(records) - 10))
            calls.append(records[start : start + int(rng.integers(2, 10))])
        else:
            calls.append(records[int(rng.integers(len(records)))])

    def outcome(call: Any) -> Any:
        try:
            result = model.predict(call)
        except predictlib.InputError as err:
            return ("refused", str(err))
        return ("ok", np.asarray(result).tobytes())

    expected = [outcome(c) for c in calls]
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            # each thread walks the calls from a different offset, so different calls overlap
            offset = k * (CALLS_PER_THREAD // THREADS)
            order = [(offset + i) % CALLS_PER_THREAD for i in range(CALLS_PER_THREAD)]
            got = [None] * CALLS_PER_THREAD
            for i in order:
                got[i] = outcome(calls[i])
            results[k] = got
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(THREADS))
    for k in range(THREADS):
        assert results[k] == expected, f"thread {k} disagrees"
    assert any(o[0] == "refused" for o in expected) and any(o[0] == "ok" for o in expected)
