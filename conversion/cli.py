"""``predictlib build PATH [PATH ...]``: build model folders into artifacts and wheels.

PATH is a model folder (``model.toml`` + ``pipeline.py`` + data, see
:mod:`predictlib.build.project`) or a folder of model folders (``models/`` builds every
bundled model). Exit status: 0 when every model was built and verified, 1 when one
failed (the message names the model, the stage's error and what to do), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .project import ProjectError, build_project, find_projects


def main(argv: list[str] | None = None, prog: str = "predictlib build") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="model folders, or folders of model folders")
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="where the wheels go (default: dist)")
    parser.add_argument(
        "--artifacts", type=Path, default=Path("artifacts"), help="artifact folders (default: artifacts)"
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="build only these models of PATHS")
    args = parser.parse_args(argv)
    try:
        projects = [p for path in args.paths for p in find_projects(path)]
    except ProjectError as exc:
        print(f"predictlib build: {exc}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {p.name for p in projects})
        if unknown:
            print(f"predictlib build: no model {unknown} in {[p.name for p in projects]}", file=sys.stderr)
            return 2
        projects = [p for p in projects if p.name in args.only]
    for project in projects:
        try:
            build_project(project, dist=args.dist, artifacts=args.artifacts)
        except Exception as exc:  # noqa: BLE001 - any failure fails the build, with its reason
            print(f"BUILD FAILED for {project.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0
