"""The quickstart in a real browser (tools/browser_check.py, `make browser-check`): JupyterLab, headless
Chromium, Run > Run All Cells on tiny parameters, no error output. Skipped where no browser is installed
(`apt-get install -y chromium chromium-driver`, `pip install -e '.[browser]'`)."""

import nbformat
import pytest

from tools import browser_check


def test_the_prepared_copy_has_the_tiny_parameters_and_no_outputs(tmp_path):
    prepared = browser_check.prepare(tmp_path, browser_check.TINY)
    assert prepared == tmp_path / "notebooks" / "00_quickstart.ipynb"
    notebook = nbformat.read(prepared, as_version=4)
    (injected,) = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    for name, value in browser_check.TINY.items():
        assert f"{name} = {value!r}" in injected.source
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


@pytest.mark.slow
@pytest.mark.skipif(not browser_check.browser_available(), reason="no Chromium, chromedriver or selenium")
def test_quickstart_runs_all_cells_in_chromium_without_an_error(tmp_path):
    screenshot = tmp_path / "browser_check.png"
    result = browser_check.check(screenshot, timeout=900)
    assert result["errors"] == [], result
    assert result["executed"] == result["code_cells"] > 0, result
    assert result["ok"] and result["kernel"] == "idle"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
