"""Render every results table, value and figure in the docs and the README from results/.

Pages hold marker blocks; this fills each block from the CSV (or figure) it names, so no
result is ever typed by hand:

    <!-- table: results/quick/sigma_sweep_summary.csv | where: method=mh_bma | columns: sigma, mean -->
    ... rendered Markdown table ...
    <!-- /table -->

    <!-- value: results/quick/sigma_sweep_summary.csv | where: method=mh_bma, sigma=3 | column: mean -->0.879<!-- /value -->

    <!-- figure: results/quick/accuracy_vs_sigma.png | caption: accuracy against sigma -->
    ![accuracy against sigma](../figures/quick/accuracy_vs_sigma.png)
    <!-- /figure -->

A ``<!-- trainers -->`` block renders the registry ``mhsnn.TRAINERS``. Table options: ``where`` (key=value filters; numbers compare as numbers), ``columns`` (the
columns shown, in order; ``name=header`` renames), ``pivot: ROW, COLUMN, VALUE`` (one row per
ROW value, one column per COLUMN value), ``format`` (floats, default ``.3f``). Values take
``where``, ``column`` and ``format``; a value from a manifest (``.json``) takes ``key``
(dotted, e.g. ``key: wall_s``). A figure is copied to docs/figures/<its path under
results/> and linked relative to the page.

    python -m experiments.report [--out DIR]

writes the rendered pages (README.md and docs/**/*.md) and figures in place, or, with
``--out DIR``, the same files at the same relative paths under DIR (the committed pages
are then untouched: ``tests/test_docs.py`` renders there and compares). A marker naming a
file that does not exist, or a filter that matches nothing, stops with one line and exit 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- (table|figure): (.*?) -->\n.*?<!-- /\1 -->", re.DOTALL)
VALUE = re.compile(r"<!-- value: (.*?) -->.*?<!-- /value -->", re.DOTALL)
TRAINERS = re.compile(r"<!-- trainers -->\n.*?<!-- /trainers -->", re.DOTALL)


class RenderError(ValueError):
    """A marker that cannot be rendered; the message is one line."""


def pages(root: Path = ROOT) -> list[Path]:
    """Every page the report renders: README.md and the docs' Markdown."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _options(spec: str) -> tuple[str, dict[str, str]]:
    path, *parts = [p.strip() for p in spec.split("|")]
    opts = {}
    for part in parts:
        key, _, value = part.partition(":")
        opts[key.strip()] = value.strip()
    return path, opts


def _read(root: Path, path: str) -> list[dict[str, str]]:
    file = root / path
    if not file.is_file():
        raise RenderError(f"{path}: no such results file")
    with open(file, newline="") as fh:
        return list(csv.DictReader(fh))


def _same(cell: str, wanted: str) -> bool:
    try:
        return float(cell) == float(wanted)
    except ValueError:
        return cell == wanted


def _filtered(rows: list[dict], where: str, path: str) -> list[dict]:
    for cond in filter(None, (c.strip() for c in where.split(","))):
        key, _, wanted = cond.partition("=")
        key, wanted = key.strip(), wanted.strip()
        if rows and key not in rows[0]:
            raise RenderError(f"{path}: no column {key!r} (where: {where})")
        rows = [r for r in rows if _same(r[key], wanted)]
    if not rows:
        raise RenderError(f"{path}: no row matches where: {where}")
    return rows


def _fmt(cell: str, spec: str) -> str:
    if cell == "":
        return ""
    try:
        number = float(cell)
    except ValueError:
        return cell
    if math.isnan(number):  # not defined for this row (an optimiser's R-hat, say)
        return ""
    if re.fullmatch(r"-?\d+", cell.strip()):
        return f"{int(cell):,}" if abs(int(cell)) >= 10_000 else cell.strip()
    if number.is_integer() and abs(number) >= 10_000:
        return f"{number:,.0f}"
    if number != 0 and abs(number) < 10 ** -int(re.sub(r"\D", "", spec) or 3):
        return f"{number:.2g}"
    return format(number, spec)


def _table(root: Path, spec: str) -> str:
    path, opts = _options(spec)
    rows = _filtered(_read(root, path), opts.get("where", ""), path)
    fmt = opts.get("format", ".3f")
    if "pivot" in opts:
        row_key, col_key, value_key = (p.strip() for p in opts["pivot"].split(","))
        for key in (row_key, col_key, value_key):
            if key not in rows[0]:
                raise RenderError(f"{path}: no column {key!r} (pivot: {opts['pivot']})")
        row_values = list(dict.fromkeys(r[row_key] for r in rows))
        col_values = list(dict.fromkeys(r[col_key] for r in rows))
        cells = {(r[row_key], r[col_key]): r[value_key] for r in rows}
        header = [row_key, *(f"{col_key} {_fmt(c, 'g')}" for c in col_values)]
        body = [[v, *(_fmt(cells.get((v, c), ""), fmt) for c in col_values)]
                for v in row_values]
    else:
        chosen = [c.strip() for c in opts["columns"].split(",")] if "columns" in opts \
            else list(rows[0])
        names = [c.partition("=")[0].strip() for c in chosen]
        for name in names:
            if name not in rows[0]:
                raise RenderError(f"{path}: no column {name!r} (columns: {opts['columns']})")
        header = [c.partition("=")[2].strip() or c.partition("=")[0].strip() for c in chosen]
        body = [[_fmt(r[n], fmt) for n in names] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _json_value(root: Path, path: str, opts: dict[str, str]) -> str:
    file = root / path
    if not file.is_file():
        raise RenderError(f"{path}: no such results file")
    value = json.loads(file.read_text())
    for part in opts.get("key", "").split("."):
        if not isinstance(value, dict) or part not in value:
            raise RenderError(f"{path}: no key {opts.get('key', '')!r}")
        value = value[part]
    return _fmt(str(value), opts.get("format", ".3f"))


def _value(root: Path, spec: str) -> str:
    path, opts = _options(spec)
    if path.endswith(".json"):
        return _json_value(root, path, opts)
    rows = _filtered(_read(root, path), opts.get("where", ""), path)
    column = opts.get("column", "")
    if column not in rows[0]:
        raise RenderError(f"{path}: no column {column!r}")
    if len(rows) != 1:
        raise RenderError(f"{path}: where: {opts.get('where', '')} matches {len(rows)} rows, "
                          "a value needs one")
    return _fmt(rows[0][column], opts.get("format", ".3f"))


def _figure(root: Path, out: Path, page: Path, spec: str) -> str:
    path, opts = _options(spec)
    source = root / path
    if not source.is_file():
        raise RenderError(f"{path}: no such figure")
    relative = Path(path).relative_to("results") if path.startswith("results/") else Path(path)
    target = out / "docs" / "figures" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    link = os.path.relpath(root / "docs" / "figures" / relative, page.parent)
    return f"![{opts.get('caption', relative.stem)}]({link})"


def _trainers() -> str:
    """The registry ``mhsnn.TRAINERS`` as a table."""
    from mhsnn.trainers import TRAINERS

    lines = ["| method | kind | uses the ideal model | what it is |", "|---|---|---|---|"]
    lines += [f"| `{t.name}` | {t.kind} | {'yes' if t.uses_model else 'no'} | {t.about} |"
              for t in TRAINERS.values()]
    return "\n".join(lines)


def render_page(root: Path, out: Path, page: Path) -> str:
    """The page's text with every marker block filled."""
    text = page.read_text()

    def block(match: re.Match) -> str:
        kind, spec = match.group(1), match.group(2)
        try:
            body = _table(root, spec) if kind == "table" else _figure(root, out, page, spec)
        except RenderError as err:
            raise RenderError(f"{page.relative_to(root)}: {err}") from None
        return f"<!-- {kind}: {spec} -->\n{body}\n<!-- /{kind} -->"

    def value(match: re.Match) -> str:
        try:
            return f"<!-- value: {match.group(1)} -->{_value(root, match.group(1))}<!-- /value -->"
        except RenderError as err:
            raise RenderError(f"{page.relative_to(root)}: {err}") from None

    text = TRAINERS.sub(lambda m: f"<!-- trainers -->\n{_trainers()}\n<!-- /trainers -->", text)
    return VALUE.sub(value, BLOCK.sub(block, text))


def render(root: Path = ROOT, out: Path | None = None) -> list[Path]:
    """Render every page into ``out`` (default: in place); returns the files written."""
    out = root if out is None else out
    written = []
    for page in pages(root):
        target = out / page.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = render_page(root, out, page)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        written.append(target)
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="write the rendered files under this folder instead of in place")
    args = ap.parse_args(argv)
    try:
        written = render(ROOT, args.out)
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"rendered {len(written)} pages into {args.out or ROOT}")


if __name__ == "__main__":
    main()
