"""Rendered previews of the notebooks: executed copies, with their outputs, as HTML in docs/notebooks/.

    python tools/previews.py build [NAME ...]   # execute and render (default: all of them); `make previews`
    python tools/previews.py check [NAME ...]   # exit 1 when a preview is missing or older than its notebook

Each notebook is read from its py:percent script (``notebooks/NAME.py``), executed with papermill in the
repository root with the parameters below, and converted with nbconvert's HTML exporter (images embedded).
The HTML records the sha256 of the script it was made from in ``<meta name="uec-repro-source">``;
``tests/test_previews.py`` compares it with the script as it is now. Everything the notebooks write goes to
the scratch folder ``runs/previews`` (ignored by git), which is removed afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
PREVIEW_DIR = ROOT / "docs" / "notebooks"
SCRATCH = "runs/previews"  # relative to ROOT, where the notebooks run; runs/ is ignored by git
META_NAME = "uec-repro-source"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
REBUILD = "make previews"

# The notebooks that have a preview, and the parameters each one runs with (the rest keep their defaults).
PREVIEWS: dict[str, dict[str, object]] = {
    # a short run that still shows training move the reward and the entropy (about 2 minutes on 2 CPU cores)
    "00_quickstart": {"steps": 8, "eval_prompts": 24, "eval_samples": 4, "experiment_dir": SCRATCH},
    # the shipped results (data/reference/paper); its figures go to the scratch folder, not figures/paper
    "05_paper_figures": {"figures_dir": f"{SCRATCH}/figures"},
    # the bandit simulation, defaults (it writes no files unless save_figures)
    "06_entropy_mechanics": {},
}

_META = re.compile(rf'<meta name="{META_NAME}" content="sha256:([0-9a-f]{{64}})"')


def source_path(name: str) -> Path:
    return NOTEBOOK_DIR / f"{name}.py"


def preview_path(name: str) -> Path:
    return PREVIEW_DIR / f"{name}.html"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_hash(name: str) -> str:
    """The sha256 of the notebook's script as it is now."""
    return sha256(source_path(name).read_bytes())


def recorded_hash(html: Path) -> str | None:
    """The sha256 that a preview records of the script it was made from (None if it records none)."""
    match = _META.search(html.read_text(encoding="utf-8", errors="replace"))
    return match.group(1) if match else None


def problems(names: list[str] | None = None) -> list[str]:
    """One line for each preview that is missing or was made from another version of its notebook."""
    found = []
    for name in names or list(PREVIEWS):
        html = preview_path(name)
        rel = html.relative_to(ROOT)
        if not html.exists():
            found.append(f"{rel} is missing: run `{REBUILD}`")
            continue
        recorded = recorded_hash(html)
        if recorded is None:
            found.append(f"{rel} records no source hash: run `{REBUILD}`")
        elif recorded != source_hash(name):
            found.append(f"{rel} is out of date with notebooks/{name}.py: run `{REBUILD}`")
    return found


def stamp(html: str, name: str, digest: str) -> str:
    """The HTML with the source's hash in a <meta> tag at the top of <head> (replacing an earlier one)."""
    html = re.sub(rf'\n<!-- Rendered by `{REBUILD}`[^\n]*-->\n<meta name="{META_NAME}"[^>]*>\n', "", html)
    tag = (
        f"\n<!-- Rendered by `{REBUILD}` from notebooks/{name}.py (tools/previews.py); do not edit. -->"
        f'\n<meta name="{META_NAME}" content="sha256:{digest}">\n'
    )
    anchor = r"<meta charset[^>]*>" if re.search(r"<meta charset[^>]*>", html) else r"<head[^>]*>"
    html, count = re.subn(anchor, lambda m: m.group(0) + tag, html, count=1)
    if count != 1:
        raise ValueError("the exported HTML has no <head>")
    return html


def without_widgets(notebook):
    """The notebook without its widget outputs (tqdm's progress bars): papermill keeps no widget state, so a
    static page would show them as empty boxes."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]
    notebook.metadata.pop("widgets", None)
    return notebook


def build(name: str, scratch: Path) -> Path:
    """Execute one notebook from its script and write its preview; returns the preview's path."""
    import jupytext
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    source = source_path(name).read_bytes()  # hashed and executed from the same bytes
    notebook = jupytext.reads(source.decode("utf-8"), fmt="py:percent")
    unexecuted = scratch / f"{name}.ipynb"
    executed = scratch / f"{name}.executed.ipynb"
    nbformat.write(notebook, unexecuted)
    papermill.execute_notebook(
        str(unexecuted),
        str(executed),
        parameters=PREVIEWS[name],
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    resources = {"metadata": {"name": name}}  # the page's <title>
    body, _ = exporter.from_notebook_node(
        without_widgets(nbformat.read(executed, as_version=4)), resources=resources
    )
    target = preview_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".html.partial")
    partial.write_text(stamp(body, name, sha256(source)), encoding="utf-8")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ", ".join(PREVIEWS)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="execute the notebooks and write their HTML previews")
    build_cmd.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {names}")
    build_cmd.add_argument("--keep", action="store_true", help=f"keep the scratch folder {SCRATCH}")
    check_cmd = commands.add_parser("check", help="exit 1 if a preview is missing or out of date")
    check_cmd.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {names}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(PREVIEWS))
    if unknown:
        parser.error(f"no preview of {', '.join(unknown)}; there are {names}")

    if args.command == "check":
        found = problems(args.names)
        print("\n".join(found) if found else f"{len(args.names or PREVIEWS)} previews up to date")
        return 1 if found else 0

    # the previews never reach the Hub: the notebooks run on the toy policy and the shipped results
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    scratch = ROOT / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        for name in args.names or PREVIEWS:
            start = time.monotonic()
            path = build(name, scratch)
            size = path.stat().st_size / 1e6
            print(f"{path.relative_to(ROOT)}: {size:.2f} MB in {time.monotonic() - start:.0f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
