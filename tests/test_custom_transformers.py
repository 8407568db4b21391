"""docs/custom-transformers.md: its examples run, in order, as one script; and what a
missing converter says at export."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

import predictlib
from predictlib.build import ExportError, export_pipeline, infer_columns

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-transformers.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def doc_namespace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every python block of the document, run in order in one module, in a temporary folder."""
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the document lost its examples"
    module = types.ModuleType("custom_transformers_doc")
    sys.modules[module.__name__] = module  # the classes pickle and print with a module
    folder = tmp_path_factory.mktemp("doc")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), module.__dict__)
    module.__dict__["folder"] = folder
    return module.__dict__


@pytest.mark.slow
def test_the_documented_pipeline_ships_and_predicts(doc_namespace: dict[str, object]) -> None:
    folder = doc_namespace["folder"]
    assert isinstance(folder, Path)
    wheel = folder / "dist" / "predictlib_custom_houses-1.0.0-py3-none-any.whl"
    assert wheel.is_file()
    model = predictlib.load(wheel)
    X = doc_namespace["X"]
    pipeline = doc_namespace["pipeline"]
    assert isinstance(X, pd.DataFrame)
    got = model.predict(X[240:])
    expected = pipeline.predict(X[240:])  # type: ignore[attr-defined]
    assert abs(got - expected).max() <= 1e-9 * abs(expected).max()
    result = doc_namespace["result"]
    assert result.equivalence["generated"]["rows"] == 10_000  # type: ignore[attr-defined]
    assert result.manifest["metrics"]["held_out"]["r2"] > 0.5  # type: ignore[attr-defined]


def test_each_converter_refuses_a_text_column(doc_namespace: dict[str, object]) -> None:
    sample = doc_namespace["sample"]
    zero = doc_namespace["ZeroBinariser"]
    assert isinstance(sample, pd.DataFrame) and isinstance(zero, type)
    step = Pipeline([("flag", zero(variables=["Street"]))]).fit(sample)
    with pytest.raises(ExportError, match=r"step 'flag' \(ZeroBinariser\).*\['Street'\] are not numeric"):
        export_pipeline(step, infer_columns(sample))


class Unconverted(TransformerMixin, BaseEstimator):
    def fit(self, X: pd.DataFrame, y: object = None) -> Unconverted:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(a=X["a"] * 2)


def test_a_step_without_converter_names_path_class_module_and_the_way_forward() -> None:
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]})
    inner = Pipeline([("double", Unconverted())])
    pipe = Pipeline([("outer", inner), ("ridge", Ridge())])
    with pytest.raises(ExportError) as info:
        export_pipeline(Pipeline([("outer", inner)]).fit(X), infer_columns(X))
    message = str(info.value)
    assert "step 'outer/double' (Unconverted)" in message
    assert f"no converter is registered for {__name__}.Unconverted" in message
    assert "docs/custom-transformers.md" in message
    assert "MissingShapeCalculator" not in message and "string" not in message
    # the same for a bare step, and inside a pipeline ending in an estimator
    with pytest.raises(ExportError, match="no converter is registered"):
        export_pipeline(Unconverted().fit(X), infer_columns(X))
    X_num = X[["a"]]
    with pytest.raises(ExportError, match="step 'outer/double'"):
        export_pipeline(pipe.fit(X_num, [1.0, 2.0, 3.0]), infer_columns(X_num))
