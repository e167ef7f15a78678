"""Code lines of recogan_app at a git revision: lines holding code tokens, with docstrings,
comments and blank lines left out (``ast`` + ``tokenize``), so that the size of the engine can be
compared across commits without rewarding dense lines or punishing documentation.

"Engine" is ``recogan_app`` minus ``ui/`` and ``cli.py``. Issue 14's bar: it goes down, not up.

Usage::

    python benchmarks/engine_lines.py [REV]            # engine / cli / ui totals (REV: HEAD)
    python benchmarks/engine_lines.py [REV] --files    # and each file's count
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENDMARKER}


def code_lines(source: str) -> int:
    """Lines on which a code token lies, outside the module's, classes' and functions' docstrings."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in SKIPPED:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def part(path: str) -> str:
    return "ui" if path.startswith("recogan_app/ui/") else "cli" if path == "recogan_app/cli.py" else "engine"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", default="HEAD")
    parser.add_argument("--files", action="store_true", help="print each file's count too")
    args = parser.parse_args()
    git = ["git", "-C", str(ROOT)]
    paths = subprocess.run(git + ["ls-tree", "-r", "--name-only", args.rev, "recogan_app"],
                           capture_output=True, text=True, check=True).stdout.split()
    totals = {"engine": 0, "cli": 0, "ui": 0}
    for path in sorted(p for p in paths if p.endswith(".py")):
        source = subprocess.run(git + ["show", f"{args.rev}:{path}"],
                                capture_output=True, text=True, check=True).stdout
        count = code_lines(source)
        totals[part(path)] += count
        if args.files:
            print(f"{count:6d}  {path}")
    print(args.rev, " ".join(f"{name} {count}" for name, count in totals.items()))


if __name__ == "__main__":
    main()
