"""Property tests: the selector converters against feature-engine's selectors."""

from __future__ import annotations

from converter_harness import converter_settings, covers, fit_and_check, frames, subsets
from feature_engine.selection import DropFeatures
from hypothesis import given
from hypothesis import strategies as st


@covers(DropFeatures)
@converter_settings(max_examples=40)
@given(data=st.data(), as_string=st.booleans())
def test_drop_features(data: st.DataObject, as_string: bool) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(1, 3)))
    names = list(f.fit.columns)
    if as_string:
        to_drop: str | list[str] = data.draw(st.sampled_from(names))
    else:
        # at least one column must stay: feature-engine refuses to drop them all
        to_drop = data.draw(subsets(names, max_size=len(names) - 1))
    fit_and_check(DropFeatures(features_to_drop=to_drop), f.fit, f.transform)
