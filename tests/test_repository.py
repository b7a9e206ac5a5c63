"""The repository stands on its own: no file points at a path outside it (the team's notes live elsewhere;
the project's own account of the paper is docs/paper.md)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {
    ".git",
    ".venv",
    "runs",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".ipynb_checkpoints",
}
OUTSIDE = ("../" + "shared", "shared" + "/paper/")  # split, so that this file does not match itself


def repository_files():
    """The files a commit would hold (tracked, or new and not ignored); without git, a walk of the tree."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        yield from (Path(name) for name in listed if (ROOT / name).is_file())
        return
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if (
            path.is_file()
            and not SKIPPED & set(relative.parts)
            and not relative.parts[0].endswith(".egg-info")
        ):
            yield relative


def test_no_file_points_outside_the_repository():
    offenders = []
    for relative in repository_files():
        try:
            text = (ROOT / relative).read_text()
        except (UnicodeDecodeError, OSError):
            continue  # binary files (figures, weights)
        offenders += [f"{relative}: {needle}" for needle in OUTSIDE if needle in text]
    assert not offenders, offenders


def test_every_docs_paper_link_names_a_heading_of_docs_paper():
    """The sections of docs/paper.md cited in the package, tests, notebooks and README exist."""
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (ROOT / "docs" / "paper.md").read_text().splitlines()
        if line.startswith("#")
    }
    cited = set()
    for relative in repository_files():
        if relative.suffix in {".py", ".md", ".toml"}:
            cited |= set(re.findall(r"docs/paper\.md#([a-z0-9-]+)", (ROOT / relative).read_text()))
    assert cited and cited <= headings, sorted(cited - headings)


def test_licence_and_citation_match_the_package_metadata():
    import tomllib

    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert (
        "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    )
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == project["license"]
    assert str(citation["version"]) == project["version"]
    assert all(key in citation for key in ("title", "authors", "message"))
    (paper,) = citation["references"]
    assert "Unified Entropy Control" in paper["title"]
    assert any("2604.14646" in identifier["value"] for identifier in paper["identifiers"])


def test_no_committed_record_holds_an_absolute_machine_path():
    """Manifests, evaluations, benchmark records, docs and code keep paths relative to the repository or the
    runs root (tests may name /tmp paths as inputs)."""
    machine_path = re.compile(r"(?<![\w.])/(home|work|tmp|root|Users)/")
    offenders = []
    for relative in repository_files():
        if relative.parts[0] == "tests" or relative.suffix in {".png", ".pdf", ".safetensors"}:
            continue
        try:
            text = (ROOT / relative).read_text()
        except (UnicodeDecodeError, OSError):
            continue
        offenders += [f"{relative}: {m.group(0)}" for m in machine_path.finditer(text)][:1]
    assert not offenders, offenders


def test_the_readme_results_block_is_generated_from_the_shipped_claims(tmp_path):
    """`make readme` leaves the README as it is: its "What the results say" block is the one the shipped
    claims table generates."""
    from uec_repro.claims import update_readme

    copy = tmp_path / "README.md"
    copy.write_text((ROOT / "README.md").read_text())
    assert not update_readme(copy, ROOT / "figures" / "paper" / "claims.csv"), "run `make readme`"
