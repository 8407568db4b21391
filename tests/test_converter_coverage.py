"""Every registered frame converter has a property test (``@covers`` in converter_harness)."""

from __future__ import annotations

import importlib
from pathlib import Path

from converter_harness import COVERAGE, covers, uncovered

from predictlib.build import registered_frame_converters

TESTS = Path(__file__).resolve().parent


def _import_covering_modules() -> list[str]:
    """Import the test modules that use ``covers`` (pytest may have imported them already)."""
    names = []
    for path in sorted(TESTS.glob("test_*.py")):
        if path.name != Path(__file__).name and "@covers(" in path.read_text(encoding="utf-8"):
            importlib.import_module(path.stem)
            names.append(path.stem)
    return names


def test_every_frame_converter_has_a_property_test() -> None:
    modules = _import_covering_modules()
    assert {"test_converters_imputation", "test_converters_encoding"} <= set(modules)
    registered = [  # predictlib's own: a bundled model's custom converters are tested with the model
        cls
        for cls, conv in registered_frame_converters().items()
        if type(conv).__module__.startswith("predictlib.")
    ]
    assert registered, "no frame converter is registered"
    missing = uncovered(registered)
    assert not missing, f"frame converters without a @covers property test: {missing}"
    for cls in registered:
        for test in COVERAGE[cls]:
            module, _, name = test.rpartition(".")
            assert callable(getattr(importlib.import_module(module), name, None)), f"{test} is no test"


def test_uncovered_names_the_classes_without_a_test() -> None:
    class Covered:
        pass

    class NotCovered:
        pass

    coverage: dict[type, list[str]] = {}
    covers(Covered)(lambda: None)
    coverage[Covered] = COVERAGE.pop(Covered)
    assert uncovered([Covered, NotCovered], coverage) == [f"{__name__}.{NotCovered.__qualname__}"]


def test_every_estimator_converter_is_named_by_a_test() -> None:
    """The float64 estimator converters (conversion/converters/sklearn/estimators.py) have no ``@covers``
    registry: a test must at least name each class (docs/converters.md lists them)."""
    from predictlib.build.converters.sklearn.estimators import registered_estimators
    from predictlib.build.coverage import tests_naming

    naming = tests_naming(TESTS)
    missing = [cls.__name__ for cls in registered_estimators() if not naming.get(cls.__name__)]
    assert not missing, f"estimator converters that no test names: {missing}"
