"""Every relative link of the front door and the manual resolves: README.md, CHANGELOG.md,
docs/*.md and the hand-written reports/timings.md. A link's file must exist; its #anchor, when
it points into a Markdown file, must be one of that file's headings as GitHub slugs them
(lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``, repeats numbered ``-1``,
``-2``). Links inside code (fenced blocks, `spans`) and HTML comments are not links."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "reports" / "timings.md"]

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.S | re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)
SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, …


def prose(markdown: str) -> str:
    """The text with code blocks, code spans and HTML comments blanked out."""
    for pattern in (FENCE, COMMENT, SPAN):
        markdown = pattern.sub("", markdown)
    return markdown


def slugs(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", COMMENT.sub("", markdown))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    """``document``'s relative links whose file, or whose anchor in a Markdown file, is missing."""
    broken = []
    for target in LINK.findall(prose(document.read_text())):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        resolved = document if not path else (root / path.lstrip("/") if path.startswith("/")
                                              else document.parent / path)
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in slugs(resolved.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_of_the_readme_changelog_and_docs_resolves(document):
    assert document.exists(), f"{document.relative_to(ROOT)} is missing"
    assert broken_links(document) == []


def test_the_readme_links_every_page_of_the_manual():
    readme = ROOT / "README.md"
    targets = LINK.findall(prose(readme.read_text()))
    linked = {(readme.parent / target.partition("#")[0]).resolve() for target in targets}
    assert [page.name for page in sorted((ROOT / "docs").glob("*.md")) if page.resolve() not in linked] == []


def test_a_missing_file_or_heading_is_found_and_code_is_not_a_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page\n\n## Its `cpu` part: W&B\n\n## Its `cpu` part: W&B\n")
    readme = tmp_path / "README.md"
    readme.write_text("[ok](docs/page.md) [ok](docs/page.md#its-cpu-part-wb) [ok](docs/page.md#its-cpu-part-wb-1)\n"
                      "[ok](#top) [ok](https://example.org/missing.md) `[code](docs/none.md)`\n\n"
                      "```\n[code](docs/none.md)\n```\n<!-- [comment](docs/none.md) -->\n# Top\n"
                      "[gone](docs/gone.md) [bad anchor](docs/page.md#its-gpu-part) [bad here](#bottom)\n")
    assert broken_links(readme, tmp_path) == ["docs/gone.md: no such file",
                                               "docs/page.md#its-gpu-part: no heading #its-gpu-part in page.md",
                                               "#bottom: no heading #bottom in README.md"]


def test_no_tracked_file_holds_a_merge_conflicts_markers():
    """A merge committed with its conflict markers reads as text to every other check here."""
    found = subprocess.run(["git", "grep", "-n", "-E", "^(<<<<<<<|>>>>>>>) "], cwd=ROOT, capture_output=True, text=True)
    assert found.stdout == ""
