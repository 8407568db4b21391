"""Property tests: scikit-learn's fixed maps of decomposition, random projection and kernel
approximation (PCA, IncrementalPCA, TruncatedSVD, FastICA, FactorAnalysis, the random
projections, RBFSampler, SkewedChi2Sampler, AdditiveChi2Sampler, Nystroem) against
their ``transform``, and the refused iterative ones."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import converter_settings, covers, export_error, quietly
from hypothesis import given
from hypothesis import strategies as st
from sklearn.decomposition import (
    NMF,
    PCA,
    FactorAnalysis,
    FastICA,
    IncrementalPCA,
    KernelPCA,
    TruncatedSVD,
)
from sklearn.kernel_approximation import (
    AdditiveChi2Sampler,
    Nystroem,
    PolynomialCountSketch,
    RBFSampler,
    SkewedChi2Sampler,
)
from sklearn.pipeline import Pipeline
from sklearn.random_projection import GaussianRandomProjection, SparseRandomProjection
from sklearn_harness import check_fitted

from predictlib.build.core.refused import registered_not_convertible


def _frames(data: st.DataObject, seed: int, *, positive: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Continuous training data (a few columns) and rows around its scale: training rows,
    rescaled ones, zeros, NaN and infinities (refused)."""
    rng = np.random.default_rng(seed)
    cols = int(rng.integers(2, 5))
    values = rng.normal(size=(int(rng.integers(6, 30)), cols)) * rng.choice([1.0, 10.0, 0.1], size=cols)
    if positive:
        values = np.abs(values)
    fit = pd.DataFrame(values, columns=[f"n{j}" for j in range(cols)])
    rows = fit.sample(n=6, replace=True, random_state=seed % (1 << 30)).to_numpy(copy=True)
    rows *= (
        rng.choice([1.0, -1.0, 3.0, 1e3], size=rows.shape)
        if not positive
        else rng.choice([1.0, 3.0, 1e3], size=rows.shape)
    )
    odd = data.draw(
        st.lists(st.sampled_from([0.0, math.nan, math.inf, -math.inf, 1.0]), min_size=cols, max_size=cols),
        label="odd row",
    )
    transform = pd.DataFrame(np.vstack([rows, [odd]]), columns=fit.columns)
    return fit, transform


LINEAR = st.sampled_from(
    [
        lambda: PCA(n_components=2),
        lambda: PCA(n_components=1, whiten=True),
        lambda: PCA(whiten=True),
        lambda: PCA(n_components=0.9, svd_solver="full"),
        lambda: IncrementalPCA(n_components=2, whiten=True),
        lambda: TruncatedSVD(n_components=1, random_state=0),
        lambda: FastICA(n_components=2, random_state=0, max_iter=50),
        lambda: FastICA(whiten=False, random_state=0, max_iter=50),
        lambda: FactorAnalysis(n_components=2, random_state=0),
        lambda: GaussianRandomProjection(n_components=3, random_state=0),
        lambda: SparseRandomProjection(n_components=3, density=0.5, random_state=0),
    ]
)


@covers(
    PCA,
    IncrementalPCA,
    TruncatedSVD,
    FastICA,
    FactorAnalysis,
    GaussianRandomProjection,
    SparseRandomProjection,
)
@converter_settings(max_examples=40)
@given(data=st.data(), make=LINEAR, seed=st.integers(0, 2**32 - 1))
def test_linear_maps(data: st.DataObject, make: Any, seed: int) -> None:
    fit, transform = _frames(data, seed)
    check_fitted(data, make(), fit, transform)


KERNELS = st.sampled_from(
    [
        lambda: RBFSampler(gamma=0.5, n_components=5, random_state=0),
        lambda: SkewedChi2Sampler(skewedness=0.5, n_components=5, random_state=0),
        lambda: Nystroem(kernel="rbf", n_components=4, random_state=0),
        lambda: Nystroem(kernel="laplacian", gamma=0.3, n_components=4, random_state=0),
        lambda: Nystroem(kernel="linear", n_components=3, random_state=0),
        lambda: Nystroem(kernel="poly", degree=2, n_components=3, random_state=0),
        lambda: Nystroem(kernel="poly", gamma=1 / 3, degree=2, n_components=1, random_state=0),
        lambda: Nystroem(kernel="sigmoid", gamma=0.1, n_components=3, random_state=0),
    ]
)


@covers(RBFSampler, SkewedChi2Sampler, Nystroem)
@converter_settings(max_examples=40)
@given(data=st.data(), make=KERNELS, seed=st.integers(0, 2**32 - 1))
def test_kernel_maps(data: st.DataObject, make: Any, seed: int) -> None:
    fit, transform = _frames(data, seed)
    check_fitted(data, make(), fit, transform)


@covers(AdditiveChi2Sampler)
@converter_settings(max_examples=30)
@given(data=st.data(), steps=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_additive_chi2_sampler(data: st.DataObject, steps: int, seed: int) -> None:
    """Non-negative inputs (a negative value is refused), zeros kept at zero."""
    fit, transform = _frames(data, seed, positive=True)
    transform.iloc[0, 0] = 0.0
    transform.iloc[1, 0] = -1.0
    check_fitted(data, AdditiveChi2Sampler(sample_steps=steps), fit, transform)


@pytest.mark.parametrize("cls", [NMF, KernelPCA, PolynomialCountSketch])
def test_iterative_and_fft_maps_are_refused(cls: type) -> None:
    fit = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.25, 2.0, 8.0]})
    step = cls(n_components=1) if cls is not PolynomialCountSketch else cls(n_components=2)
    pipe = Pipeline([("map", step)])
    quietly(lambda: pipe.fit(fit))
    message = export_error(pipe, fit)
    assert message == f"step 'map' ({cls.__name__}) cannot be exported: {registered_not_convertible()[cls]}"
