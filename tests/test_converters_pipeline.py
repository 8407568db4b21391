"""Property test: pipelines mixing the frame converters (block bookkeeping across steps:
encoded columns changing kind in place, indicator columns appended, columns dropped,
inputs given in another order than at fit)."""

from __future__ import annotations

import math

import pandas as pd
from converter_harness import (
    check_equivalent,
    converter_settings,
    covers,
    fit_or_reject,
    frames,
    positive_numbers,
    quietly,
    subsets,
    targets,
)
from feature_engine.encoding import OrdinalEncoder, RareLabelEncoder
from feature_engine.imputation import (
    AddMissingIndicator,
    ArbitraryNumberImputer,
    CategoricalImputer,
    EndTailImputer,
    MeanMedianImputer,
)
from feature_engine.selection import DropFeatures
from feature_engine.transformation import LogTransformer
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from predictlib.build import infer_columns


@covers(
    AddMissingIndicator,
    MeanMedianImputer,
    ArbitraryNumberImputer,
    EndTailImputer,
    CategoricalImputer,
    LogTransformer,
    RareLabelEncoder,
    OrdinalEncoder,
    DropFeatures,
)
@converter_settings(max_examples=60)
@given(data=st.data(), missing_values=st.sampled_from(["raise", "ignore"]))
def test_mixed_pipeline(data: st.DataObject, missing_values: str) -> None:
    f = data.draw(
        frames(
            numeric=(1, 3),
            categorical=(1, 3),
            fit_numbers=positive_numbers(),
            fit_integers=st.integers(1, 1000),
            fit_missing="some",
            # with missing_values="ignore", missing values reach RareLabelEncoder, which
            # misbehaves on object columns (see test_converters_encoding.py)
            cat_dtypes=("str",) if missing_values == "ignore" else ("str", "object"),
        )
    )
    numeric, categorical = f.numeric, f.categorical
    imputer = data.draw(
        st.sampled_from(
            [
                MeanMedianImputer(imputation_method="median"),
                ArbitraryNumberImputer(arbitrary_number=7.5),
                EndTailImputer(imputation_method="max", fold=2),
            ]
        )
    )
    imputer.set_params(variables=data.draw(subsets(numeric)))
    steps: list[tuple[str, object]] = [
        ("impute_num", imputer),
        (
            "impute_cat",
            CategoricalImputer(
                fill_value=data.draw(st.sampled_from(["Missing", "a"])),
                # with missing_values="raise" the encoders need every categorical column imputed
                variables=None if missing_values == "raise" else data.draw(subsets(categorical)),
            ),
        ),
        ("log", LogTransformer(variables=data.draw(subsets(numeric)))),
        (
            "rare",
            RareLabelEncoder(
                tol=data.draw(st.sampled_from([0.05, 0.2, 0.4])),
                n_categories=data.draw(st.sampled_from([0, 2, 10])),
                missing_values=missing_values,
            ),
        ),
    ]
    if data.draw(st.booleans()):
        encoder = OrdinalEncoder(
            encoding_method=data.draw(st.sampled_from(["ordered", "arbitrary"])),
            unseen=data.draw(st.sampled_from(["ignore", "raise", "encode"])),
            missing_values=missing_values,
        )
        steps.append(("ordinal", encoder))
    # indicators of the raw inputs, or of the encoded columns (NaN for unseen="ignore")
    indicator = ("indicator", AddMissingIndicator(missing_only=data.draw(st.booleans())))
    steps.insert(data.draw(st.sampled_from([0, len(steps)])), indicator)
    y = data.draw(targets(f.fit.index))
    # DropFeatures last, on any column of the frame before it (indicators included)
    names = list(fit_or_reject(Pipeline(steps), f.fit, y).get_feature_names_out())
    steps.append(("drop", DropFeatures(features_to_drop=data.draw(subsets(names, max_size=len(names) - 1)))))
    pipe = fit_or_reject(Pipeline(steps), f.fit, y)

    # the graph's inputs and the rows to transform in other orders than at fit
    columns = data.draw(st.permutations(infer_columns(f.fit)))
    transform = f.transform[data.draw(st.permutations(list(f.transform.columns)))]
    check_equivalent(pipe, f.fit, transform, y, columns=columns)


def test_pipeline_keeps_column_order_across_kinds() -> None:
    """An encoded column becomes numeric where it was; indicators come after; a drop
    removes columns from both kinds."""
    fit = pd.DataFrame(
        {
            "c1": pd.Series(["a", "b", "a", None, "a", "b"], dtype="str"),
            "n0": [1.0, math.nan, 3.0, 4.0, 5.0, 6.0],
            "c0": pd.Series(["x y", "x y", "ü", "ü", None, "x y"], dtype=object),
            "n1": [10, 20, 30, 40, 50, 60],
        }
    )
    pipe = Pipeline(
        [
            ("indicator", AddMissingIndicator()),
            ("impute_num", MeanMedianImputer()),
            ("impute_cat", CategoricalImputer(variables=["c0"])),
            ("encode", OrdinalEncoder(encoding_method="arbitrary", variables=["c0"], unseen="encode")),
            ("drop", DropFeatures(features_to_drop=["n1", "c1_na"])),
        ]
    )
    quietly(lambda: pipe.fit(fit))
    transform = fit.iloc[::-1].reset_index(drop=True)[["n1", "c0", "n0", "c1"]]
    outcome = check_equivalent(pipe, fit, transform)
    assert outcome.exported.output_columns == {"num_out": ["n0", "c0", "n0_na", "c0_na"], "cat_out": ["c1"]}
    assert outcome.refused == 0
