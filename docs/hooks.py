"""MkDocs hooks: the generated parts of the site.

At every build, into gitignored folders (files are rewritten only when their
content changes, so ``mkdocs serve`` does not rebuild in a loop):

* ``docs/api/``: the API reference, one page per category of ``API_PAGES``
  below, an entry per public name (its signature, arguments, returns and
  example from the docstring; the state it keeps; a link to its source),
  and ``api/gradtx.md``, an index of every name. ``gradtx.__all__`` is read
  from the source with ``ast``; a name that no category claims is listed
  under "Not yet in a category" on the index, and ``tests/test_docs.py``
  fails on it.
* ``docs/examples/``: the gallery, a page per ``examples/*.py`` with its
  code, and what it printed and drew as recorded in ``docs/gallery/`` by
  ``docs/make_gallery.py``. New scripts get a page, and a nav entry, at the
  next build.
* ``docs/figures/*.png``: ``docs/make_figures.py`` run in a subprocess. It
  is re-run only when its inputs (that script and ``gradtx/**/*.py``)
  change; ``docs/figures/.stamp`` records their hash.

``performance.md`` gets the benchmark tables: the line
``<!-- benchmark results -->`` is replaced by the tables of
``benchmarks/results.json`` and of any other ``benchmarks/results*.json``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import os
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
PKG = ROOT / "gradtx"
API = DOCS / "api"
EXAMPLES_OUT = DOCS / "examples"
GALLERY = DOCS / "gallery"
FIGURES = DOCS / "figures"
BENCHMARKS = ROOT / "benchmarks"
log = logging.getLogger("mkdocs.hooks.gradtx")

# The API reference: page file -> (title, introduction, sections), a section
# being (heading, blurb, names). A public class that is not named here goes
# with the next name of its module that is (a state NamedTuple sits right
# above its transform), and is shown right after it. Names that are not in
# gradtx.__all__ are skipped, so a category can name what a checkout may
# not have.
API_PAGES: dict[str, tuple[str, str, list[tuple[str, str, list[str]]]]] = {
    "optimizers.md": (
        "Optimizers",
        "Named optimizers. Each is a short `gradtx.chain` of the "
        "[transforms](transforms.md), with its update rule and paper in its "
        "docstring; the guides are [SGD](../optimizers/sgd.md), "
        "[adaptive methods](../optimizers/adaptive.md) and "
        "[the Adam family](../optimizers/adam.md).",
        [
            ("SGD family", "", ["sgd", "sgdw", "noisy_sgd"]),
            ("Adaptive methods", "",
             ["adagrad", "adadelta", "rmsprop", "rprop"]),
            ("Adam family", "",
             ["adam", "adamw", "adamax", "nadam", "nadamw", "amsgrad",
              "radam", "adabound", "amsbound", "ranger", "swats"]),
        ]),
    "transforms.md": (
        "Transforms",
        "The contract every transform follows, and the primitives the "
        "optimizers are chained from. See [The contract](../contract.md) and "
        "[How composition works](../design.md).",
        [
            ("The contract",
             # The contract is stated once, in base's module docstring.
             "::: gradtx._src.base\n"
             "    options:\n"
             "      show_root_heading: false\n"
             "      show_root_toc_entry: false\n"
             "      members: false\n",
             ["GradientTransformation", "with_extra_args_support",
              "takes_extra_args", "call_update", "EmptyState", "identity",
              "stateless", "stateless_with_tree_map"]),
            ("Scaling", "",
             ["scale", "scale_by_learning_rate", "scale_by_schedule"]),
            ("Momentum and moving averages", "", ["trace", "ema"]),
            ("Adaptive scalings",
             "Per-parameter scalings: Adagrad, RMSProp, Adam, Adamax, "
             "Adadelta, Rprop.",
             ["scale_by_rss", "scale_by_rms", "scale_by_stddev",
              "scale_by_adam", "scale_by_adamax", "scale_by_adadelta",
              "scale_by_rprop"]),
            ("Adam-family pieces",
             "They read the moments that `scale_by_adam` hands along a "
             "`gradtx.chain`; see [How composition works](../design.md).",
             ["amsgrad_max", "rectify", "bound_lr"]),
            ("Additive terms", "", ["add_decayed_weights", "add_noise"]),
            ("Clipping", "", ["clip", "clip_by_global_norm"]),
        ]),
    "wrappers.md": (
        "Wrappers and combinators",
        "Transforms built from other transforms; the guide is "
        "[Wrappers](../optimizers/wrappers.md).",
        [
            ("Combining transforms", "",
             ["chain", "named_chain", "partition", "masked", "freeze"]),
            ("Wrapping an optimizer", "",
             ["lookahead", "MultiSteps", "skip_not_finite",
              "skip_large_updates", "apply_if_finite", "ema_params",
              "flatten", "inject_hyperparams", "InjectHyperparamsState"]),
        ]),
    "schedules.md": (
        "Schedules",
        "Functions of the step count, usable wherever a hyperparameter is; "
        "the guide, with plots, is [Schedules](../schedules.md).",
        [
            ("Basic shapes", "",
             ["constant_schedule", "linear_schedule", "polynomial_schedule",
              "piecewise_constant_schedule", "join_schedules"]),
            ("Decay", "",
             ["exponential_decay", "inverse_time_decay", "inverse_sqrt_decay",
              "cosine_decay_schedule"]),
            ("Warm-up, restarts and cycles", "",
             ["warmup_cosine_decay_schedule",
              "warmup_exponential_decay_schedule", "sgdr_schedule",
              "cosine_warm_restarts_schedule", "linear_onecycle_schedule",
              "cosine_onecycle_schedule", "cyclic_schedule"]),
        ]),
    "second-order.md": (
        "Second order",
        "Quasi-Newton and Newton-type methods, line searches and solvers; "
        "the L-BFGS guide is [L-BFGS](../lbfgs.md).",
        [
            ("L-BFGS", "", ["lbfgs", "scale_by_lbfgs",
                            "value_and_grad_from_state"]),
            ("Line searches", "",
             ["scale_by_zoom_linesearch",
              "scale_by_backtracking_linesearch"]),
            ("Newton-type methods", "",
             ["bfgs", "scale_by_bfgs", "newton", "scale_by_newton",
              "newton_cg", "scale_by_newton_cg", "scale_by_hessian_diag",
              "natural_gradient", "scale_by_natural_gradient"]),
            ("Per-parameter rates from curvature", "",
             ["vsgd", "scale_by_vsgd"]),
            ("Least squares", "",
             ["gauss_newton", "levenberg_marquardt", "least_squares"]),
            ("Solvers", "", ["minimize"]),
        ]),
    "utilities.md": (
        "Utilities",
        "",
        [
            ("Applying updates and counting steps", "",
             ["apply_updates", "safe_increment"]),
            ("Trees", "",
             ["tree_zeros_like", "tree_full_like", "tree_cast",
              "tree_global_norm"]),
            ("The learning-rate range test", "", ["lr_find"]),
        ]),
}

# Where the "source" links point: the repository's default branch.
SOURCE_REF = "main"


# --------------------------------------------------------------------------
# Reading the package


def _write_if_changed(path: pathlib.Path, text: str) -> None:
  if not path.exists() or path.read_text() != text:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _literal_all(tree: ast.Module) -> list[str]:
  """``__all__`` read from the module's source: a literal, or later
  assignments that add literal tuples to it (``__all__ + _MORE``, possibly
  inside ``tuple(sorted(...))``)."""
  tuples: dict[str, list[str]] = {}
  names: list[str] = []

  def strings(expr: ast.expr) -> list[str]:
    if isinstance(expr, ast.Name):
      return list(tuples.get(expr.id, ()))
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
      return strings(expr.left) + strings(expr.right)
    if isinstance(expr, ast.Call) and expr.args:
      return strings(expr.args[0])
    return list(ast.literal_eval(expr))

  for node in tree.body:
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)):
      continue
    target = node.targets[0].id
    if target == "__all__":
      tuples["__all__"] = names = strings(node.value)
    else:
      try:
        value = ast.literal_eval(node.value)
      except ValueError:
        continue
      if isinstance(value, (tuple, list)) and all(
          isinstance(v, str) for v in value):
        tuples[target] = list(value)
  return names


@functools.lru_cache(maxsize=256)
def _parse_text(text: str) -> ast.Module:
  return ast.parse(text)


def _parse(path: pathlib.Path) -> ast.Module:
  """``path``'s syntax tree, parsed once per content: a build reads each
  module once per public name (under ``mkdocs serve`` an edited file is
  parsed again). Callers must not modify it."""
  return _parse_text(path.read_text())


def public_names() -> list[tuple[str, str]]:
  """``(name, module)`` for every name of ``gradtx.__all__``, where
  ``module`` is the ``gradtx._src`` module it is imported from."""
  tree = _parse(PKG / "__init__.py")
  origin = {}
  for node in tree.body:
    if isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        origin[alias.asname or alias.name] = node.module
  return [(name, origin.get(name, "gradtx")) for name in _literal_all(tree)]


def _module_path(module: str) -> pathlib.Path:
  return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def definitions(module: str) -> dict[str, tuple[int, bool]]:
  """``name -> (line, is_class)`` for the top-level definitions of a
  module, in source order."""
  path = _module_path(module)
  if not path.exists():
    return {}
  out = {}
  for node in _parse(path).body:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
      out[node.name] = (node.lineno, isinstance(node, ast.ClassDef))
    elif isinstance(node, (ast.Assign, ast.AnnAssign)):
      targets = node.targets if isinstance(node, ast.Assign) else [node.target]
      for t in targets:
        if isinstance(t, ast.Name):
          out[t.id] = (node.lineno, False)
  return out


def categorise() -> tuple[dict[str, dict[str, list[str]]],
                          dict[str, list[str]], list[str]]:
  """Places every name of ``gradtx.__all__``.

  Returns ``(placed, attached, uncategorised)``: ``placed[page][section]``
  lists the names ``API_PAGES`` gives there that exist; ``attached[name]``
  the public classes shown right after ``name`` (those above it in its
  module, down to the previous listed name); ``uncategorised`` the names
  that neither rule places.
  """
  names = dict(public_names())
  listed = {n for _, _, sections in API_PAGES.values()
            for _, _, ns in sections for n in ns}
  placed = {page: {heading: [n for n in ns if n in names]
                   for heading, _, ns in sections}
            for page, (_, _, sections) in API_PAGES.items()}
  attached: dict[str, list[str]] = {}
  uncategorised = []
  by_module: dict[str, list[str]] = {}
  for name, module in names.items():
    by_module.setdefault(module, []).append(name)
  for module, members in by_module.items():
    defs = definitions(module)
    order = sorted(members, key=lambda n: (defs.get(n, (10**9,))[0], n))
    pending: list[str] = []
    for name in order:
      if name in listed:
        attached[name] = pending
        pending = []
      elif defs.get(name, (0, False))[1]:
        pending.append(name)
      else:
        uncategorised.append(name)
    uncategorised += pending
  return placed, attached, sorted(uncategorised)


# --------------------------------------------------------------------------
# The state a transform keeps, worked out by building it


def _spec(x: Any, indent: int = 0, width: int = 72) -> str:
  """A pytree of ``jax.ShapeDtypeStruct`` as text: ``f32[3]`` for an
  array, ``Name(field=...)`` for a NamedTuple; one line when it fits in
  ``width``, else one member a line."""
  import jax
  if isinstance(x, jax.ShapeDtypeStruct):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return f"key[{','.join(map(str, x.shape))}]"
    kind = {"f": "f", "i": "i", "u": "u", "b": "bool", "c": "c"}.get(
        x.dtype.kind, str(x.dtype))
    bits = "" if kind == "bool" else str(x.dtype.itemsize * 8)
    return f"{kind}{bits}[{','.join(map(str, x.shape))}]"
  if x is None:
    return "None"
  if isinstance(x, tuple) and hasattr(x, "_fields"):
    items = [(f"{f}=", v) for f, v in zip(x._fields, x)]
    open_, close = f"{type(x).__name__}(", ")"
  elif isinstance(x, (tuple, list)):
    items = [("", v) for v in x]
    open_, close = ("(", ",)" if len(x) == 1 else ")") if isinstance(
        x, tuple) else ("[", "]")
  elif isinstance(x, dict):
    items = [(f"{k!r}: ", v) for k, v in x.items()]
    open_, close = "{", "}"
  else:
    return type(x).__name__
  flat = open_ + ", ".join(k + _spec(v, 0, 10**9) for k, v in items) + close
  if indent + len(flat) <= width or not items:
    return flat
  pad = " " * (indent + 2)
  inner = [pad + k + _spec(v, indent + 2, width - len(k)) + ","
           for k, v in items]
  return "\n".join([open_, *inner, " " * indent + close.lstrip(",")])


# Values for the required arguments when a factory is built to show its
# state: (value, how the entry shows it), by argument name. An argument
# annotated as a transform gets INNER.
FILL = {"learning_rate": (0.1, "0.1"), "key": (0, "0"),
        "every_k_schedule": (4, "4"), "max_consecutive_errors": (5, "5"),
        "max_linesearch_steps": (15, "15"),
        "max_backtracking_steps": (15, "15"), "mask": (True, "True")}
INNER = ("gradtx.sgd(0.1, momentum=0.9)",
         lambda gradtx: gradtx.sgd(0.1, momentum=0.9))


def state_of(name: str) -> tuple[str, str] | None:
  """``(call, structure)``: how ``gradtx.<name>`` was built, and the
  structure of its ``init(params)`` for params ``f32[3]`` (from
  ``jax.eval_shape``). The factory gets its defaults and ``FILL``'s values;
  None when it cannot be built that way."""
  try:
    import inspect

    import jax
    import jax.numpy as jnp

    import gradtx
    factory = getattr(gradtx, name)
    if inspect.isclass(factory) and factory is not gradtx.MultiSteps:
      return None
    kwargs, shown = {}, []
    for p in inspect.signature(factory).parameters.values():
      if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
        return None  # a combinator: its state is its members'
      if p.default is p.empty and "GradientTransformation" in str(
          p.annotation):
        kwargs[p.name] = INNER[1](gradtx)
        shown.append(f"{p.name}={INNER[0]}")
      elif p.name in FILL and (p.default is p.empty or (
          p.name == "key" and p.default is None)):
        kwargs[p.name], text = FILL[p.name]
        shown.append(f"{p.name}={text}")
      elif p.default is p.empty:
        return None
    tx = factory(**kwargs)
    if not isinstance(tx, gradtx.GradientTransformation):
      tx = getattr(tx, "gradient_transformation", lambda: None)()
      if not isinstance(tx, gradtx.GradientTransformation):
        return None
    structure = _spec(jax.eval_shape(tx.init, jnp.zeros(3, jnp.float32)))
    return f"gradtx.{name}({', '.join(shown)})", structure
  except Exception:  # any failure: the entry goes without
    return None


# --------------------------------------------------------------------------
# The API pages


def _source_url(repo_url: str, module: str, line: int | None) -> str:
  path = _module_path(module).relative_to(ROOT).as_posix()
  anchor = f"#L{line}" if line else ""
  return f"{repo_url.rstrip('/')}/blob/{SOURCE_REF}/{path}{anchor}"


def _entry(ident: str, module: str, repo_url: str,
           state: tuple[str, str] | None = None,
           state_classes: tuple = ()) -> list[str]:
  short = ident.rsplit(".", 1)[-1]
  line = definitions(module).get(short, (None,))[0]
  out = [f"::: {ident}", ""]
  states = [c for c in state_classes if c.endswith("State")]
  if states:
    links = ", ".join(f"[`{c}`][gradtx.{c}]" for c in states)
    out += [f"**State:** {links}.", ""]
  if state:
    call, structure = state
    out += [f"**State** of `tx = {call}` for params `f32[3]`, as "
            "`jax.eval_shape(tx.init, params)` gives it:", "",
            "```text", structure, "```", ""]
  path = _module_path(module).relative_to(ROOT).as_posix()
  out += [f"[Source: `{path}`]({_source_url(repo_url, module, line)})"
          "{ .gradtx-source }", "", "---", ""]
  return out


def api_pages(repo_url: str, with_state: bool = True) -> dict[str, str]:
  """The text of every page of ``docs/api/``, by file name."""
  modules = dict(public_names())
  placed, attached, uncategorised = categorise()
  pages = {}
  category_of = {}
  for page, (title, intro, sections) in API_PAGES.items():
    out = [f"# {title}", "",
           "<!-- Generated by docs/hooks.py; do not edit. -->", ""]
    if intro:
      out += [intro, ""]
    body = []
    for heading, blurb, _ in sections:
      names = placed[page][heading]
      if not names:
        continue
      body += [f"## {heading}", ""]
      if blurb:
        body += [blurb, ""]
      for name in names:
        classes = tuple(attached.get(name, ()))
        state = state_of(name) if with_state else None
        body += _entry(f"gradtx.{name}", modules[name], repo_url, state,
                       classes)
        category_of[name] = page
        for c in classes:
          body += _entry(f"gradtx.{c}", modules[c], repo_url)
          category_of[c] = page
    if not body:
      body = ["Nothing in this category in this version of gradtx.", ""]
    pages[page] = "\n".join(out + body)
  pages["gradtx.md"] = index_page(category_of, uncategorised)
  pages["torch_like.md"] = torch_like_page(repo_url)
  return pages


def summary(module: str, name: str) -> str:
  """The first line of ``name``'s docstring in ``module``, as Markdown."""
  path = _module_path(module)
  if not path.exists():
    return ""
  for node in _parse(path).body:
    if (isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and node.name == name):
      doc = (ast.get_docstring(node) or "").strip()
      first = doc.split("\n\n")[0].replace("\n", " ")
      first = re.sub(r":math:`([^`]+)`", r"$\1$", first)
      first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first)
      first = re.sub(r"``([^`]+)``", r"`\1`", first)
      return first.replace("|", "\\|")
  return ""


def index_page(category_of: dict[str, str], uncategorised: list[str]) -> str:
  names = public_names()
  modules = dict(names)
  out = [
      "# API reference",
      "",
      "<!-- Generated by docs/hooks.py; do not edit. -->",
      "",
      f"Every public name of `gradtx` ({len(names)} in `gradtx.__all__`), "
      "one page per category. Import them from `gradtx` itself: "
      "`gradtx._src` is private. The PyTorch presets are in "
      "[`gradtx.torch_like`](torch_like.md).",
      "",
      "Each entry gives the signature, every argument with its type and "
      "default, what the function returns, the state the transform keeps "
      "(its state class, and the structure `init` returns), an example and "
      "a link to the source.",
      "",
  ]
  for page, (title, _, _) in API_PAGES.items():
    members = sorted((n for n, p in category_of.items() if p == page),
                     key=str.lower)
    if not members:
      continue
    out += [f"## [{title}]({page})", "", "| name | summary |", "|---|---|"]
    # The id keeps links to api/gradtx.md#gradtx.NAME working.
    out += [f"| [`{n}`][gradtx.{n}]{{ #gradtx.{n} }} | "
            f"{summary(modules[n], n)} |" for n in members]
    out.append("")
  if uncategorised:
    out += ["## Not yet in a category", "",
            "docs/hooks.py's `API_PAGES` does not place these names:", "",
            ", ".join(f"`{n}`" for n in uncategorised), ""]
    out += [f"::: gradtx.{n}\n" for n in uncategorised]
  return "\n".join(out)


def torch_like_page(repo_url: str) -> str:
  module = "gradtx.torch_like"
  tree = _parse(_module_path(module))
  names = _literal_all(tree)
  # The presets are defined in torch_like.py; the update rules they add are
  # imported from gradtx._src.torch_rules: rules first, then the presets.
  origin = {alias.asname or alias.name: node.module
            for node in tree.body if isinstance(node, ast.ImportFrom)
            and node.module for alias in node.names}
  where = {n: origin.get(n, module) for n in names}
  order = {m: i for i, m in enumerate(dict.fromkeys(
      sorted(set(where.values()), key=lambda m: m == module)))}
  names.sort(key=lambda n: (order[where[n]],
                            definitions(where[n]).get(n, (10**9,))[0]))
  out = [
      "# API reference: `gradtx.torch_like`",
      "",
      "<!-- Generated by docs/hooks.py from gradtx.torch_like.__all__; do "
      "not edit. -->",
      "",
      "::: gradtx.torch_like",
      "    options:",
      "      show_root_heading: false",
      "      show_root_toc_entry: false",
      "      members: false",
      "",
      "See [Migrating from PyTorch](../migrating/pytorch.md) for a guide.",
      "",
  ]
  for name in names:
    out += _entry(f"{module}.{name}", where[name], repo_url)
  return "\n".join(out)


# --------------------------------------------------------------------------
# The examples gallery


def example_names() -> list[str]:
  return sorted(p.stem for p in (ROOT / "examples").glob("*.py"))


def _docstring(path: pathlib.Path) -> str:
  try:
    return ast.get_docstring(_parse(path)) or ""
  except SyntaxError:
    return ""


def gallery_record(name: str) -> dict | None:
  path = GALLERY / f"{name}.json"
  return json.loads(path.read_text()) if path.exists() else None


def gallery_page(name: str, repo_url: str) -> str:
  script = ROOT / "examples" / f"{name}.py"
  code = script.read_text()
  doc = _docstring(script)
  title, _, rest = doc.partition("\n")
  rec = gallery_record(name)
  digest = hashlib.sha256(script.read_bytes()).hexdigest()
  fence = "````" if "```" in code else "```"
  out = [f"# {name}.py", "",
         "<!-- Generated by docs/hooks.py from examples/; do not edit. -->",
         ""]
  if title:
    out += [f"*{title.strip()}*", ""]
  if rest.strip():
    out += [rest.strip(), ""]
  url = (f"{repo_url.rstrip('/')}/blob/{SOURCE_REF}/examples/{name}.py")
  out += [f"[`examples/{name}.py` in the repository]({url})", ""]
  if rec is None or rec.get("sha256") != digest:
    out += ['!!! warning "No recorded output"', "",
            "    This version of the script has not been run for the "
            "gallery: `python docs/make_gallery.py " + name + "` records "
            "it.", ""]
  else:
    out += ["## Output", "",
            f"`{rec['command']}` printed (it ran in {rec['seconds']:g} s):",
            "", "```text", rec["output"].rstrip("\n") or
            "(nothing)", "```", ""]
    for k, fig in enumerate(rec.get("figures", []), 1):
      out += [f"![Figure {k} of {name}.py](../gallery/{fig})", ""]
  out += ["## Code", "", f"{fence}python", code.rstrip("\n"), fence, ""]
  return "\n".join(out)


def gallery_index() -> str:
  out = ["# Examples", "",
         "<!-- Generated by docs/hooks.py from examples/; do not edit. -->",
         "",
         "Complete scripts from the repository's `examples/` folder, each "
         "with what it prints. Run one from a checkout with "
         "`python examples/NAME.py` (the `examples` extra installs what "
         "they import).", "",
         "| example | what it shows |", "|---|---|"]
  for name in example_names():
    title = _docstring(ROOT / "examples" / f"{name}.py").partition("\n")[0]
    title = title.replace("|", "\\|")
    out.append(f"| [{name}.py]({name}.md) | {title} |")
  return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# The Performance page's tables


def _cell(v: Any) -> str:
  if isinstance(v, float):
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
  if isinstance(v, (list, tuple)):
    return ", ".join(_cell(x) for x in v)
  if isinstance(v, dict):
    return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items())
  return str(v).replace("|", "\\|").replace("\n", " ")


def _generic_table(rows: list[dict]) -> list[str]:
  """A table with a column per key of the rows (nested values flattened)."""
  cols: list[str] = []
  for r in rows:
    cols += [k for k in r if k not in cols]
  out = ["| " + " | ".join(cols) + " |",
         "|" + "|".join("---" for _ in cols) + "|"]
  for r in rows:
    out.append("| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |")
  return out


def _machine(m: dict) -> list[str]:
  out = []
  keys = [("time", "date"), ("cpu_model", "CPU"), ("cpu_count", "cores"),
          ("cpus_usable", "cores usable"), ("mem_total_bytes", "memory"),
          ("backend", "backend"), ("devices", "devices"),
          ("platform", "platform"), ("python", "Python"), ("jax", "jax"),
          ("jaxlib", "jaxlib"), ("optax", "optax"), ("gradtx", "gradtx"),
          ("loadavg_start", "load average at start"),
          ("loadavg_end", "load average at end")]
  for key, label in keys:
    if key in m:
      v = m[key]
      if key == "mem_total_bytes":
        v = f"{v / 2**30:.1f} GiB"
      out.append(f"| {label} | {_cell(v)} |")
  for key, v in m.items():
    if key not in dict(keys):
      out.append(f"| {key} | {_cell(v)} |")
  return ["| | |", "|---|---|", *out] if out else []


_STEP_KEYS = ("tree", "optimizer", "gradtx_ms", "optax_ms", "ratio",
              "gradtx_compile_s", "optax_compile_s",
              "gradtx_state_bytes_per_param")


def _step_tables(results: list[dict], trees: dict) -> list[str]:
  """benchmarks/bench.py's rows, a table per tree, narrow enough for the
  page (the row's meaning is in the list below the tables)."""
  out = ["Step time of gradtx against optax on the same tree (median over "
         "interleaved pairs; a ratio below 1: gradtx faster), compile "
         "time, and optimizer state bytes per parameter. A `*` marks an "
         "optax baseline compiled once and reused for several rows.", ""]
  for tree in dict.fromkeys(r["tree"] for r in results):
    info = trees.get(tree, {})
    what = info.get("description", "")
    size = (f" ({info['leaves']} leaves, {info['params']:,} params)"
            if "leaves" in info and "params" in info else "")
    out += [f"#### `{tree}`: {what}{size}", "",
            "| row | gradtx ms | optax ms | ratio | compile s, gradtx / "
            "optax | state B/param, gradtx / optax |",
            "|---|---:|---:|---:|---:|---:|"]
    for r in results:
      if r["tree"] != tree:
        continue
      reused = "*" if r.get("optax_compile_reused_from") else ""
      state = f"{r['gradtx_state_bytes_per_param']:.1f}"
      if "optax_state_bytes_per_param" in r:
        state += f" / {r['optax_state_bytes_per_param']:.1f}"
      out.append(
          f"| `{r['optimizer']}` | {r['gradtx_ms']:.2f} | "
          f"{r['optax_ms']:.2f} | {r['ratio']:.3f} | "
          f"{r['gradtx_compile_s']:.2f} / {r['optax_compile_s']:.2f}"
          f"{reused} | {state} |")
    out.append("")
  return out


def _load(avg: Any) -> str:
  """The 1-minute load average of a recorded ``[1, 5, 15]`` triple."""
  if isinstance(avg, (list, tuple)) and avg:
    return f"{avg[0]:.1f}"
  return "unrecorded"


def benchmark_section(path: pathlib.Path) -> list[str]:
  data = json.loads(path.read_text())
  rel = path.relative_to(ROOT).as_posix()
  out = []
  machine = data.get("machine") or {}
  when = machine.get("time", "an unrecorded date")
  out += [f"### `{rel}`", "",
          f"Measured on {when}"
          + (f", {machine.get('backend')} backend" if "backend" in machine
             else "") + ".", ""]
  head = data.get("header")
  if isinstance(head, dict) and data.get("markdown_table"):
    # The TPU-AOT benchmark: a header and its own table.
    out[-2] = (f"{head.get('target', 'Compiled')}, on {head.get('date')}: "
               f"{head.get('machine')}, jax {head.get('jax')}, libtpu "
               f"{head.get('libtpu')}, optax {head.get('optax')}, load "
               f"average {_load(head.get('loadavg_start'))} at the start and "
               f"{_load(head.get('loadavg_end'))} at the end.")
    if head.get("note"):
      out += [_cell(head["note"]), ""]
    out += [data["markdown_table"].strip(), ""]
  results = [r for r in data.get("results", []) if isinstance(r, dict)]
  if results and all(k in r for r in results for k in _STEP_KEYS):
    out += _step_tables(results, data.get("trees") or {})
  elif results:
    out += _generic_table(results) + [""]
  if data.get("markdown_bound_table"):
    out += ["The `bound` rows: gradtx.adam against the same Adam step "
            "written by hand as one expression over one flat buffer, and "
            "the memory bandwidth each reaches.", "",
            data["markdown_bound_table"].strip(), ""]
  # What each row compares, as the benchmark recorded it.
  meanings = {}
  for r in results:
    if {"optimizer", "label", "optax_baseline"} <= set(r):
      meanings.setdefault(r["optimizer"], (
          f"- `{r['optimizer']}`: gradtx's {_cell(r['label'])} against "
          f"{_cell(r['optax_baseline'])}."))
  if meanings:
    out += ["What the rows compare:", "", *meanings.values(), ""]
  trees = data.get("trees")
  if isinstance(trees, dict) and trees:
    out += ["The trees:", "", "| tree | what | leaves | params |",
            "|---|---|---:|---:|"]
    for t, info in trees.items():
      out.append(f"| `{t}` | {_cell(info.get('description', ''))} | "
                 f"{info.get('leaves', '')} | "
                 f"{info.get('params', 0):,} |")
    out.append("")
  if machine:
    out += ["The machine:", "", *_machine(machine), ""]
  if "total_runtime_s" in data:
    out += [f"The whole run took {data['total_runtime_s']:.0f} s.", ""]
  return out


def benchmark_results() -> str:
  files = sorted(BENCHMARKS.glob("results*.json"),
                 key=lambda p: (p.name != "results.json", p.name))
  if not files:
    return "No benchmark results in this checkout (`benchmarks/*.json`).\n"
  out: list[str] = []
  for path in files:
    out += benchmark_section(path)
  return "\n".join(out)


# --------------------------------------------------------------------------
# Figures


def _figure_inputs_hash() -> str:
  h = hashlib.sha256()
  for path in [DOCS / "make_figures.py", *sorted(PKG.rglob("*.py"))]:
    h.update(str(path.relative_to(ROOT)).encode())
    h.update(path.read_bytes())
  return h.hexdigest()


def make_figures() -> None:
  stamp = FIGURES / ".stamp"
  digest = _figure_inputs_hash()
  if stamp.exists():
    recorded, *files = stamp.read_text().split()
    if recorded == digest and all((FIGURES / f).exists() for f in files):
      return
  start = time.perf_counter()
  # The figures show the gradtx of this source tree, installed or not.
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(
      filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
  proc = subprocess.run(
      [sys.executable, str(DOCS / "make_figures.py"), "--out", str(FIGURES)],
      cwd=ROOT, env=env, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"docs/make_figures.py failed:\n{proc.stderr}")
  files = sorted(p.name for p in FIGURES.glob("*.png"))
  files += [p.name for p in FIGURES.glob("*.json")]
  stamp.write_text("\n".join([digest, *files]) + "\n")
  log.info("figures: %d made in %.1f s", len(files),
           time.perf_counter() - start)


# --------------------------------------------------------------------------
# The hooks

# Guide pages that not every checkout has: their nav entries are dropped
# when the page is missing (the API reference's page of the same category
# is generated whatever the checkout).
OPTIONAL_PAGES = {"second-order.md"}


def _prune_nav(nav: Any) -> Any:
  if isinstance(nav, list):
    return [x for x in (_prune_nav(i) for i in nav) if x is not None]
  if isinstance(nav, dict):
    out = {k: _prune_nav(v) for k, v in nav.items()}
    return None if any(v is None for v in out.values()) else out
  if isinstance(nav, str) and nav in OPTIONAL_PAGES:
    return nav if (DOCS / nav).exists() else None
  return nav


def _gallery_nav(nav: list) -> list:
  pages = [{"Overview": "examples/index.md"}] + [
      {f"{n}.py": f"examples/{n}.md"} for n in example_names()]
  out = []
  for item in nav:
    if isinstance(item, dict) and item.get("Examples") == "examples/index.md":
      item = {"Examples": pages}
    out.append(item)
  return out


def on_config(config: Any, **kwargs: Any) -> Any:
  del kwargs
  config["nav"] = _gallery_nav(_prune_nav(config["nav"]))
  return config


def on_pre_build(config: Any, **kwargs: Any) -> None:
  del kwargs
  repo_url = config.get("repo_url") or ""
  for name, text in api_pages(repo_url).items():
    _write_if_changed(API / name, text)
  _write_if_changed(EXAMPLES_OUT / "index.md", gallery_index())
  wanted = {"index.md"}
  for name in example_names():
    _write_if_changed(EXAMPLES_OUT / f"{name}.md",
                      gallery_page(name, repo_url))
    wanted.add(f"{name}.md")
  for stale in EXAMPLES_OUT.glob("*.md"):
    if stale.name not in wanted:
      stale.unlink()
  make_figures()


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
  """Generated pages have no source file to edit or view."""
  del config, kwargs
  for f in files:
    if f.src_uri.startswith(("api/", "examples/")):
      f.edit_uri = None
  return files


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
  del kwargs
  if page.file.src_uri == "performance.md":
    return markdown.replace("<!-- benchmark results -->",
                            benchmark_results())
  return markdown
