"""The README's published numbers are generated from the committed reports (analysis.readme_blocks)."""
import pytest

from analysis import readme_blocks
from analysis.readme_blocks import REPO_README, main, render


def test_the_committed_readme_blocks_equal_what_the_committed_reports_generate(capsys):
    assert main(["--check"]) == 0, capsys.readouterr().out


def test_a_number_typed_into_a_block_is_found_and_rewritten(tmp_path, capsys):
    readme = tmp_path / "README.md"
    text = REPO_README.read_text()
    start = text.index("<!-- generated: cpu-results -->")
    plus = text.index("±", start)  # the first score of the table: change its last digit
    readme.write_text(text[:plus - 2] + ("1" if text[plus - 2] != "1" else "2") + text[plus - 1:])
    assert main(["--readme", str(readme), "--check"]) == 1
    assert "cpu-results" in capsys.readouterr().out
    assert main(["--readme", str(readme)]) == 0 and readme.read_text() == text


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
