"""No command overwrites or deletes what it did not write (sims.outdir); --update-papers checks every target
before anything trains and rewrites a page only between both markers, atomically; filesystem errors (disk
full, no permission, truncated files) are one line naming the file and what to do."""

import errno
import json

import pytest

from sims import outdir, plots, registry, store, sweepfiles
from sims.claims import runner
from sims.cli import main

SETS = [a for kv in ("lc=false", "steps=10", "n_evals=4", "n=40", "d=400", "n_test=100") for a in ("--set", kv)]
SWEEP = ["sweep", "xor-cluster", "--preset", "ci", "--grid", "width=8,16", "--device", "cpu", "--threads", "1",
         "--quiet"] + SETS


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("command", [
    ["atlas", "--preset", "ci", "--device", "cpu", "--threads", "1"],
    ["reproduce", "xu2024", "--preset", "ci", "--device", "cpu", "--threads", "1"],
    SWEEP,
    ["run", "xor-cluster", "--preset", "ci", "--device", "cpu", "--threads", "1", "--quiet"] + SETS,
], ids=["atlas", "reproduce", "sweep", "run"])
def test_a_foreign_directory_is_refused_and_left_as_it_is(tmp_path, command, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "atlas.md").write_text("my notes\n")
    (d / "report.md").write_text("my report\n")
    before = _tree(d)
    assert main(command + ["--out", str(d)]) == 2
    assert str(d) in _one_line(capsys)
    assert _tree(d) == before and sorted(p.name for p in d.iterdir()) == ["atlas.md", "report.md"]


def test_a_directory_another_command_made_is_refused(tmp_path, capsys):
    d = tmp_path / "d"
    outdir.claim(d, "atlas")
    before = _tree(d)
    assert main(SWEEP + ["--out", str(d)]) == 2
    assert "made by `sims atlas`" in _one_line(capsys) and _tree(d) == before


def test_a_directory_the_command_made_is_reused(tmp_path):
    d = tmp_path / "d"
    assert outdir.claim(d, "reproduce") == d and outdir.owner(d) == "reproduce"
    (d / "report.json").write_text("{}")
    assert outdir.claim(d, "reproduce") == d  # made by it: reused
    legacy = tmp_path / "old-sweep"  # written before the marker existed: recognised by its index
    legacy.mkdir()
    (legacy / "sweep.json").write_text("{}")
    assert outdir.owner(legacy) == "sweep" and outdir.check(legacy, "sweep") == legacy
    with pytest.raises(ValueError, match="made by `sims sweep`"):
        outdir.check(legacy, "atlas")


def test_a_root_of_runs_takes_runs_and_refuses_other_files(tmp_path):
    root = tmp_path / "runs"
    (root / "xor-cluster" / "20240101-000000-abc").mkdir(parents=True)
    (root / "sweeps").mkdir()
    assert outdir.check_runs_root(root, registry.names()) == root
    (root / "thesis.tex").write_text("...")
    with pytest.raises(ValueError, match="thesis.tex"):
        outdir.check_runs_root(root, registry.names())


def test_plot_of_a_foreign_directory_writes_nothing(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    assert main(["plot", str(d)]) == 2
    _one_line(capsys)
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------------------------------------ --update-papers

def _report(**over):
    return dict(key="xu2024", title="Xu et al.", preset="ci", seed=None, elapsed_s=1.0, train_s=1.0, figures=[],
                rows=[], environment=dict(device="cpu", threads=1, torch="x"), **over)


PAGE = "# page\n\nintro\n\n<!-- claims:begin -->\nold table\n<!-- claims:end -->\n\n## Discussion\nkept text\n"


def test_a_page_is_rewritten_only_between_its_markers(tmp_path):
    papers = tmp_path / "papers"
    papers.mkdir()
    page = papers / "xu2024.md"
    page.write_text(PAGE)
    runner.update_paper(papers, _report(), tmp_path)
    text = page.read_text()
    assert text.startswith("# page\n\nintro\n\n<!-- claims:begin -->\nMeasured by") and "old table" not in text
    assert text.endswith("<!-- claims:end -->\n\n## Discussion\nkept text\n")
    bare = papers / "xu2024.md"
    bare.write_text("# no markers\nmy text\n")
    runner.update_paper(papers, _report(), tmp_path)  # no markers: the block is appended, nothing lost
    assert bare.read_text().startswith("# no markers\nmy text\n\n<!-- claims:begin -->")
    assert [p.name for p in papers.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("damage", ["begin only", "end only", "end before begin", "begin twice"])
def test_a_page_with_broken_markers_is_left_whole(tmp_path, damage):
    papers = tmp_path / "papers"
    papers.mkdir()
    b, e = "<!-- claims:begin -->", "<!-- claims:end -->"
    text = {"begin only": f"# p\n{b}\ntable\n## after\nprose\n", "end only": f"# p\ntable\n{e}\nprose\n",
            "end before begin": f"# p\n{e}\nx\n{b}\nprose\n", "begin twice": f"{b}\n{b}\nx\n{e}\nprose\n"}[damage]
    (papers / "xu2024.md").write_text(text)
    with pytest.raises(ValueError, match="fix the markers"):
        runner.update_paper(papers, _report(), tmp_path)
    assert (papers / "xu2024.md").read_text() == text


def test_a_failed_page_write_leaves_the_page_whole(tmp_path, monkeypatch):
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "xu2024.md").write_text(PAGE)

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(runner.os, "replace", full)
    with pytest.raises(OSError):
        runner.update_paper(papers, _report(), tmp_path)
    assert (papers / "xu2024.md").read_text() == PAGE and sorted(p.name for p in papers.iterdir()) == [
        "figures", "xu2024.md"]


def _target(tmp_path, case):
    papers = tmp_path / "papers"
    papers.mkdir()
    if case == "empty":
        return ""
    if case == "a file":
        (tmp_path / "file").write_text("x")
        return str(tmp_path / "file")
    if case == "missing":
        return str(tmp_path / "nowhere")
    if case == "page is a directory":
        (papers / "xu2024.md").mkdir()
    if case == "figures/KEY is a file":
        (papers / "figures").mkdir()
        (papers / "figures" / "xu2024").write_text("x")
    if case == "figures is a file":
        (papers / "figures").write_text("x")
    if case == "begin marker only":
        (papers / "xu2024.md").write_text("# p\n<!-- claims:begin -->\nrest of the page\n")
    return str(papers)


@pytest.mark.parametrize("case", ["empty", "a file", "missing", "page is a directory", "figures/KEY is a file",
                                  "figures is a file", "begin marker only"])
def test_a_bad_papers_target_is_refused_before_anything_trains(tmp_path, case, capsys):
    target = _target(tmp_path, case)
    before = _tree(tmp_path)
    code = main(["reproduce", "xu2024", "--preset", "ci", "--device", "cpu", "--threads", "1", "--quiet",
                 "--out", str(tmp_path / "rep"), "--update-papers", target])
    assert code == 2 and "update-papers" in _one_line(capsys)
    assert not (tmp_path / "rep").exists() and _tree(tmp_path) == before


# ------------------------------------------------------------------------------------------------ filesystem errors

def test_a_full_disk_while_a_sweep_writes_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    def full(path, rows, swept):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sweepfiles, "write_results_csv", full)
    assert main(SWEEP + ["--out", str(tmp_path / "s")]) == 1
    line = _one_line(capsys)
    assert "results.csv" in line and "disk is full" in line and "free space" in line


def test_a_full_disk_during_a_run_is_one_line_and_exit_1(runs_dir, monkeypatch, capsys):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(store.MetricsWriter, "write", full)
    code = main(["run", "xor-cluster", "--preset", "ci", "--device", "cpu", "--threads", "1", "--quiet"] + SETS)
    line = _one_line(capsys)
    assert code == 1 and "metrics.jsonl" in line and "disk is full" in line and "--resume" in line


@pytest.fixture
def swept(tmp_path):
    out = tmp_path / "s"
    assert main(SWEEP + ["--out", str(out)]) == 0
    return out


def test_a_sweep_dir_without_write_permission_is_one_line(swept, monkeypatch, capsys):
    def denied(fig, path, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(plots, "save", denied)
    capsys.readouterr()
    assert main(["plot", str(swept), "--x", "width", "--y", "train_acc"]) == 2
    line = _one_line(capsys)
    assert "train_acc-vs-width.png" in line and "permission" in line


def test_a_results_csv_cut_mid_row_draws_the_rows_that_are_whole(swept, capsys):
    path = swept / "results.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # the last row cut in half
    with pytest.warns(UserWarning, match="results.csv: skipping line 3"):
        assert main(["plot", str(swept), "--x", "width", "--y", "train_acc"]) == 0
    assert (swept / "figures" / "train_acc-vs-width.png").exists()


def test_a_half_written_sweep_is_drawn_with_what_is_missing_said(swept, capsys):
    index = json.loads((swept / "sweep.json").read_text())
    rows = [dict(index["points"][0]), dict(index["points"][1], status="pending")]
    sweepfiles.write_results_csv(swept / "results.csv", rows, ["width"])
    capsys.readouterr()
    assert main(["plot", str(swept), "--x", "width", "--y", "train_acc"]) == 0
    assert "1 of 2 point(s)" in capsys.readouterr().err
    sweepfiles.write_results_csv(swept / "results.csv", [dict(r, status="pending") for r in rows], ["width"])
    assert main(["plot", str(swept), "--x", "width", "--y", "train_acc"]) == 2
    assert "no point" in _one_line(capsys)


def test_a_directory_being_claimed_counts_as_empty(tmp_path):
    """Another process may be between creating the lock or the marker's temp file and renaming the marker into
    place: those files alone do not make the directory foreign; any other file does."""
    root = tmp_path / "out"
    root.mkdir()
    (root / "lock").write_text("{}")
    (root / f".{outdir.MARKER}.x1y2.tmp").write_text("")
    assert outdir.check(root, "sweep") == root
    (root / "notes.md").write_text("mine")
    with pytest.raises(outdir.ConfigError, match="not made by"):
        outdir.check(root, "sweep")
