"""The documentation that ships in two places says the same thing.

README.md holds the results-directory documentation; the package carries the same text as the
README it writes into every results directory.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _demoted(text: str) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)


def test_readme_documents_results_directory_verbatim():
    packaged = (
        resources.files("metak.output").joinpath("RESULTS_README.md").read_text(encoding="utf-8")
    )
    assert _demoted(packaged).strip() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_has_the_sections_a_newcomer_needs():
    headings = re.findall(
        r"^## (.+)$", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.M
    )
    for needed in (
        "The two commands",
        "Example",
        "Study records: the CSV schema",
        "What `results/` holds",
    ):
        assert needed in headings
