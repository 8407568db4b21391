"""Converters for the fixed maps of ``sklearn.decomposition``, ``sklearn.random_projection``
and ``sklearn.kernel_approximation``; the iterative ones are refused.

* linear maps, in scikit-learn's order of operations: ``PCA`` / ``IncrementalPCA``
  (``X @ components_.T - mean_ @ components_.T``, then whitening), ``TruncatedSVD``,
  ``FastICA`` (``(X - mean_) @ components_.T``), ``FactorAnalysis``
  (``((X - mean_) @ Wpsi.T) @ cov_z``), ``GaussianRandomProjection``,
  ``SparseRandomProjection`` (``X @ components_.T``);
* trigonometric maps: ``RBFSampler`` (``cos(X @ W + b) * sqrt(2 / n)``),
  ``SkewedChi2Sampler`` (``log(X + c)`` first; a value <= -skewedness is refused),
  ``AdditiveChi2Sampler`` (``sqrt``, ``cos`` / ``sin`` of ``log``; negative values refused);
* ``Nystroem`` with the kernels rbf, laplacian, linear, polynomial and sigmoid
  (``pairwise_kernels`` against ``components_``, then ``@ normalization_.T``).

The constants scikit-learn derives from the fitted attributes at transform time
(``mean_ @ components_.T``, ``Wpsi``, ``cov_z``, the whitening scale) are computed at
export with the same numpy expressions. The products' sums run in onnxruntime's order,
not the BLAS one: a few units in the last place (docs/sklearn.md); a cosine of a very
large argument (inputs far beyond the training data's scale) depends on those last
places, in scikit-learn as in the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.decomposition import (
    NMF,
    PCA,
    DictionaryLearning,
    FactorAnalysis,
    FastICA,
    IncrementalPCA,
    KernelPCA,
    LatentDirichletAllocation,
    MiniBatchDictionaryLearning,
    MiniBatchNMF,
    MiniBatchSparsePCA,
    SparseCoder,
    SparsePCA,
    TruncatedSVD,
)
from sklearn.kernel_approximation import (
    AdditiveChi2Sampler,
    Nystroem,
    PolynomialCountSketch,
    RBFSampler,
    SkewedChi2Sampler,
)
from sklearn.random_projection import GaussianRandomProjection, SparseRandomProjection

from ...core.frame import NUM, Column, StepContext, register_converter
from ...core.maths import CHECK_OPS
from ...core.refused import not_convertible
from .base import SklearnConverter, clip, numeric_input, refuse, refuse_below


def _dense(matrix: Any) -> np.ndarray:
    """A fitted array (sparse or not) as a dense float64 array."""
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)


def project(ctx: StepContext, x: str, weights: np.ndarray) -> str:
    """``x @ weights`` (a constant ``[n_inputs, n_outputs]`` matrix)."""
    return ctx.node("MatMul", [x, ctx.const(np.ascontiguousarray(weights))])


LINEAR_OPS = CHECK_OPS | frozenset({"MatMul", "Sub", "Div"})


@dataclass(frozen=True)
class LinearMap:
    """A fixed linear map in scikit-learn's order of operations:
    ``(((x - centre) @ weights[0] @ weights[1] ...) - offset) / scale`` (None: not done)."""

    #: the ``[n_in, n_out]`` matrices, multiplied in order
    weights: tuple[np.ndarray, ...]
    #: ``[1, n_in]``, subtracted before the products
    centre: np.ndarray | None = None
    #: ``[1, n_out]``, subtracted after them
    offset: np.ndarray | None = None
    #: ``[1, n_out]``, the divisor last
    scale: np.ndarray | None = None


def apply_linear_map(ctx: StepContext, x: str, linear: LinearMap) -> str:
    """``linear`` applied to the rows of ``x``."""
    if linear.centre is not None:
        x = ctx.node("Sub", [x, ctx.const(linear.centre)])
    for weights in linear.weights:
        x = project(ctx, x, weights)
    if linear.offset is not None:
        x = ctx.node("Sub", [x, ctx.const(linear.offset)])
    if linear.scale is not None:
        x = ctx.node("Div", [x, ctx.const(linear.scale)])
    return x


class _Linear(SklearnConverter):
    """Transformers whose ``transform`` is a fixed :class:`LinearMap` of the fitted attributes."""

    onnx_ops = LINEAR_OPS

    def linear_map(self, model: Any) -> LinearMap:  # pragma: no cover
        raise NotImplementedError

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        return {NUM: apply_linear_map(ctx, numeric_input(ctx, inputs), self.linear_map(model))}


def _mean_row(model: Any) -> np.ndarray:
    """``mean_`` as a ``[1, n_in]`` row."""
    return _dense(model.mean_)[None, :]


@register_converter
class PCAConverter(_Linear):
    """``X @ components_.T - mean_ @ components_.T`` (centering after the projection,
    as ``_BasePCA._transform``), divided by ``sqrt(explained_variance_)`` (clipped at
    eps) when whitening."""

    transformer = PCA
    supports = "every solver and n_components (the fitted components_), whiten"

    def linear_map(self, model: Any) -> LinearMap:
        components = _dense(model.components_)
        scale = None
        if model.whiten:
            scale = np.sqrt(np.asarray(model.explained_variance_, dtype=np.float64))
            scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
            scale = scale[None, :]
        return LinearMap((components.T,), offset=_mean_row(model) @ components.T, scale=scale)


@register_converter
class IncrementalPCAConverter(PCAConverter):
    transformer = IncrementalPCA
    supports = "n_components, whiten, batch_size (the fitted components_; dense input)"


class _Projection(_Linear):
    """``X @ components_.T``."""

    def linear_map(self, model: Any) -> LinearMap:
        return LinearMap((_dense(model.components_).T,))


@register_converter
class TruncatedSVDConverter(_Projection):
    transformer = TruncatedSVD
    supports = "every algorithm and n_components (the fitted components_)"


@register_converter
class FastICAConverter(_Linear):
    """``(X - mean_) @ components_.T`` (``X`` itself when not whitening)."""

    transformer = FastICA
    supports = "algorithm, whiten, fun (the fitted unmixing components_)"

    def linear_map(self, model: Any) -> LinearMap:
        centre = _mean_row(model) if model.whiten else None
        return LinearMap((_dense(model.components_).T,), centre=centre)


@register_converter
class FactorAnalysisConverter(_Linear):
    """``((X - mean_) @ Wpsi.T) @ cov_z`` with ``Wpsi = components_ / noise_variance_``
    and ``cov_z = inv(I + Wpsi @ components_.T)``, computed as scikit-learn computes them."""

    transformer = FactorAnalysis
    supports = "n_components, svd_method, rotation (the fitted components_ and noise_variance_)"

    def linear_map(self, model: Any) -> LinearMap:
        components = _dense(model.components_)
        wpsi = components / model.noise_variance_
        cov_z = linalg.inv(np.eye(len(components)) + np.dot(wpsi, components.T))
        return LinearMap((wpsi.T, cov_z), centre=_mean_row(model))


@register_converter
class GaussianRandomProjectionConverter(_Projection):
    transformer = GaussianRandomProjection
    supports = "n_components, eps (the fitted components_)"


@register_converter
class SparseRandomProjectionConverter(GaussianRandomProjectionConverter):
    transformer = SparseRandomProjection
    supports = "n_components, density, dense_output (the fitted sparse components_, dense input)"


# ------------------------------------------------------------------ kernel approximation

TRIG_OPS = CHECK_OPS | frozenset({"MatMul", "Add", "Cos", "Mul"})


def _cosine_features(ctx: StepContext, model: Any, x: str, scale: float) -> str:
    """``cos(x @ random_weights_ + random_offset_) * scale``."""
    projection = project(ctx, x, np.asarray(model.random_weights_, dtype=np.float64))
    projection = ctx.node(
        "Add", [projection, ctx.const(np.asarray(model.random_offset_, dtype=np.float64)[None, :])]
    )
    return ctx.node("Mul", [ctx.node("Cos", [projection]), ctx.const(scale)])


@register_converter
class RBFSamplerConverter(SklearnConverter):
    transformer = RBFSampler
    supports = "gamma, n_components (the fitted random_weights_ and random_offset_)"
    onnx_ops = TRIG_OPS

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        scale = (2.0 / model.n_components) ** 0.5
        return {NUM: _cosine_features(ctx, model, numeric_input(ctx, inputs), scale)}


@register_converter
class SkewedChi2SamplerConverter(SklearnConverter):
    """``cos(log(X + skewedness) @ W + b) * sqrt(2) / sqrt(n)``; a row with a value
    <= -skewedness is refused (scikit-learn raises for the batch)."""

    transformer = SkewedChi2Sampler
    supports = "skewedness, n_components (the fitted random_weights_ and random_offset_)"
    onnx_ops = TRIG_OPS | frozenset({"LessOrEqual", "Log"})

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        x = numeric_input(ctx, inputs)
        skew = float(model.skewedness)
        refuse_below(
            ctx,
            inputs,
            x,
            -skew,
            f"value <= -skewedness ({-skew!r}), which SkewedChi2Sampler refuses",
            inclusive=True,
        )
        logs = ctx.node("Log", [ctx.node("Add", [x, ctx.const(skew)])])
        scale = float(np.sqrt(2.0) / np.sqrt(model.n_components))
        return {NUM: _cosine_features(ctx, model, logs, scale)}


@register_converter
class AdditiveChi2SamplerConverter(SklearnConverter):
    """``_transform_dense``: ``sqrt(x * interval)``, then per step ``j``
    ``sqrt(2 x interval / cosh(pi j interval)) * cos / sin(j interval log x)``; 0 where
    ``x == 0``; negative values refused (``ensure_non_negative``)."""

    transformer = AdditiveChi2Sampler
    supports = "sample_steps 1 / 2 / 3 or sample_interval"
    onnx_ops = CHECK_OPS | frozenset(
        {"Less", "Equal", "Where", "Mul", "Sqrt", "Log", "Div", "Cos", "Sin", "Concat"}
    )

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        x = numeric_input(ctx, inputs)
        refuse_below(
            ctx,
            inputs,
            x,
            0.0,
            "negative value, AdditiveChi2Sampler accepts only non-negative numbers",
            inclusive=False,
        )
        steps = int(model.sample_steps)
        interval = model.sample_interval
        if interval is None:
            interval = {1: 0.8, 2: 0.5, 3: 0.4}.get(steps)
            if interval is None:  # pragma: no cover - scikit-learn raises at fit
                raise refuse(model, f"sample_steps={steps} needs a sample_interval")
        interval = float(interval)
        zero = ctx.node("Equal", [x, ctx.const(0.0)])

        def nonzero(value: str) -> str:
            return ctx.node("Where", [zero, ctx.const(0.0), value])

        parts = [nonzero(ctx.node("Sqrt", [ctx.node("Mul", [x, ctx.const(interval)])]))]
        log_step = ctx.node("Mul", [ctx.const(interval), ctx.node("Log", [x])])
        step = ctx.node("Mul", [ctx.node("Mul", [ctx.const(2.0), x]), ctx.const(interval)])
        for j in range(1, steps):
            factor = ctx.node(
                "Sqrt", [ctx.node("Div", [step, ctx.const(float(np.cosh(np.pi * j * interval)))])]
            )
            angle = ctx.node("Mul", [ctx.const(float(j)), log_step])
            parts.append(nonzero(ctx.node("Mul", [factor, ctx.node("Cos", [angle])])))
            parts.append(nonzero(ctx.node("Mul", [factor, ctx.node("Sin", [angle])])))
        return {NUM: ctx.concat(*parts)}


#: Nystroem kernels with an exact graph
_KERNELS = ("rbf", "laplacian", "linear", "poly", "polynomial", "sigmoid")


@register_converter
class NystroemConverter(SklearnConverter):
    """``pairwise_kernels(X, components_) @ normalization_.T`` as scikit-learn computes the
    kernels: rbf ``exp(-gamma * max(|x|^2 - 2 x.c + |c|^2, 0))``, laplacian
    ``exp(-gamma * sum |x - c|)``, linear ``x.c``, polynomial ``(gamma x.c + coef0)^degree``,
    sigmoid ``tanh(gamma x.c + coef0)``."""

    transformer = Nystroem
    supports = "kernel rbf / laplacian / linear / poly / sigmoid, gamma, coef0, degree, n_components"
    onnx_ops = CHECK_OPS | frozenset(
        {
            "MatMul",
            "Mul",
            "Add",
            "ReduceSum",
            "Less",
            "Where",
            "Exp",
            "Unsqueeze",
            "Sub",
            "Abs",
            "Pow",
            "Tanh",
        }
    )

    def check_inputs(self, model: Any, columns: Sequence[Column]) -> list[Column]:
        if not isinstance(model.kernel, str) or model.kernel not in _KERNELS:
            raise refuse(model, f"kernel={model.kernel!r} is not exported (supported: {', '.join(_KERNELS)})")
        return super().check_inputs(model, columns)

    def emit(self, ctx: StepContext, model: Any, inputs: Sequence[Column]) -> dict[str, str]:
        x = numeric_input(ctx, inputs)
        centers = np.asarray(model.components_, dtype=np.float64)
        params = model._get_kernel_params()
        kernel = model.kernel
        n_features = centers.shape[1]
        gamma = params.get("gamma")
        gamma = 1.0 / n_features if gamma is None else float(gamma)  # pairwise_kernels' default
        if kernel in ("rbf", "laplacian"):
            if kernel == "rbf":  # squared euclidean distances, negative rounding errors clipped
                xx = ctx.node("ReduceSum", [ctx.node("Mul", [x, x]), ctx.const([1], np.int64)], keepdims=1)
                yy = np.einsum("ij,ij->i", centers, centers)[None, :]
                d = ctx.node("Mul", [project(ctx, x, centers.T), ctx.const(-2.0)])
                d = clip(ctx, ctx.node("Add", [ctx.node("Add", [d, xx]), ctx.const(yy)]), 0.0)
            else:  # manhattan distances
                diff = ctx.node(
                    "Sub", [ctx.node("Unsqueeze", [x, ctx.const([1], np.int64)]), ctx.const(centers[None])]
                )
                d = ctx.node("ReduceSum", [ctx.node("Abs", [diff]), ctx.const([2], np.int64)], keepdims=0)
            k = ctx.node("Exp", [ctx.node("Mul", [d, ctx.const(-gamma)])])
        else:
            k = project(ctx, x, centers.T)
            if kernel != "linear":
                # passes.simplify.protect_matmul_scales keeps this product float64
                k = ctx.node("Mul", [k, ctx.const(gamma)])
                k = ctx.node("Add", [k, ctx.const(float(params.get("coef0", 1)))])
                if kernel == "sigmoid":
                    k = ctx.node("Tanh", [k])
                else:
                    k = ctx.node("Pow", [k, ctx.const(float(params.get("degree", 3)))])
        return {NUM: project(ctx, k, np.asarray(model.normalization_, dtype=np.float64).T)}


# ------------------------------------------------------------------ refused

_ITERATIVE = (
    "its transform solves an optimisation problem per row ({what}), iteratively; no fixed graph reproduces it"
)
for _cls in (NMF, MiniBatchNMF):
    not_convertible(_cls, _ITERATIVE.format(what="non-negative least squares for the coefficients"))
not_convertible(
    LatentDirichletAllocation, _ITERATIVE.format(what="variational inference of the topic weights")
)
for _cls in (DictionaryLearning, MiniBatchDictionaryLearning, SparseCoder):
    not_convertible(_cls, _ITERATIVE.format(what="sparse coding: OMP, LARS, lasso or thresholding"))
for _cls in (SparsePCA, MiniBatchSparsePCA):
    not_convertible(
        _cls,
        "its transform solves a ridge regression per batch (a Cholesky factorisation of the components' "
        "Gram matrix); the graph's product by a precomputed inverse rounds differently",
    )
not_convertible(
    KernelPCA,
    "its transform centres a kernel against every training sample and projects it on eigenvectors scaled "
    "by their eigenvalues (not converted: use PCA, or Nystroem for an approximate kernel map)",
)
not_convertible(
    PolynomialCountSketch,
    "its features are count sketches multiplied through numpy's FFT; a graph's sums differ from the "
    "FFT's butterflies by far more than the tolerance for outputs much smaller than the inputs",
)
del _cls
