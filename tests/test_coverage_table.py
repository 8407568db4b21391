"""docs/converters.md is generated from the registries (``python -m predictlib.build.coverage``)
and must be up to date; every feature-engine class is either converted or recorded as
not convertible. (That every frame converter has a property test is checked by
test_converter_coverage.py.)"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from predictlib.build import coverage


def test_docs_converters_md_is_up_to_date() -> None:
    expected = coverage.render()
    current = coverage.DOC.read_text(encoding="utf-8") if coverage.DOC.exists() else ""
    if current != expected:
        diff = "\n".join(
            list(
                difflib.unified_diff(
                    current.splitlines(),
                    expected.splitlines(),
                    "docs/converters.md",
                    "generated",
                    lineterm="",
                )
            )[:40]
        )
        pytest.fail(f"docs/converters.md is out of date: run `python -m predictlib.build.coverage`\n{diff}")


def test_every_feature_engine_class_is_converted_or_recorded() -> None:
    recorded = coverage.registered_not_convertible()
    classes = coverage.feature_engine_classes()
    assert len(classes) > 50, "feature-engine's classes were not found"
    missing = [c.__name__ for c in classes if not coverage.has_converter(c) and c not in recorded]
    assert not missing, (
        f"feature-engine classes with neither a converter nor a not_convertible() record: {missing}"
    )


def test_the_table_lists_every_converter_and_record() -> None:
    text = coverage.render()
    for cls, converter in coverage.library_frame_converters().items():
        assert f"| `{cls.__name__}` | `{type(converter).__module__}` |" in text
    for cls in coverage.registered_estimators():
        assert f"| `{cls.__name__}` |" in text
    for cls in coverage.frame_aware_classes():
        assert f"| `{cls.__name__}` |" in text
    for cls in coverage.registered_not_convertible():
        assert f"| `{cls.__name__}` |" in text and coverage.NOT_CONVERTIBLE_TEST in text


def test_check_mode_detects_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "docs" / "converters.md"
    monkeypatch.setattr(coverage, "DOC", doc)
    assert coverage.main(["--check"]) == 1  # missing
    assert coverage.main([]) == 0 and doc.exists()
    assert coverage.main(["--check"]) == 0
    doc.write_text(doc.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    assert coverage.main(["--check"]) == 1


def test_tests_naming_follows_module_constants(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "MODELS = [Alpha(), Beta()]\n"
        "@pytest.mark.parametrize('m', MODELS)\n"
        "def test_models(m):\n    pass\n"
        "def test_gamma():\n    check(module.Gamma)\n"
        "def helper():\n    Delta()\n",
        encoding="utf-8",
    )
    naming = coverage.tests_naming(tmp_path)
    assert naming["Alpha"] == naming["Beta"] == {"test_sample.test_models"}
    assert naming["Gamma"] == {"test_sample.test_gamma"}
    assert "Delta" not in naming
