"""Code lines (no blank, comment or docstring lines) and physical lines of files at a revision.

    python3 benchmarks/code_lines.py d14480a src/shopaug/evaluate/benchmark.py \\
        src/shopaug/pipeline/runner.py src/shopaug/pipeline/stages.py
    python3 benchmarks/code_lines.py WORK src/shopaug/workflow/experiment.py ...

``WORK`` reads the working tree instead of a commit.
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize

SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers of module, class and function docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        body = getattr(node, "body", None)
        if isinstance(node, kinds) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


def code_lines(source: str) -> int:
    docs = docstring_lines(ast.parse(source))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in SKIPPED or token.type == tokenize.ENDMARKER:
            continue
        lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docs)
    return len(lines)


def read(revision: str, path: str) -> str:
    if revision == "WORK":
        with open(path) as f:
            return f.read()
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=True
    ).stdout


def main() -> None:
    revision, paths = sys.argv[1], sys.argv[2:]
    total_code = total_physical = 0
    for path in paths:
        source = read(revision, path)
        code, physical = code_lines(source), source.count("\n")
        total_code, total_physical = total_code + code, total_physical + physical
        print(f"{code:6d} {physical:6d}  {path}")
    print(f"{total_code:6d} {total_physical:6d}  total (code lines, physical lines)")


if __name__ == "__main__":
    main()
