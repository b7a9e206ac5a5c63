"""The rendered previews in docs/notebooks/ (tools/previews.py, `make previews`): there, made from the
notebooks as they are now, self-contained, and linked from the README. Fast: nothing is executed here."""

import re
from pathlib import Path

import pytest

from tools import previews

ROOT = Path(__file__).parents[1]
NAMES = list(previews.PREVIEWS)


def test_the_previewed_notebooks_exist():
    for name in NAMES:
        assert previews.source_path(name).exists(), f"notebooks/{name}.py is gone: update tools/previews.py"


@pytest.mark.parametrize("name", NAMES)
def test_preview_is_up_to_date_with_its_notebook(name):
    found = previews.problems([name])
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", NAMES)
def test_preview_is_linked_from_the_readme(name):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    link = f"docs/notebooks/{name}.html"
    assert link in readme, f"README.md does not link the preview {link}"


@pytest.mark.parametrize("name", NAMES)
def test_preview_embeds_its_images(name):
    html = previews.preview_path(name)
    if not html.exists():
        pytest.skip(f"{html.name} is missing (test_preview_is_up_to_date_with_its_notebook says so)")
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html.read_text(encoding="utf-8"))
    assert all(src.startswith("data:") for src in sources), "a figure is linked, not embedded"


def test_a_changed_notebook_makes_its_preview_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(previews, "ROOT", tmp_path)
    monkeypatch.setattr(previews, "NOTEBOOK_DIR", tmp_path / "notebooks")
    monkeypatch.setattr(previews, "PREVIEW_DIR", tmp_path / "docs" / "notebooks")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "docs" / "notebooks").mkdir(parents=True)
    script = previews.source_path("nb")
    script.write_text("# %%\nx = 1\n")

    (missing,) = previews.problems(["nb"])
    assert "missing" in missing and "make previews" in missing

    html = "<!DOCTYPE html>\n<html>\n<head>\n<title>nb</title></head><body></body></html>"
    previews.preview_path("nb").write_text(html)
    (unstamped,) = previews.problems(["nb"])
    assert "no source hash" in unstamped and "make previews" in unstamped

    stamped = previews.stamp(html, "nb", previews.source_hash("nb"))
    assert previews.stamp(stamped, "nb", previews.source_hash("nb")) == stamped  # restamping replaces
    previews.preview_path("nb").write_text(stamped)
    assert previews.problems(["nb"]) == []

    script.write_text("# %%\nx = 2\n")
    (stale,) = previews.problems(["nb"])
    assert "out of date with notebooks/nb.py" in stale and "make previews" in stale


def test_check_command_exits_1_on_a_stale_preview(monkeypatch, capsys):
    monkeypatch.setattr(previews, "problems", lambda names=None: ["docs/notebooks/x.html is missing"])
    assert previews.main(["check"]) == 1
    assert "x.html is missing" in capsys.readouterr().out
    monkeypatch.setattr(previews, "problems", lambda names=None: [])
    assert previews.main(["check"]) == 0
