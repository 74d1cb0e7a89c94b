"""Strip outputs, execution counts and run metadata from notebooks, or check they are stripped.

    python scripts/strip_notebooks.py            # strip notebooks/*.ipynb in place
    python scripts/strip_notebooks.py --check    # exit 1 listing notebooks that carry outputs
    python scripts/strip_notebooks.py a.ipynb    # only these files

Committed notebooks hold code and prose only: outputs depend on the lake they ran on and
would make every run a diff. The test suite runs ``--check``'s logic (tests/notebooks).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Cell metadata written by running a notebook (nbclient timings, UI state); never committed.
RUN_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def problems(notebook: dict[str, Any]) -> list[str]:
    """What in one notebook is not stripped (empty list: clean)."""
    found: list[str] = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            if cell.get("outputs") or cell.get("attachments"):
                found.append(f"cell {index}: non-code cell with outputs or attachments")
            continue
        if cell.get("outputs"):
            found.append(f"cell {index}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {index}: execution_count {cell['execution_count']}")
        leftover = [key for key in RUN_METADATA if key in cell.get("metadata", {})]
        if leftover:
            found.append(f"cell {index}: run metadata {leftover}")
    if "widgets" in notebook.get("metadata", {}):
        found.append("notebook metadata: widget state")
    return found


def strip(notebook: dict[str, Any]) -> dict[str, Any]:
    """The same notebook with outputs, execution counts and run metadata removed."""
    for cell in notebook.get("cells", []):
        metadata = cell.setdefault("metadata", {})
        for key in RUN_METADATA:
            metadata.pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    notebook.get("metadata", {}).pop("widgets", None)
    return notebook


def write(path: Path, notebook: dict[str, Any]) -> None:
    """Write a notebook the way Jupyter does (one-space indent, trailing newline)."""
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Strip (or with --check, verify) the given notebooks, default notebooks/*.ipynb."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not change files")
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    dirty = 0
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        found = problems(notebook)
        if not found:
            continue
        dirty += 1
        if args.check:
            print(f"{path}: not stripped: " + "; ".join(found), file=sys.stderr)
        else:
            write(path, strip(notebook))
            print(f"stripped {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
