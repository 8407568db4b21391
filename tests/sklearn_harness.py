"""Helpers of the scikit-learn converter property tests (tests/test_converters_sklearn_*.py).

Each test fits a scikit-learn transformer (or a composition) on a hypothesis-generated
frame, with pandas or numpy output (``set_output``), and checks the exported graph
against its ``transform`` with :func:`converter_harness.check_equivalent` (numpy outputs
are named by ``get_feature_names_out``).
"""

from __future__ import annotations

import math
from typing import Any

from converter_harness import check_equivalent, fit_or_reject, numbers
from hypothesis import strategies as st

from predictlib.build.testing import Outcome

#: finite values of every magnitude
FINITE = numbers(missing=False, infinite=False)
#: fit values of moderate magnitude (transformers whose fit is numerically fragile)
MODERATE = st.one_of(st.floats(-1e4, 1e4, allow_nan=False), st.integers(-20, 20).map(float))
#: ... with missing values
MODERATE_OR_NAN = st.one_of(MODERATE, st.just(math.nan))


def with_output(data: st.DataObject, model: Any) -> Any:
    """``model`` with pandas output or with scikit-learn's default (numpy) output."""
    if data.draw(st.booleans(), label="pandas output"):
        model.set_output(transform="pandas")
    return model


def check_fitted(data: st.DataObject, model: Any, fit: Any, transform: Any, y: Any = None) -> Outcome:
    """Fit ``model`` (the example is rejected when scikit-learn refuses the fit frame),
    with a drawn output container, and check its graph against ``transform``."""
    with_output(data, model)
    fit_or_reject(model, fit, y)
    return check_equivalent(model, fit, transform, y)
