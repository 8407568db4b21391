"""Raw boosters as scikit-learn estimators: :func:`booster`.

``lgb.train`` returns a ``lightgbm.Booster`` and ``xgb.train`` an ``xgboost.Booster``:
neither is a scikit-learn estimator, and scikit-learn 1.9's ``Pipeline`` refuses one as
a step (``fit``: "Last step of Pipeline should implement fit"; ``predict``: "is not an
estimator instance"). :func:`booster` wraps one in a fitted scikit-learn estimator that
predicts with it exactly as the library's own scikit-learn class does
(``LGBMRegressor`` / ``LGBMClassifier``, ``XGBRegressor`` / ``XGBClassifier``), so it can
end a ``Pipeline`` and be exported and packaged; its converter is the library's
(``converters/lightgbm.py``, ``converters/xgboost.py``: one code path whether the booster
came from the scikit-learn class or from ``train``).

* **task** (``"regression"``, ``"binary"``, ``"multiclass"``) from the booster's
  objective when not given: LightGBM ``binary`` -> binary, ``multiclass`` /
  ``multiclassova`` -> multiclass, every other objective (``cross_entropy`` included: a
  probability for a continuous target) -> regression; XGBoost ``binary:logistic`` ->
  binary, ``multi:softprob`` -> multiclass, others -> regression. Give ``task="binary"``
  for a LightGBM ``cross_entropy`` booster trained on 0 / 1 labels.
* **classes** of a classifier: given (``classes=["no", "yes"]``: the label of the
  booster's class 0, 1, ...), else ``0 .. n_classes - 1`` -- the labels both libraries'
  ``train`` expect.
* ``predict`` / ``predict_proba``: LightGBM's ``Booster.predict`` (its ``best_iteration``
  when set, as ``lgb.train`` with early stopping leaves it); XGBoost's
  ``Booster.inplace_predict`` with all its trees (what ``XGBRegressor.predict`` calls; a
  raw booster does not stop at ``best_iteration``: slice it, ``booster[: b.best_iteration
  + 1]``, to keep the best trees). A classifier's probabilities are ``[1 - p, p]``
  (binary) or the booster's rows (multiclass), its label ``classes[argmax]`` (XGBoost
  binary: ``p > 0.5``).
* ``fit`` does not train: the booster is trained already, ``fit`` keeps it as it is (like
  scikit-learn's ``FrozenEstimator``), so a ``Pipeline`` ending in one can be fitted
  (its other steps are) and cloned.

:func:`as_estimator` is what :func:`~predictlib.build.package` and
:func:`~predictlib.build.export_pipeline` apply to their model: a raw booster, bare or as
the last step of a ``Pipeline``, is read as ``booster(raw)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.pipeline import Pipeline

TASKS = ("regression", "binary", "multiclass")


def _library(raw: Any) -> str | None:
    """``"lightgbm"`` / ``"xgboost"`` for a raw booster of that library, else None (by type:
    the libraries are not imported here)."""
    for cls in type(raw).__mro__:
        if cls.__name__ == "Booster" and cls.__module__.split(".")[0] in ("lightgbm", "xgboost"):
            return cls.__module__.split(".")[0]
    return None


def _objective(raw: Any, library: str) -> tuple[str, int]:
    """(objective name, outputs per iteration) of a raw booster."""
    if library == "lightgbm":
        words = str(raw.dump_model(num_iteration=1).get("objective", "")).split()
        return (words[0] if words else ""), int(raw.num_model_per_iteration())
    learner = json.loads(raw.save_config())["learner"]
    k = int(learner.get("learner_model_param", {}).get("num_class", "0"))
    return str(learner["objective"]["name"]), max(k, 1)


def _task(objective: str, k: int) -> str:
    if objective in ("binary", "binary:logistic"):
        return "binary"
    if objective in ("multiclass", "multiclassova", "multi:softprob", "multi:softmax") or k > 1:
        return "multiclass"
    return "regression"


class _Booster(BaseEstimator):  # type: ignore[misc]
    """What the four wrappers share: the raw booster (``booster``), kept as it is."""

    _library = ""

    def __init__(self, booster: Any = None) -> None:
        self.booster = booster

    def fit(self, X: Any = None, y: Any = None, **_: Any) -> Any:
        """Keep the trained booster as it is (nothing is trained); returns ``self``."""
        raw = self.booster
        if _library(raw) != self._library:
            raise TypeError(
                f"{type(self).__name__} wraps a {self._library}.Booster, got {type(raw).__name__}: "
                "use predictlib.build.booster(raw)"
            )
        if self._library == "lightgbm":
            self.booster_ = raw
            self.n_features_in_ = int(raw.num_feature())
            names = [str(n) for n in raw.feature_name()]
            generic = names == [f"Column_{j}" for j in range(len(names))]
        else:
            self.booster_ = raw
            self.n_features_in_ = int(raw.num_features())
            names = [str(n) for n in raw.feature_names or []]
            generic = not names
        if not generic:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        return self

    def get_booster(self) -> Any:
        """The raw booster (what XGBoost's scikit-learn classes answer)."""
        return self.booster_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "booster_")

    def _raw_predict(self, X: Any) -> np.ndarray:
        """The booster's prediction on ``X`` (a DataFrame or a matrix)."""
        names = getattr(self, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame):
            if names is not None and [str(c) for c in X.columns] != list(names):
                raise ValueError(
                    f"the booster was trained on the columns {list(names)}, X has {list(X.columns)}"
                )
            if names is None and not any(isinstance(X[c].dtype, pd.CategoricalDtype) for c in X.columns):
                X = X.to_numpy(dtype=np.float64)
        if self._library == "lightgbm":
            return np.asarray(self.booster_.predict(X))
        return np.asarray(self.booster_.inplace_predict(X, missing=np.nan))


class _Regressor(RegressorMixin, _Booster):  # type: ignore[misc]
    def predict(self, X: Any) -> np.ndarray:
        """The booster's prediction (``[N]``)."""
        return self._raw_predict(X).reshape(-1)


class _Classifier(ClassifierMixin, _Booster):  # type: ignore[misc]
    def __init__(self, booster: Any = None, classes: Sequence[Any] | None = None) -> None:
        self.booster = booster
        self.classes = classes

    def fit(self, X: Any = None, y: Any = None, **kwargs: Any) -> Any:
        super().fit(X, y, **kwargs)
        objective, k = _objective(self.booster_, self._library)
        n_classes = 2 if k == 1 else k
        classes = np.arange(n_classes) if self.classes is None else np.asarray(self.classes)
        if classes.ndim != 1 or len(classes) != n_classes or len(set(classes.tolist())) != n_classes:
            raise ValueError(
                f"classes {self.classes!r}: the booster (objective {objective!r}) has {n_classes} "
                f"classes; give {n_classes} distinct labels, for its class 0, 1, ... in that order"
            )
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[N, n_classes]``: ``[1 - p, p]`` for a binary booster, its rows otherwise."""
        p = self._raw_predict(X)
        if p.ndim == 1:
            return np.vstack((1.0 - p, p)).transpose()
        return p

    def predict(self, X: Any) -> np.ndarray:
        """``classes_`` of the most probable class (XGBoost binary: ``p > 0.5``)."""
        proba = self.predict_proba(X)
        if self._library == "xgboost" and proba.shape[1] == 2:
            return np.asarray(self.classes_[(proba[:, 1] > 0.5).astype(np.int64)])
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


class LGBMBoosterRegressor(_Regressor):
    """A trained ``lightgbm.Booster`` (regression objective) as a scikit-learn regressor."""

    _library = "lightgbm"


class LGBMBoosterClassifier(_Classifier):
    """A trained ``lightgbm.Booster`` (binary / multiclass) as a scikit-learn classifier."""

    _library = "lightgbm"


class XGBBoosterRegressor(_Regressor):
    """A trained ``xgboost.Booster`` (regression objective) as a scikit-learn regressor."""

    _library = "xgboost"


class XGBBoosterClassifier(_Classifier):
    """A trained ``xgboost.Booster`` (binary:logistic / multi:softprob) as a scikit-learn classifier."""

    _library = "xgboost"


_REGRESSORS: dict[str, type[_Regressor]] = {"lightgbm": LGBMBoosterRegressor, "xgboost": XGBBoosterRegressor}
_CLASSIFIERS: dict[str, type[_Classifier]] = {
    "lightgbm": LGBMBoosterClassifier,
    "xgboost": XGBBoosterClassifier,
}


def booster(raw: Any, *, task: str | None = None, classes: Sequence[Any] | None = None) -> Any:
    """A trained ``lightgbm.Booster`` / ``xgboost.Booster`` as a fitted scikit-learn estimator.

    ``task``: ``"regression"``, ``"binary"`` or ``"multiclass"``; None: from the booster's
    objective. ``classes``: a classifier's labels for the booster's classes 0, 1, ...
    (default ``0 .. n_classes - 1``). Returns an :class:`LGBMBoosterRegressor`,
    :class:`LGBMBoosterClassifier`, :class:`XGBBoosterRegressor` or
    :class:`XGBBoosterClassifier`, fitted (``fit`` keeps the booster as it is), to end a
    ``Pipeline`` or to give :func:`~predictlib.build.package` as it is.
    """
    library = _library(raw)
    if library is None:
        raise TypeError(
            f"booster() takes a trained lightgbm.Booster or xgboost.Booster, got "
            f"{type(raw).__module__}.{type(raw).__name__}"
        )
    objective, k = _objective(raw, library)
    if task is None:
        task = _task(objective, k)
    if task not in TASKS:
        raise ValueError(f"task {task!r}: give one of {', '.join(TASKS)}")
    if task == "regression" and classes is not None:
        raise ValueError("classes are given for a regression booster: give task='binary' or 'multiclass'")
    if task != "regression" and (task == "binary") != (k == 1):
        expected = "multiclass" if k > 1 else "binary"
        raise ValueError(
            f"task {task!r}, but the booster (objective {objective!r}) has {k} output(s) per "
            f"iteration: give task={expected!r}"
        )
    if task == "regression":
        return _REGRESSORS[library](raw).fit()
    return _CLASSIFIERS[library](raw, classes=classes).fit()


def as_estimator(model: Any) -> Any:
    """``model``, with a raw booster -- ``model`` itself, or its ``Pipeline``'s last step --
    wrapped by :func:`booster` (task and classes from the booster)."""
    if _library(model) is not None:
        return booster(model)
    if isinstance(model, Pipeline) and model.steps and _library(model.steps[-1][1]) is not None:
        name, raw = model.steps[-1]
        return Pipeline([*model.steps[:-1], (name, booster(raw))], memory=model.memory)
    return model
