"""The converter coverage table, docs/converters.md.

``python -m predictlib.build.coverage`` (from the repository root, with the dev dependencies)
writes it from the registries: the frame converters (:func:`conversion.registered_frame_converters`:
class, family, ``supports``, ``onnx_ops``), the float64 estimator converters
(:func:`predictlib.build.converters.sklearn.estimators.registered_estimators`), the feature-engine classes that
cannot be exported (:mod:`predictlib.build.core.refused`, with the reasons), and the tests
covering each: the property tests marked ``@covers(...)`` (``tests/converter_harness.COVERAGE``,
filled by importing the test modules) and, for estimators, the tests that name the class.
``--check`` exits with status 1 when the file is out of date (tests/test_coverage_table.py
runs the same comparison).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.base import BaseEstimator, is_classifier

from .converters.boosting import registered_boosting
from .converters.feature_engine.wrappers import SUPPORTS as FEATURE_ENGINE_META
from .converters.sklearn.compose import SUPPORTS as COMPOSITION_SUPPORTS
from .converters.sklearn.estimators import registered_estimators
from .converters.sklearn.preprocessing import NOT_PIPELINE_STEPS
from .core.frame import (
    frame_aware_classes,
    registered_frame_converters,
)
from .core.refused import has_converter, registered_not_convertible

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
DOC = ROOT / "docs" / "converters.md"

#: feature-engine's public modules, whose classes the table accounts for
FEATURE_ENGINE_MODULES = (
    "creation",
    "datetime",
    "discretisation",
    "encoding",
    "imputation",
    "outliers",
    "preprocessing",
    "scaling",
    "selection",
    "text",
    "timeseries.forecasting",
    "transformation",
    "wrappers",
    "_prediction",
)

#: scikit-learn's modules whose transformers the table accounts for, converted or refused
SKLEARN_MODULES = (
    "preprocessing",
    "impute",
    "feature_selection",
    "decomposition",
    "kernel_approximation",
    "random_projection",
)
#: what the meta-estimators' parsers support (feature-engine's wrappers, scikit-learn's compositions)
META_SUPPORTS = {**FEATURE_ENGINE_META, **COMPOSITION_SUPPORTS}

#: the test that refuses every not-convertible class (tests/test_unsupported.py)
NOT_CONVERTIBLE_TEST = "test_unsupported.test_not_convertible_step_is_refused"


@dataclass(frozen=True)
class Row:
    name: str
    family: str
    cells: tuple[str, ...]


def import_covering_modules(tests: Path = TESTS) -> list[str]:
    """Import the test modules that mark property tests with ``@covers`` (filling
    ``converter_harness.COVERAGE``); return their names."""
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    names = []
    for path in sorted(tests.glob("test_*.py")):
        if "@covers(" in path.read_text(encoding="utf-8"):
            importlib.import_module(path.stem)
            names.append(path.stem)
    return names


def property_tests() -> dict[type, list[str]]:
    """Class -> the ``@covers`` property tests ("module.function"), sorted, no duplicate."""
    import_covering_modules()
    harness = importlib.import_module("converter_harness")
    return {cls: sorted(set(tests)) for cls, tests in harness.COVERAGE.items()}


def tests_naming(tests: Path = TESTS) -> dict[str, set[str]]:
    """Identifier -> the test functions ("module.function") whose decorators or body name
    it, directly or through a module-level constant (a list of models to parametrize)."""
    found: dict[str, set[str]] = {}
    for path in sorted(tests.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants: dict[str, set[str]] = {}
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            value = getattr(node, "value", None)
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    constants[target.id] = _identifiers(value)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names = set().union(*(_identifiers(d) for d in node.decorator_list), _identifiers(node))
                for name in list(names):
                    names |= constants.get(name, set())
                for name in names:
                    found.setdefault(name, set()).add(f"{path.stem}.{node.name}")
    return found


def _identifiers(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
    return names


def feature_engine_classes() -> list[type]:
    """feature-engine's public estimator classes (its Pipeline aside)."""
    classes: dict[str, type] = {}
    for name in FEATURE_ENGINE_MODULES:
        module = importlib.import_module(f"feature_engine.{name}")
        for attr in getattr(module, "__all__", dir(module)):
            obj = getattr(module, attr, None)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                classes[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [classes[k] for k in sorted(classes)]


def sklearn_classes() -> list[type]:
    """The public estimator classes of :data:`SKLEARN_MODULES` (IterativeImputer included)."""
    importlib.import_module("sklearn.experimental.enable_iterative_imputer")
    classes: dict[str, type] = {}
    for name in SKLEARN_MODULES:
        module = importlib.import_module(f"sklearn.{name}")
        for attr in getattr(module, "__all__", dir(module)):
            obj = getattr(module, attr, None)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and obj is not BaseEstimator:
                classes[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [classes[k] for k in sorted(classes)]


def family(cls: type) -> str:
    """``feature_engine.creation.math_features`` -> ``creation``,
    ``sklearn.preprocessing._data`` -> ``preprocessing``."""
    parts = cls.__module__.split(".")
    if parts[0] in ("feature_engine", "sklearn") and len(parts) > 1:
        return parts[1].lstrip("_")
    return parts[0]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def _code_list(items: Sequence[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) or "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def library_frame_converters() -> dict[type, object]:
    """The frame converters predictlib.build defines (a model's or a user's own converters,
    registered when their module is imported, are not part of this table)."""
    return {
        cls: conv
        for cls, conv in registered_frame_converters().items()
        if type(conv).__module__.startswith("predictlib.build.")
    }


def render() -> str:
    """The text of docs/converters.md."""
    covered = property_tests()
    converters = library_frame_converters()
    rows = {
        cls: (
            family(cls),
            f"`{cls.__name__}`",
            f"`{type(conv).__module__}`",
            conv.supports,
            _code_list(sorted(conv.onnx_ops or ())),
            _code_list(covered.get(cls, [])),
        )
        for cls, conv in converters.items()
    }
    frame_rows = sorted(row for cls, row in rows.items() if cls.__module__.split(".")[0] != "sklearn")
    sklearn_rows = sorted(row for cls, row in rows.items() if cls.__module__.split(".")[0] == "sklearn")
    naming = tests_naming()
    boosting = registered_boosting()
    estimator_rows = sorted(
        (
            f"`{cls.__name__}`",
            "classifier" if is_classifier(cls()) else "regressor",
            _code_list(sorted(naming.get(cls.__name__, set()))),
        )
        for cls in registered_estimators()
    )
    meta_rows = sorted(
        (
            f"`{cls.__name__}`",
            cls.__module__.split(".")[0],
            META_SUPPORTS.get(cls, "-"),
            _code_list(sorted(set(covered.get(cls, [])) | naming.get(cls.__name__, set()))),
        )
        for cls in frame_aware_classes()
        if cls not in boosting
    )
    boosting_rows = sorted(
        (
            f"`{cls.__name__}`",
            entry.library,
            "classifier" if entry.classifier else "regressor",
            entry.supports,
            _code_list(sorted(set(covered.get(cls, [])) | naming.get(cls.__name__, set()))),
        )
        for cls, entry in boosting.items()
    )
    recorded = registered_not_convertible()
    refused_rows = sorted(
        (family(cls), f"`{cls.__name__}`", reason, f"`{NOT_CONVERTIBLE_TEST}`")
        for cls, reason in recorded.items()
    )
    missing = [cls for cls in feature_engine_classes() if not has_converter(cls) and cls not in recorded]
    not_steps = sorted(
        (
            family(cls),
            f"`{cls.__name__}`",
            reason,
            _code_list(sorted(naming.get("NOT_PIPELINE_STEPS", set()))),
        )
        for cls, reason in NOT_PIPELINE_STEPS.items()
    )
    sklearn_missing = [
        cls
        for cls in sklearn_classes()
        if cls not in converters and cls not in recorded and cls not in NOT_PIPELINE_STEPS
    ]
    lines = [
        "# Converter coverage",
        "",
        "<!-- generated by `python -m predictlib.build.coverage`: do not edit by hand -->",
        "",
        "Every class predictlib exports, what it supports, the ONNX operators its graph may use,",
        "and the tests that check the graph against the original (`module.function` under `tests/`).",
        "A parameter value outside *supported parameters* is refused at export time with an",
        "`ExportError` naming the step, the class and the reason; rows the original rejects",
        "are refused by the graph (its `refusals` output).",
        "",
        f"## feature-engine transformers ({len(frame_rows)})",
        "",
        "Property tests (hypothesis, `@covers`) compare the graph with `transform()` row by row.",
        "Gather, Concat and Identity are used by every step to move columns and are not listed.",
        "",
        *_table(
            ["family", "class", "converter", "supported parameters", "ONNX operators", "property tests"],
            frame_rows,
        ),
        "",
        f"## scikit-learn transformers ({len(sklearn_rows)})",
        "",
        "`conversion/converters/sklearn/*.py` (see docs/sklearn.md): every class of `sklearn.preprocessing`,",
        "`sklearn.impute` and `sklearn.feature_selection`, and the fixed maps of `sklearn.decomposition`,",
        "`sklearn.kernel_approximation` and `sklearn.random_projection`, on frames (text columns where the",
        "class takes them), in float64, pandas or numpy output; the rest is listed under *Not convertible*.",
        "",
        *_table(
            ["module", "class", "converter", "supported parameters", "ONNX operators", "property tests"],
            sklearn_rows,
        ),
        "",
        f"## scikit-learn estimators with float64 converters ({len(estimator_rows)})",
        "",
        "`conversion/converters/sklearn/estimators.py` (see docs/estimators.md). Linear models keep",
        "skl2onnx's own (float64) converters.",
        "",
        *_table(["class", "kind", "tests"], estimator_rows),
        "",
        f"## Boosting libraries ({len(boosting_rows)})",
        "",
        "`conversion/converters/lightgbm.py`, `xgboost.py`, `catboost.py` (see docs/estimators.md): each",
        "library's trees read from its own model dump, in the library's precision (LightGBM and CatBoost",
        "float64, XGBoost float32 bit for bit). Listed when the library is installed (a build-time dependency).",
        "",
        *_table(["class", "library", "kind", "supported parameters", "tests"], boosting_rows),
        "",
        f"## Meta-estimators and predictors ({len(meta_rows)})",
        "",
        "Converted by their own parsers (`conversion/converters/feature_engine/wrappers.py`,",
        "`conversion/converters/sklearn/compose.py`): their inner steps go through the converters above.",
        "",
        *_table(["class", "package", "supported parameters", "tests"], meta_rows),
        "",
        f"## Not convertible ({len(refused_rows)})",
        "",
        "Refused at export, whatever their parameters (`conversion/core/refused.py`).",
        "",
        *_table(["family", "class", "reason", "test"], refused_rows),
        "",
        f"## scikit-learn classes that are not pipeline steps ({len(not_steps)})",
        "",
        "They transform a target `y` (`fit(y)` / `transform(y)`): no Pipeline can hold them.",
        "",
        *_table(["module", "class", "reason", "test"], not_steps),
        "",
    ]
    if missing:
        lines += [
            f"## feature-engine classes without a converter ({len(missing)})",
            "",
            "Refused at export (no converter yet).",
            "",
            *_table(["family", "class"], [(family(c), f"`{c.__name__}`") for c in missing]),
            "",
        ]
    if sklearn_missing:
        lines += [
            f"## scikit-learn classes without a converter ({len(sklearn_missing)})",
            "",
            *_table(["module", "class"], [(family(c), f"`{c.__name__}`") for c in sklearn_missing]),
            "",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/converters.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python -m predictlib.build.coverage", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
