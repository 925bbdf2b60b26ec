"""The documentation site builds in strict mode and documents every name.

Runs ``mkdocs build --strict`` (any warning fails it: a broken link, a
docstring griffe cannot parse, a page missing from the nav) into a temporary
folder, as CI does, then checks the API reference it produced against
``gradtx.__all__`` and ``gradtx.torch_like.__all__``. The build also runs
``docs/make_figures.py`` (through ``docs/hooks.py``) when its inputs changed.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

import gradtx
from gradtx import torch_like

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  out = tmp_path_factory.mktemp("site")
  env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
  proc = subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
      check=False)
  assert proc.returncode == 0, (
      f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}")
  assert "WARNING" not in proc.stderr, proc.stderr
  return out


def _ids(page: pathlib.Path) -> set:
  return set(re.findall(r'id="([\w.]+)"', page.read_text()))


def test_every_public_name_has_an_entry_in_the_api_reference(site):
  ids = _ids(site / "api" / "gradtx" / "index.html")
  missing = [n for n in gradtx.__all__ if f"gradtx.{n}" not in ids]
  assert not missing, f"not in the API reference: {missing}"


def test_every_torch_like_name_has_an_entry(site):
  ids = _ids(site / "api" / "torch_like" / "index.html")
  missing = [n for n in torch_like.__all__
             if f"gradtx.torch_like.{n}" not in ids]
  assert not missing, f"not in the torch_like reference: {missing}"


def test_docstring_markup_is_rendered(site):
  html = (site / "api" / "gradtx" / "index.html").read_text()
  text = re.sub(r"<[^>]+>", "", html)
  # reStructuredText left over means docs/griffe_gradtx.py missed it.
  for leftover in (".. math::", ":math:`", ":func:`", ":class:`"):
    assert leftover not in text, leftover
  # Maths goes to MathJax, examples render as code.
  entry = html[html.index('id="gradtx.adam"'):]
  entry = entry[:entry.index('class="doc doc-heading"', 100)]
  assert '<div class="arithmatex">' in entry
  assert "gradtx.adam(1e-3)" in re.sub(r"<[^>]+>", "", entry)


def test_figures_are_generated_and_published(site):
  for name in ("sgd", "adaptive", "adam", "wrappers", "schedules",
               "lr_find"):
    png = site / "figures" / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
