"""A clone of the repository by itself installs, tests and documents itself (issue 17).

Nothing the tests read or the docs link to may live outside the repository (the developers'
``../shared`` folder is not part of a user's clone).
"""

from __future__ import annotations

from pathlib import Path

from tests.hydra_double.schema import hydra_data

ROOT = Path(__file__).resolve().parents[1]


def test_hydra_reference_data_is_vendored_with_its_license() -> None:
    data = hydra_data()
    assert data.is_relative_to(ROOT)
    assert (data / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert (data / "api.yaml").is_file() and any((data / "golden" / "ServerOutput").iterdir())


def test_docs_and_code_point_inside_the_repository() -> None:
    texts = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("specs/*.md")]
    texts += [*ROOT.glob("src/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")]
    outside = [
        str(path.relative_to(ROOT))
        for path in texts
        if path != Path(__file__) and "../shared" in path.read_text(encoding="utf-8")
    ]
    assert outside == [], f"these files send readers outside the repository: {outside}"
    for page in ("design.md", "crypto-spec.md", "masking.md", "threats.md"):
        assert (ROOT / "docs" / page).is_file()
