"""The published numbers of the README and docs/ are generated from the committed reports
(analysis.readme_blocks), each block in the file its definition names."""
import shutil
from pathlib import Path

import pytest

from analysis import readme_blocks
from analysis.readme_blocks import BLOCKS, ROOT, files, main, render


def test_the_committed_readme_and_docs_blocks_equal_what_the_committed_reports_generate(capsys):
    assert main(["--check"]) == 0, capsys.readouterr().out


def copy_of_the_block_files(tmp_path):
    for file in files():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / file, tmp_path / file)
    return tmp_path


def test_a_number_typed_into_a_block_is_found_and_rewritten(tmp_path, capsys):
    readme = copy_of_the_block_files(tmp_path) / "README.md"
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- generated: cpu-results -->")
    plus = text.index("±", start)  # the first score of the table: change its last digit
    readme.write_text(text[:plus - 2] + ("1" if text[plus - 2] != "1" else "2") + text[plus - 1:])
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "cpu-results" in capsys.readouterr().out
    assert main(["--root", str(tmp_path)]) == 0 and readme.read_text() == text


def test_a_block_lives_in_the_file_its_definition_names(tmp_path, capsys):
    """The rates block moved to docs/results.md: there it is checked (a missing one is named), its
    link is relative to docs/, and in the README it is an error."""
    assert (BLOCKS["cpu-probe-rates"].file, BLOCKS["cpu-results"].file) == (Path("docs/results.md"), Path("README.md"))
    results = copy_of_the_block_files(tmp_path) / "docs" / "results.md"
    text = results.read_text()
    assert "[reports/cpu-probe.md](../reports/cpu-probe.md)" in text
    for marker in ("<!-- generated: cpu-probe-rates -->", "<!-- end: cpu-probe-rates -->"):
        text = text.replace(marker, "")
    results.write_text(text)
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "docs/results.md: lacks the generated blocks cpu-probe-rates" in capsys.readouterr().out
    belongs = r"README.md: block 'cpu-probe-rates' belongs in docs/results.md"
    with pytest.raises(ValueError, match=belongs):
        render("<!-- generated: cpu-probe-rates -->\nx\n<!-- end: cpu-probe-rates -->\n", file=Path("README.md"))


def test_an_unknown_block_names_the_known_ones():
    with pytest.raises(ValueError, match=r"README block 'cpu-typo' is not generated.*known: \['cpu-probe-rates', 'cpu-results'\]"):
        render("<!-- generated: cpu-typo -->\nx\n<!-- end: cpu-typo -->\n")


def test_the_rates_block_puts_the_rate_chosen_on_validation_beside_the_papers(tmp_path, monkeypatch):
    search = tmp_path / "search.md"
    search.write_text("# Search\n\n| method | task | learning_rate | seeds | val_score | still_improving | chosen |\n"
                      "|:--|:--|--:|--:|--:|--:|:--|\n"
                      "| compacter | stsb | 0.003 | 2 | 70 | 0.5 | |\n"
                      "| compacter | stsb | 0.01 | 2 | 76 | 0 | ✓ |\n")
    monkeypatch.setattr(readme_blocks, "ROOT", tmp_path)
    row = readme_blocks.rates_block(search.relative_to(tmp_path)).splitlines()[-1]
    assert [cell.strip() for cell in row.strip("|").split("|")] == [
        "Compacter", "STS-B", "3e-3", "3e-3, 1e-2", "1e-2", "76", "0/2"]
