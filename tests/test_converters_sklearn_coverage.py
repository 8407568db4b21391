"""Every scikit-learn transformer class of the modules predictlib accounts for
(``sklearn.preprocessing``, ``sklearn.impute``, ``sklearn.feature_selection``,
``sklearn.decomposition``, ``sklearn.kernel_approximation``, ``sklearn.random_projection``)
is converted, refused with its reason, or listed as no pipeline step; every converted
one has a property test (docs/converters.md lists them)."""

from __future__ import annotations

from converter_harness import COVERAGE, uncovered

from predictlib.build import coverage, registered_frame_converters
from predictlib.build.converters.sklearn.preprocessing import NOT_PIPELINE_STEPS
from predictlib.build.core.refused import registered_not_convertible


def test_every_sklearn_class_is_converted_refused_or_not_a_step() -> None:
    classes = coverage.sklearn_classes()
    assert len(classes) > 50, "scikit-learn's classes were not found"
    converted = registered_frame_converters()
    refused = registered_not_convertible()
    missing = [
        c.__name__ for c in classes if c not in converted and c not in refused and c not in NOT_PIPELINE_STEPS
    ]
    assert not missing, f"scikit-learn classes with no converter, no refusal and no reason: {missing}"
    for cls in refused:
        if cls.__module__.startswith("sklearn."):
            assert len(refused[cls]) > 40, cls


def test_every_sklearn_converter_has_a_property_test() -> None:
    coverage.import_covering_modules()
    sklearn_converted = [c for c in registered_frame_converters() if c.__module__.startswith("sklearn.")]
    assert len(sklearn_converted) >= 40
    assert not uncovered(sklearn_converted, COVERAGE), uncovered(sklearn_converted, COVERAGE)


def test_the_table_lists_every_sklearn_class() -> None:
    text = coverage.render()
    for cls in coverage.sklearn_classes():
        assert f"| `{cls.__name__}` |" in text, cls
    assert "scikit-learn classes without a converter" not in text
