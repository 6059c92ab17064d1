"""The docs: every rendered table matches the CSVs it names, the site builds strictly,
the README stays short, and every example runs."""

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import report

ROOT = Path(__file__).resolve().parent.parent


def test_committed_pages_equal_a_fresh_render(tmp_path):
    written = report.render(ROOT, tmp_path)
    assert len(written) > 15
    stale = [str(p.relative_to(tmp_path)) for p in written
             if p.read_text() != (ROOT / p.relative_to(tmp_path)).read_text()]
    assert stale == [], f"rerun `python -m experiments.report`: {stale} differ from the CSVs"
    for figure in (tmp_path / "docs" / "figures").rglob("*.png"):
        assert figure.read_bytes() == (ROOT / figure.relative_to(tmp_path)).read_bytes()


def test_a_changed_csv_is_caught(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copytree(ROOT / "results", root / "results")
    shutil.copy(ROOT / "README.md", root / "README.md")
    csv = root / "results" / "quick" / "sigma_sweep_summary.csv"
    lines = csv.read_text().splitlines()
    method, sigma, mean, *rest = lines[1].split(",")
    lines[1] = ",".join([method, sigma, f"{float(mean) / 2:.6f}", *rest])
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    report.render(root, out)
    page = "docs/experiments/sigma-sweep.md"
    assert (out / page).read_text() != (root / page).read_text()
    assert f"{float(mean) / 2:.3f}" in (out / page).read_text()


def test_a_marker_naming_a_missing_file_is_one_line(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("<!-- table: results/none.csv -->\n<!-- /table -->\n")
    with pytest.raises(report.RenderError, match="README.md: results/none.csv: no such"):
        report.render(tmp_path, tmp_path / "out")


def test_the_readme_fits_on_two_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_readme_example_runs_and_is_at_most_15_lines(capsys):
    text = (ROOT / "README.md").read_text()
    code = text[text.index("```python\n") + 10:text.index("```", text.index("```python\n") + 10)]
    assert len([line for line in code.splitlines() if line.strip()]) <= 15
    tiny = code.replace("presentations=3e6", "presentations=3e4")
    exec(compile(tiny, "README", "exec"), {})  # noqa: S102 - the README's own code
    assert capsys.readouterr().out.strip()


def test_mkdocs_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, check=False,
                          capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("script, argv", [("iris_chip.py", ["3e4"]),
                                          ("plain_density.py", ["400"]),
                                          ("compare_methods.py", ["5e3", "spsa"])])
def test_examples_run_at_a_tiny_size(script, argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, *argv])
    runpy.run_path(str(ROOT / "examples" / script), run_name="__main__")
    out = capsys.readouterr().out
    if script != "plain_density.py":
        assert "accuracy" in out
        return
    # a Gaussian bump with a known mean and evidence: MH's mean and PT's log Z agree with them
    mean = re.search(r"MH mean \[\s*(\S+)\s+(\S+)\]", out)
    assert abs(float(mean[1]) - 1.0) < 0.4 and abs(float(mean[2]) + 2.0) < 0.4
    z = re.search(r"PT log Z (\S+) \+- (\S+) \(exact (\S+)\)", out)
    assert abs(float(z[1]) - float(z[3])) < 3 * float(z[2])
