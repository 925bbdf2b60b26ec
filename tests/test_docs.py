"""The documentation site builds in strict mode and documents every name.

Runs ``mkdocs build --strict`` (any warning fails it: a broken link, a
docstring griffe cannot parse, a page missing from the nav) into a temporary
folder, as CI does, then checks what it produced: the API reference against
``gradtx.__all__`` and ``gradtx.torch_like.__all__``, the examples gallery
against ``examples/``, the Performance page against the benchmark results,
and that no page loads anything from another host. The build also runs
``docs/make_figures.py`` (through ``docs/hooks.py``) when its inputs
changed.

Some checks read the sources only: every argument of every public callable
is described in its docstring's ``Args:`` section, and every public name
has a category in the API reference.
"""

import hashlib
import html
import importlib.util
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

import gradtx
from gradtx import torch_like

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str, path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


hooks = _load("gradtx_docs_hooks", DOCS / "hooks.py")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  out = tmp_path_factory.mktemp("site")
  env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
  proc = subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
      check=False)
  assert proc.returncode == 0, (
      f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}")
  assert "WARNING" not in proc.stderr, proc.stderr
  return out


def _ids(page: pathlib.Path) -> set:
  return set(re.findall(r'id="([\w.]+)"', page.read_text()))


def _pages(site: pathlib.Path) -> list[pathlib.Path]:
  return sorted(site.rglob("*.html"))


# --------------------------------------------------------------------------
# The API reference


def test_every_public_name_has_a_category():
  _, _, uncategorised = hooks.categorise()
  assert not uncategorised, (
      "public names with no category in the API reference: add them to "
      f"API_PAGES in docs/hooks.py: {uncategorised}")


def test_a_name_without_a_category_is_reported(monkeypatch):
  # The rule above can fail: a function nobody listed is uncategorised.
  real = hooks.public_names
  monkeypatch.setattr(hooks, "public_names",
                      lambda: real() + [("brand_new", "gradtx._src.alias")])
  assert hooks.categorise()[2] == ["brand_new"]


def test_every_public_name_has_an_entry_on_its_category_page(site):
  placed, attached, _ = hooks.categorise()
  for page, sections in placed.items():
    ids = _ids(site / "api" / page.removesuffix(".md") / "index.html")
    names = [n for ns in sections.values() for n in ns]
    names += [c for n in names for c in attached.get(n, ())]
    missing = [n for n in names if f"gradtx.{n}" not in ids]
    assert not missing, f"not on api/{page}: {missing}"
  everywhere = set().union(*(
      _ids(site / "api" / p.removesuffix(".md") / "index.html")
      for p in hooks.API_PAGES))
  missing = [n for n in gradtx.__all__ if f"gradtx.{n}" not in everywhere]
  assert not missing, f"not in the API reference: {missing}"


def test_every_torch_like_name_has_an_entry(site):
  ids = _ids(site / "api" / "torch_like" / "index.html")
  missing = [n for n in torch_like.__all__
             if f"gradtx.torch_like.{n}" not in ids]
  assert not missing, f"not in the torch_like reference: {missing}"


def test_entries_link_to_their_source_and_show_their_state(site):
  page = (site / "api" / "optimizers" / "index.html").read_text()
  entry = page[page.index('id="gradtx.adam"'):]
  entry = entry[:entry.index('class="doc doc-heading"', 100)]
  assert ("https://github.com/gradtx/gradtx/blob/main/gradtx/_src/alias.py#L"
          in entry)
  assert "ScaleByAdamState(count=i32[], mu=f32[3], nu=f32[3])" in entry
  page = (site / "api" / "transforms" / "index.html").read_text()
  entry = page[page.index('id="gradtx.scale_by_adam"'):]
  assert 'href="#gradtx.ScaleByAdamState"' in entry[:20000]


def test_docstring_markup_is_rendered(site):
  for page in (site / "api").rglob("index.html"):
    text = re.sub(r"<[^>]+>", "", page.read_text())
    # reStructuredText left over means docs/griffe_gradtx.py missed it.
    for leftover in (".. math::", ":math:`", ":func:`", ":class:`"):
      assert leftover not in text, (page, leftover)
  # Maths goes to MathJax, examples render as code.
  html_ = (site / "api" / "optimizers" / "index.html").read_text()
  entry = html_[html_.index('id="gradtx.adam"'):]
  entry = entry[:entry.index('class="doc doc-heading"', 100)]
  assert '<div class="arithmatex">' in entry
  assert "gradtx.adam(1e-3)" in re.sub(r"<[^>]+>", "", entry)


# --------------------------------------------------------------------------
# Every argument documented


_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|"
                      r"Keyword Args|Keyword Arguments|Other Parameters):\s*$")


def documented_args(doc: str) -> set[str]:
  """The names described in the Google-style argument sections of ``doc``
  (``Args:``, ``Attributes:`` and their synonyms): each entry is a line
  ``name: text`` or ``name (type): text``, one indent in from the header."""
  names: set[str] = set()
  lines = doc.splitlines()
  i = 0
  while i < len(lines):
    m = _SECTION.match(lines[i])
    i += 1
    if not m:
      continue
    header = len(m.group(1))
    entry_indent = None
    while i < len(lines):
      line = lines[i]
      if line.strip():
        indent = len(line) - len(line.lstrip())
        if indent <= header:
          break
        if entry_indent is None:
          entry_indent = indent
        if indent == entry_indent:
          e = re.match(r"\s*(\**[A-Za-z_]\w*)\s*(\([^)]*\))?\s*:", line)
          if e:
            names.add(e.group(1).lstrip("*"))
      i += 1
  return names


def _signature_params(obj) -> list[str]:
  try:
    sig = inspect.signature(obj)
  except (TypeError, ValueError):
    return []
  return [p.name for p in sig.parameters.values() if p.name != "self"]


def missing_args() -> dict[str, list[str]]:
  """``qualified name -> arguments its docstring does not describe`` for
  every public callable of ``gradtx`` and ``gradtx.torch_like``."""
  out = {}
  for prefix, module in (("gradtx", gradtx), ("gradtx.torch_like",
                                                torch_like)):
    for name in module.__all__:
      obj = getattr(module, name)
      if not callable(obj):
        continue
      params = _signature_params(obj)
      doc = inspect.getdoc(obj) or ""
      if inspect.isclass(obj) and obj.__init__ is not object.__init__:
        doc += "\n" + (inspect.getdoc(obj.__init__) or "")
      missing = [p for p in params if p not in documented_args(doc)]
      if missing:
        out[f"{prefix}.{name}"] = missing
  return out


def test_no_docstring_describes_an_argument_its_signature_lacks():
  # Docstrings that drift from signatures: a renamed or removed argument
  # still described.
  stale = {}
  for prefix, module in (("gradtx", gradtx), ("gradtx.torch_like",
                                                torch_like)):
    for name in module.__all__:
      obj = getattr(module, name)
      if not callable(obj) or not _signature_params(obj):
        continue
      extra = documented_args(inspect.getdoc(obj) or "") - set(
          _signature_params(obj))
      if extra:
        stale[f"{prefix}.{name}"] = sorted(extra)
  assert not stale, f"documented but not in the signature: {stale}"


def test_returns_sections_hold_one_item():
  # In a Google-style Returns: section every line at the item indent starts
  # a new item, so a description's second line must be indented further;
  # otherwise the reference shows one return value per line.
  split = []
  for module in (gradtx, torch_like):
    for name in module.__all__:
      lines = (inspect.getdoc(getattr(module, name)) or "").splitlines()
      for i, line in enumerate(lines):
        m = re.match(r"^(\s*)Returns:\s*$", line)
        if not m:
          continue
        indents = []
        for body in lines[i + 1:]:
          indent = len(body) - len(body.lstrip())
          if not body.strip() or indent <= len(m.group(1)):
            break
          indents.append(indent)
        if indents.count(indents[0]) > 1 if indents else False:
          split.append(name)
  assert not split, f"Returns: sections read as several items: {split}"


def test_documented_args_reads_google_sections():
  doc = inspect.cleandoc("""Summary.

      Args:
        learning_rate: the rate,
          on two lines.
        b1 (float): a decay.
        *transforms: members.
        **extra_args: forwarded.

      Returns:
        not_an_arg: nothing.
      """)
  assert documented_args(doc) == {"learning_rate", "b1", "transforms",
                                  "extra_args"}


def test_every_public_argument_is_documented():
  missing = missing_args()
  lines = [f"  {name}: {', '.join(args)}" for name, args in missing.items()]
  assert not missing, (
      f"{len(missing)} public names have arguments (or, for a state class, "
      "fields) that their docstring's Args: (or Attributes:) section does "
      "not describe:\n" + "\n".join(lines))


# --------------------------------------------------------------------------
# Nothing from another host


class _Loads(HTMLParser):
  """Collects the URLs a page loads: scripts, stylesheets, fonts, icons,
  images, frames, and the url()s and @imports of its inline styles."""

  def __init__(self):
    super().__init__()
    self.urls: list[str] = []
    self._in_style = False

  def handle_starttag(self, tag, attrs):
    a = dict(attrs)
    if tag in ("script", "img", "iframe", "source", "audio", "video",
               "embed", "track") and a.get("src"):
      self.urls.append(a["src"])
    if tag == "link" and a.get("href") and set(
        (a.get("rel") or "").split()) & {
            "stylesheet", "preload", "prefetch", "preconnect", "icon",
            "modulepreload", "dns-prefetch", "manifest"}:
      self.urls.append(a["href"])
    if tag == "object" and a.get("data"):
      self.urls.append(a["data"])
    if a.get("style"):
      self.urls += _css_urls(a["style"])
    self._in_style = tag == "style"

  def handle_endtag(self, tag):
    if tag == "style":
      self._in_style = False

  def handle_data(self, data):
    if self._in_style:
      self.urls += _css_urls(data)


def _css_urls(css: str) -> list[str]:
  return (re.findall(r"url\(\s*['\"]?([^'\")\s]+)", css)
          + re.findall(r"@import\s+['\"]([^'\"]+)", css))


def _foreign(url: str) -> bool:
  return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url.strip(), re.I))


def test_foreign_url_detection():
  parser = _Loads()
  parser.feed('<script src="https://cdn.example/x.js"></script>'
              '<link rel="stylesheet" href="//fonts.example/css">'
              '<style>@font-face{src:url(https://f.example/a.woff)}</style>'
              '<script src="../assets/x.js"></script>'
              '<a href="https://example.org">a link loads nothing</a>')
  assert [u for u in parser.urls if _foreign(u)] == [
      "https://cdn.example/x.js", "//fonts.example/css",
      "https://f.example/a.woff"]


def test_no_page_loads_anything_from_another_host(site):
  offenders = []
  for page in _pages(site):
    parser = _Loads()
    parser.feed(page.read_text())
    offenders += [(page.relative_to(site).as_posix(), u)
                  for u in parser.urls if _foreign(u)]
  for css in site.rglob("*.css"):
    offenders += [(css.relative_to(site).as_posix(), u)
                  for u in _css_urls(css.read_text()) if _foreign(u)]
  assert not offenders, offenders


def test_mathjax_is_served_with_the_site(site):
  page = (site / "optimizers" / "adam" / "index.html").read_text()
  scripts = re.findall(r'<script src="([^"]+)"', page)
  assert any(s.endswith("assets/mathjax/tex-svg-full.js") for s in scripts)
  js = (site / "assets" / "mathjax" / "tex-svg-full.js").read_text()
  assert '"3.2.2"' in js  # the pinned version


# --------------------------------------------------------------------------
# Pages


def test_no_bullet_is_merged_into_a_paragraph(site):
  merged = []
  for page in _pages(site):
    for para in re.findall(r"<p>(.*?)</p>", page.read_text(), re.S):
      text = html.unescape(re.sub(r"<[^>]+>", "", para))
      if re.search(r"\n\s*[-*+] \S", text):
        merged.append((page.relative_to(site).as_posix(), text[:80]))
  assert not merged, merged


def test_site_and_repository_urls_are_set(site):
  sitemap = (site / "sitemap.xml").read_text()
  assert "<loc>https://gradtx.github.io/gradtx/" in sitemap
  page = (site / "index.html").read_text()
  assert 'href="https://github.com/gradtx/gradtx"' in page
  # 404.html works under a sub-path: its links are absolute.
  assert 'href="/gradtx/assets/' in (site / "404.html").read_text()


def test_figures_are_generated_and_readable(site):
  sizes = json.loads((site / "figures" / "text_sizes.json").read_text())
  for name in ("sgd", "adaptive", "adam", "wrappers", "schedules",
               "lr_find"):
    png = site / "figures" / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # Measured from the figure's own text, at the width the page shows it.
    assert sizes[name]["smallest_text_px"] >= 10, (name, sizes[name])
    assert sizes[name]["shown_width_px"] <= 690, (name, sizes[name])


# --------------------------------------------------------------------------
# The examples gallery


def test_every_example_has_a_recorded_run_of_its_current_code():
  stale = []
  for script in sorted((ROOT / "examples").glob("*.py")):
    record = DOCS / "gallery" / f"{script.stem}.json"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    if not record.exists() or json.loads(record.read_text())[
        "sha256"] != digest:
      stale.append(script.stem)
  assert not stale, ("examples with no output recorded for their current "
                     f"code: run python docs/make_gallery.py {' '.join(stale)}")


def test_the_gallery_has_a_page_per_example(site):
  index = (site / "examples" / "index.html").read_text()
  start = (site / "getting-started" / "index.html").read_text()
  assert 'href="../examples/"' in start
  for script in sorted((ROOT / "examples").glob("*.py")):
    name = script.stem
    assert f'href="{name}/"' in index, name
    page = (site / "examples" / name / "index.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    # The code, line for line, and the recorded output.
    for line in script.read_text().splitlines():
      assert line.strip() in text, (name, line)
    record = json.loads((DOCS / "gallery" / f"{name}.json").read_text())
    for line in record["output"].splitlines()[:5]:
      assert line.strip() in text, (name, line)
    for fig in record["figures"]:
      assert (site / "gallery" / fig).exists(), fig


# --------------------------------------------------------------------------
# Performance


def test_the_performance_page_has_the_benchmark_table(site):
  results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
  page = (site / "performance" / "index.html").read_text()
  text = html.unescape(re.sub(r"<[^>]+>", " ", page))
  text = re.sub(r"\s+", " ", text)
  assert results["machine"]["time"] in text
  assert results["machine"]["cpu_model"] in text
  assert page.count("<tr>") >= len(results["results"])
  first = results["results"][0]
  assert f"{first['gradtx_ms']:.2f}" in text
  assert "<!-- benchmark results -->" not in page


def test_a_second_results_file_gets_a_generic_table(tmp_path, monkeypatch):
  (tmp_path / "results.json").write_text(json.dumps({"results": []}))
  (tmp_path / "results_tpu.json").write_text(json.dumps({
      "machine": {"time": "2026-01-01T00:00:00", "backend": "tpu"},
      "results": [{"tree": "gpt2", "optimizer": "adam", "step_ms": 1.25},
                  {"tree": "gpt2", "optimizer": "sgd", "flops": 3}]}))
  monkeypatch.setattr(hooks, "BENCHMARKS", tmp_path)
  monkeypatch.setattr(hooks, "ROOT", tmp_path.parent)
  md = hooks.benchmark_results()
  assert "| tree | optimizer | step_ms | flops |" in md
  assert "| gpt2 | adam | 1.25 |  |" in md
  assert "tpu backend" in md


def test_the_tpu_results_show_their_header_and_table(tmp_path,
                                                   monkeypatch):
  (tmp_path / "results.json").write_text(json.dumps({"results": []}))
  (tmp_path / "results_tpu.json").write_text(json.dumps({
      "header": {"target": "TPU v5e", "date": "2026-01-02",
                 "machine": "AMD EPYC, 2 cores", "jax": "0.10.2",
                 "libtpu": "0.0.42.1", "optax": "0.2.8",
                 "loadavg_start": [3.25, 2.0, 1.0],
                 "loadavg_end": [14.0, 13.0, 12.0], "note": "one note"},
      "rows": [], "markdown_table": "| tree | kernels |\n|---|---:|\n"
                                    "| gpt2 | 148 / 148 |"}))
  monkeypatch.setattr(hooks, "BENCHMARKS", tmp_path)
  monkeypatch.setattr(hooks, "ROOT", tmp_path.parent)
  md = hooks.benchmark_results()
  assert ("TPU v5e, on 2026-01-02: AMD EPYC, 2 cores, jax 0.10.2, libtpu "
          "0.0.42.1, optax 0.2.8, load average 3.2 at the start and 14.0 at "
          "the end.") in md
  assert "one note" in md
  assert "| gpt2 | 148 / 148 |" in md


def test_the_gallery_records_what_a_script_prints_and_draws(tmp_path,
                                                           monkeypatch):
  gallery = _load("gradtx_docs_make_gallery", DOCS / "make_gallery.py")
  examples = tmp_path / "examples"
  examples.mkdir()
  (examples / "plot.py").write_text(
      '"""Draws a line."""\n'
      "import matplotlib.pyplot as plt\n"
      "print('hello from plot')\n"
      "plt.plot([0, 1], [1, 0])\n"
      "plt.show()\n"
      "plt.figure()\n")  # left open: saved too
  monkeypatch.setattr(gallery, "ROOT", tmp_path)
  monkeypatch.setattr(gallery, "EXAMPLES", examples)
  monkeypatch.setattr(gallery, "GALLERY", tmp_path / "gallery")
  (tmp_path / "gallery").mkdir()
  record = gallery.record("plot")
  assert record["output"] == "hello from plot\n"
  assert record["figures"] == ["plot-1.png", "plot-2.png"]
  assert record["sha256"] == gallery.digest(examples / "plot.py")
  # A page from the record; a changed script gets a warning instead.
  monkeypatch.setattr(hooks, "ROOT", tmp_path)
  monkeypatch.setattr(hooks, "GALLERY", tmp_path / "gallery")
  page = hooks.gallery_page("plot", "https://example.org/repo")
  assert "hello from plot" in page and "../gallery/plot-2.png" in page
  (examples / "plot.py").write_text("print('changed')\n")
  page = hooks.gallery_page("plot", "https://example.org/repo")
  assert "No recorded output" in page and "hello from plot" not in page
