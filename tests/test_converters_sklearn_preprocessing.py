"""Property tests: scikit-learn's preprocessing transformers (scalers, Binarizer, Normalizer,
FunctionTransformer, KBinsDiscretizer, PolynomialFeatures, SplineTransformer,
PowerTransformer, QuantileTransformer, KernelCenterer) against their ``transform``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from converter_harness import (
    FINITE,
    check_equivalent,
    check_or_refused,
    converter_settings,
    covers,
    discrete_numbers,
    export_error,
    fit_and_check,
    fit_or_reject,
    frames,
    numbers,
    quietly,
)
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    KBinsDiscretizer,
    KernelCenterer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
)
from sklearn_harness import (
    BINARIZERS_NORMALIZERS,
    KBINS_FIT_NUMBERS,
    MODERATE,
    MODERATE_OR_NAN,
    POLYNOMIALS,
    SCALERS,
    check_fitted,
    with_output,
)

from predictlib.build.converters.sklearn.preprocessing import FUNCTIONS, ndtri


@covers(StandardScaler, RobustScaler, MaxAbsScaler, MinMaxScaler)
@converter_settings(max_examples=40)
@given(data=st.data(), scaler=SCALERS)
def test_scalers(data: st.DataObject, scaler: Any) -> None:
    """NaN passes through (scikit-learn lets it), +-inf is refused."""
    f = data.draw(
        frames(numeric=(1, 3), categorical=(0, 0), fit_numbers=numbers(missing=True, infinite=False))
    )
    check_fitted(data, scaler, f.fit, f.transform)


@covers(Binarizer, Normalizer)
@converter_settings(max_examples=30)
@given(data=st.data(), step=BINARIZERS_NORMALIZERS)
def test_binarizer_normalizer(data: st.DataObject, step: Any) -> None:
    f = data.draw(frames(numeric=(1, 4), categorical=(0, 0), fit_missing="none"))
    check_fitted(data, step, f.fit, f.transform)


@covers(FunctionTransformer)
@converter_settings(max_examples=40)
@given(data=st.data(), func=st.sampled_from([None, *FUNCTIONS]), validate=st.booleans())
def test_function_transformer(data: st.DataObject, func: Any, validate: bool) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 0)))
    # validate=True makes an array, which only feature_names_out names
    names = "one-to-one" if validate else data.draw(st.sampled_from([None, "one-to-one"]))
    check_fitted(
        data, FunctionTransformer(func=func, validate=validate, feature_names_out=names), f.fit, f.transform
    )


@covers(FunctionTransformer)
@converter_settings(max_examples=15)
@given(data=st.data())
def test_function_transformer_identity_passes_text(data: st.DataObject) -> None:
    """``func=None`` without validation: the frame as it is, text columns included."""
    f = data.draw(frames(numeric=(0, 2), categorical=(1, 2), missing_markers=(math.nan,)))
    step = FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas")
    fit_and_check(step, f.fit, f.transform)


@covers(KBinsDiscretizer)
@converter_settings(max_examples=40)
@given(
    data=st.data(),
    n_bins=st.integers(2, 5),
    encode=st.sampled_from(["ordinal", "onehot", "onehot-dense"]),
    strategy=st.sampled_from(["uniform", "quantile", "kmeans"]),
)
def test_kbins_discretizer(data: st.DataObject, n_bins: int, encode: str, strategy: str) -> None:
    f = data.draw(
        frames(numeric=(1, 3), categorical=(0, 0), fit_missing="none", fit_numbers=KBINS_FIT_NUMBERS)
    )
    step = KBinsDiscretizer(
        n_bins=n_bins,
        encode=encode,
        strategy=strategy,
        quantile_method="averaged_inverted_cdf",
        subsample=None,
    )
    if encode == "onehot":  # sparse output: compared through the harness' dense conversion
        fit_and_check(step, f.fit, f.transform)
    else:
        check_fitted(data, step, f.fit, f.transform)


@covers(PolynomialFeatures)
@converter_settings(max_examples=40)
@given(data=st.data(), step=POLYNOMIALS)
def test_polynomial_features(data: st.DataObject, step: PolynomialFeatures) -> None:
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 0), fit_missing="none", fit_numbers=FINITE))
    check_or_refused(
        with_output(data, step),
        f.fit,
        f.transform,
        refused=lambda s: s.n_output_features_ == 0,
        reasons=("creates no column",),
        step="poly",
    )


@covers(SplineTransformer)
@converter_settings(max_examples=60)
@given(
    data=st.data(),
    n_knots=st.integers(2, 6),
    degree=st.integers(0, 3),
    knots=st.sampled_from(["uniform", "quantile"]),
    extrapolation=st.sampled_from(["error", "constant", "linear", "continue", "periodic"]),
    include_bias=st.booleans(),
    handle_missing=st.sampled_from(["error", "zeros"]),
)
def test_spline_transformer(
    data: st.DataObject,
    n_knots: int,
    degree: int,
    knots: str,
    extrapolation: str,
    include_bias: bool,
    handle_missing: str,
) -> None:
    fit_numbers = MODERATE_OR_NAN if handle_missing == "zeros" else MODERATE
    f = data.draw(frames(numeric=(1, 2), categorical=(0, 0), fit_rows=(3, 30), fit_numbers=fit_numbers))
    step = SplineTransformer(
        n_knots=n_knots,
        degree=degree,
        knots=knots,
        extrapolation=extrapolation,
        include_bias=include_bias,
        handle_missing=handle_missing,
    )
    check_or_refused(
        with_output(data, step),
        f.fit,
        f.transform,
        refused=lambda s: s.n_features_out_ == 0,  # one spline per column, without its bias column
        reasons=("outputs no column",),
        step="spline",
    )


@covers(SplineTransformer)
def test_spline_transformer_sparse_output_gives_the_same_numbers() -> None:
    rng = np.random.default_rng(0)
    fit = pd.DataFrame({"a": rng.normal(size=40), "b": rng.uniform(-5, 5, size=40)})
    transform = pd.DataFrame({"a": [-10.0, 0.0, 0.3, 10.0], "b": [-5.0, 5.0, 7.0, 0.1]})
    for extrapolation in ("constant", "linear", "continue", "periodic"):
        step = SplineTransformer(n_knots=4, extrapolation=extrapolation, sparse_output=True).fit(fit)
        check_equivalent(step, fit, transform)


@covers(PowerTransformer)
@converter_settings(max_examples=40)
@given(data=st.data(), method=st.sampled_from(["yeo-johnson", "box-cox"]), standardize=st.booleans())
def test_power_transformer(data: st.DataObject, method: str, standardize: bool) -> None:
    """NaN passes through; Box-Cox refuses a row with a value <= 0."""
    fit_numbers = st.floats(1e-3, 1e4) if method == "box-cox" else MODERATE
    if data.draw(st.booleans(), label="missing values at fit"):
        fit_numbers = st.one_of(fit_numbers, st.just(math.nan))
    f = data.draw(
        frames(
            numeric=(1, 3), categorical=(0, 0), fit_rows=(3, 30), fit_numbers=fit_numbers, fit_integers=None
        )
    )
    check_fitted(data, PowerTransformer(method=method, standardize=standardize), f.fit, f.transform)


@covers(QuantileTransformer)
@converter_settings(max_examples=50)
@given(
    data=st.data(),
    n_quantiles=st.integers(2, 50),
    output_distribution=st.sampled_from(["uniform", "normal"]),
)
def test_quantile_transformer(data: st.DataObject, n_quantiles: int, output_distribution: str) -> None:
    fit_numbers = st.one_of(discrete_numbers(), MODERATE_OR_NAN, FINITE)
    f = data.draw(frames(numeric=(1, 3), categorical=(0, 0), fit_rows=(2, 40), fit_numbers=fit_numbers))
    step = QuantileTransformer(
        n_quantiles=n_quantiles, output_distribution=output_distribution, subsample=None
    )
    fit_or_reject(step, f.fit)
    # transform values: fit values (quantiles, repeated ones), their neighbours and anything
    values = [v for v in f.fit.to_numpy(dtype=float).ravel() if math.isfinite(v)]
    near = st.sampled_from(values or [0.0]).map(
        lambda v: float(np.nextafter(v, data.draw(st.sampled_from([-np.inf, np.inf]))))
    )
    column = st.one_of(st.sampled_from(values or [0.0]), near, numbers())
    transform = pd.DataFrame(
        {
            c: data.draw(st.lists(column, min_size=len(f.transform), max_size=len(f.transform)))
            for c in f.fit.columns
        }
    )
    with_output(data, step)
    check_equivalent(step, f.fit, transform)


def test_ndtri_is_scipys() -> None:
    """The graph's normal quantile function against scipy's, on the whole (0, 1) range."""
    from scipy import special

    rng = np.random.default_rng(0)
    p = np.concatenate(
        [
            rng.random(20000),
            10 ** rng.uniform(-300, 0, 5000),
            1 - 10 ** rng.uniform(-16, 0, 5000),
            [0.5, 1e-300],
        ]
    )
    got = _run_unary(ndtri, p)
    expected = special.ndtri(p)
    assert np.allclose(got, expected, rtol=1e-15, atol=1e-15)


def _run_unary(build: Any, values: np.ndarray) -> np.ndarray:
    """Run a graph helper ``build(ctx, x)`` on a column of values."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from predictlib.build.core.frame import TARGET_OPSET

    class _Scope:
        count = 0

        def get_unique_variable_name(self, hint: str) -> str:
            self.count += 1
            return f"{hint}_{self.count}"

        get_unique_operator_name = get_unique_variable_name

    class _Container:
        def __init__(self) -> None:
            self.nodes: list[Any] = []
            self.initializers: list[Any] = []

        def add_node(
            self,
            op: str,
            inputs: list[str],
            outputs: list[str],
            op_domain: str = "",
            op_version: Any = None,
            name: str = "",
            **attrs: Any,
        ) -> None:
            self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=op_domain, **attrs))

        def add_initializer(self, name: str, onnx_type: int, shape: list[int], values: list[Any]) -> None:
            self.initializers.append(helper.make_tensor(name, onnx_type, shape, values))

    from predictlib.build.core.frame import StepContext

    class _Operator:
        def __init__(self) -> None:
            self.raw_operator = None
            self.outputs: list[Any] = []

    scope, container = _Scope(), _Container()
    ctx = StepContext(scope, _Operator(), container)
    out = build(ctx, "x")
    graph = helper.make_graph(
        container.nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [None, 1])],
        container.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", TARGET_OPSET[""])])
    model.ir_version = 9
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": values.reshape(-1, 1)})[0].ravel()


@covers(KernelCenterer)
@converter_settings(max_examples=20)
@given(data=st.data())
def test_kernel_centerer(data: st.DataObject) -> None:
    """A kernel against the training rows: K(X, X_fit) (any numbers: only sums and differences)."""
    n = data.draw(st.integers(1, 6))
    values = st.lists(st.lists(MODERATE, min_size=n, max_size=n), min_size=n, max_size=n)
    fit = pd.DataFrame(data.draw(values), columns=[f"k{i}" for i in range(n)])
    rows = data.draw(st.lists(st.lists(numbers(), min_size=n, max_size=n), min_size=1, max_size=8))
    transform = pd.DataFrame(rows, columns=fit.columns)
    check_fitted(data, KernelCenterer(), fit, transform)


# ---------------------------------------------------------------- refused at export


def test_text_into_a_numeric_transformer_is_refused() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "c": pd.Series(["x", "y"], dtype="str")})
    step = FunctionTransformer(np.log, validate=False, feature_names_out="one-to-one")
    pipe = Pipeline([("log", step)])
    quietly(lambda: pipe.fit(frame))
    message = export_error(pipe, frame)
    assert "step 'log' (FunctionTransformer)" in message and "text columns ['c']" in message


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (FunctionTransformer(np.cbrt), "func=<ufunc 'cbrt'> is not exported"),
        (FunctionTransformer(np.log, kw_args={"out": None}), "kw_args"),
        (KBinsDiscretizer(n_bins=2, dtype=np.float32, quantile_method="averaged_inverted_cdf"), "float32"),
    ],
)
def test_parameters_that_cannot_be_exact_are_refused(step: Any, reason: str) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.25, 2.0, 8.0]})
    pipe = Pipeline([("step", step)])
    quietly(lambda: pipe.fit(frame))
    message = export_error(pipe, frame)
    assert f"step 'step' ({type(step).__name__})" in message and reason in message


def test_target_encoders_are_listed_as_no_pipeline_steps() -> None:
    from predictlib.build.converters.sklearn.preprocessing import NOT_PIPELINE_STEPS

    assert "encodes a target" in NOT_PIPELINE_STEPS[LabelEncoder]
    with pytest.raises(TypeError):  # scikit-learn: it cannot be a step of a pipeline on X
        Pipeline([("label", LabelEncoder())]).fit(pd.DataFrame({"a": ["x", "y"]}), [0, 1])


@pytest.mark.parametrize("scaler", [StandardScaler(), RobustScaler(), MaxAbsScaler()])
def test_a_one_column_scale_before_a_linear_model_stays_float64(scaler: Any) -> None:
    """onnxruntime folds a Div by a one-element constant into the next MatMul's float32
    alpha (1e-5 off for a single-column StandardScaler -> LinearRegression); the export
    makes the scale a row it does not fold (passes.simplify.protect_matmul_scales)."""
    from sklearn.linear_model import LinearRegression
    from sklearn_harness import check_predictions

    rng = np.random.default_rng(0)
    fit = pd.DataFrame({"a": rng.normal(size=200) * 3.7 + 1.3})
    model = Pipeline([("scale", scaler), ("linear", LinearRegression())]).fit(fit, fit["a"] * 1.234567 + 0.5)
    transform = pd.DataFrame({"a": [*rng.normal(size=50) * 10, 0.0, -1e300, np.nan, np.inf]})
    assert check_predictions(model, fit, transform) == 2  # NaN and inf refused
