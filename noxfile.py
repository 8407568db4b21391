"""Routine jobs. ``nox -s build`` builds everything, ``nox -s tests`` runs the tests.

Sessions use uv (``pip install "nox[uv]"``); dependencies are pinned in
pyproject.toml's dependency groups.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


def _install(session: nox.Session, *groups: str) -> None:
    args = [arg for group in groups for arg in ("--group", group)]
    session.install(*args, "-e", ".")


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Train, convert, verify and package every model; build the runtime wheel. Output: dist/."""
    _install(session, "build")
    session.run("python", "-m", "build", "--wheel", "--no-isolation", "--outdir", "dist", ".")
    # the bundled models through the public build command (`-- --only NAME` for one)
    session.run(
        "predictlib", "build", "models", "--dist", "dist", "--artifacts", "artifacts", *session.posargs
    )


@nox.session(python=PYTHON)
def spark(session: nox.Session) -> None:
    """predictlib.spark on a real Spark, local[2] and local-cluster (needs Java 17 or 21)."""
    _install(session, "test")
    session.run("pytest", "-m", "spark", *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (builds what it needs in temporary folders)."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install("--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the runtime package."""
    _install(session, "lint")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmarks, one after another, each writing its results in benchmarks/results/:
    ``benchmarks.run``, predictlib vs the original pipeline (latest.{json,png}, docs/benchmarks.md,
    the README's summary; ~13 min);
    ``benchmarks.trees``, tree models vs their own libraries (trees.{json,md}); ``benchmarks.inputs``,
    rows/s per input kind (inputs.{json,md}). Each also runs alone (``python -m benchmarks.X``);
    all three took 22 minutes on the 2-core machine.

    ``nox -s bench -- --reuse`` reuses benchmarks.run's artifacts of the previous run (its other
    options go to it alone); ``-- --quick`` is a smoke run of all three.
    """
    _install(session, "bench")
    session.install("uv==0.13.8")  # the benchmark measures the two stacks in throwaway uv venvs
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "-m", "benchmarks.run", *session.posargs)
    session.run("python", "-m", "benchmarks.trees", *quick)
    session.run("python", "-m", "benchmarks.inputs", *quick)


@nox.session(python=PYTHON)
def bench_spark(session: nox.Session) -> None:
    """predictlib.spark.transform on local[2] over 10M Parquet rows beside Spark's no-op floor,
    the in-process runtime and the original in a pandas UDF (long: ~30 min on an idle 2-core
    machine): benchmarks/results/spark.{json,md}. ``-- --rows N`` for a shorter run."""
    _install(session, "bench")
    session.run("python", "-m", "benchmarks.spark", *session.posargs)


@nox.session(python=PYTHON)
def compare(session: nox.Session) -> None:
    """Differential test of a candidate model against its last release: ``nox -s compare -- MODEL``.

    Builds MODEL (the build fails when the change exceeds the thresholds in its model.toml,
    unless the major version was bumped) and writes artifacts/MODEL/differential.json.
    """
    if len(session.posargs) != 1:
        session.error("usage: nox -s compare -- MODEL")
    _install(session, "build")
    (model,) = session.posargs
    session.run("predictlib", "build", f"models/{model}")
    session.run("python", "-m", "predictlib.build.stages.release", "compare", f"models/{model}")


@nox.session(python=PYTHON)
def release(session: nox.Session) -> None:
    """Build MODEL and record it as released (models/MODEL/releases/VERSION.json): ``nox -s release -- MODEL``."""
    if len(session.posargs) != 1:
        session.error("usage: nox -s release -- MODEL")
    _install(session, "build")
    (model,) = session.posargs
    session.run("predictlib", "build", f"models/{model}")
    session.run("python", "-m", "predictlib.build.stages.release", "record", f"models/{model}")
