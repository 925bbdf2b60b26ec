"""A griffe extension that lets mkdocstrings read gradtx's docstrings.

mkdocs.yml loads it (``plugins: mkdocstrings: ... extensions:``). It does
two things when griffe has loaded the ``gradtx`` package:

1. It loads ``gradtx/_src/*.py`` and the subpackages of ``gradtx/_src``
   (``second_order/``, ``tools/``). ``gradtx/_src`` has no ``__init__.py``
   (Python imports it as a namespace package), and griffe skips such
   folders, so without this every ``gradtx.adam`` would be an alias to an
   object griffe never saw.
2. It rewrites the reStructuredText that the docstrings use into the
   Markdown that mkdocstrings renders (with pymdownx.arithmatex for maths):

   * ``.. math::`` blocks become ``$$ ... $$`` blocks and ``:math:`x```
     becomes ``$x$``;
   * ``:func:`name```, ``:class:`name``` and ``:mod:`name``` become links
     to the API reference when ``name`` is documented there (a name of
     ``gradtx.__all__``, or of ``gradtx.torch_like.__all__`` inside that
     module), and code otherwise;
   * a paragraph ending in ``::`` (a literal block follows) ends in ``:``;
   * a doctest block (``>>>`` lines and their output, up to a blank line)
     becomes a fenced ``pycon`` code block, so it renders as code wherever
     it is: in a module docstring, or in an ``Example:`` section, which
     griffe renders as an admonition of Markdown text.

Docstrings stay plain reStructuredText in the source, which is what
``help()`` shows; only the copy griffe renders is rewritten.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|obj|data|exc):`(~?)([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_BLOCK = re.compile(r"^(\s*)\.\. math::[ \t]*(.*)$")
_LITERAL = re.compile(r"(?<=\S)::$")


def _indent(line: str) -> int:
  return len(line) - len(line.lstrip())


def _doctest_blocks(lines: list[str]) -> list[str]:
  out: list[str] = []
  i = 0
  while i < len(lines):
    if not lines[i].lstrip().startswith(">>>"):
      out.append(lines[i])
      i += 1
      continue
    pad = " " * _indent(lines[i])
    out.append(pad + "```pycon")
    while i < len(lines) and lines[i].strip():
      out.append(lines[i])
      i += 1
    out.append(pad + "```")
  return out


def _math_blocks(lines: list[str]) -> list[str]:
  out: list[str] = []
  i = 0
  while i < len(lines):
    m = _MATH_BLOCK.match(lines[i])
    if not m:
      out.append(lines[i])
      i += 1
      continue
    pad, first = m.groups()
    body = []
    i += 1
    while i < len(lines) and (not lines[i].strip()
                              or _indent(lines[i]) > len(pad)):
      # A math block is one Markdown block: no blank lines inside it.
      if lines[i].strip():
        body.append(lines[i])
      i += 1
    cut = min((_indent(b) for b in body), default=0)
    body = ([first.strip()] if first.strip() else []) + [b[cut:] for b in body]
    if out and out[-1].strip():
      out.append("")
    out += [pad + "$$"] + [pad + b for b in body] + [pad + "$$", ""]
  return out


class Rst2Markdown:
  """Turns the docstrings' reStructuredText roles and directives into
  Markdown, linking roles that name documented objects."""

  def __init__(self, documented: set[str]):
    self.documented = documented

  def _role(self, m: re.Match, namespace: str) -> str:
    tilde, target = m.groups()
    target = target.strip()
    text = target.rsplit(".", 1)[-1] if tilde else target
    candidates = [target] if target.startswith("gradtx.") else [
        f"{namespace}.{target}", f"gradtx.{target}"]
    for ident in candidates:
      if ident in self.documented:
        return f"[`{text}`][{ident}]"
    return f"`{text}`"

  def convert(self, text: str, path: str) -> str:
    namespace = ("gradtx.torch_like" if path.startswith("gradtx.torch_like")
                 else "gradtx")
    out, in_code = [], False
    for line in _doctest_blocks(_math_blocks(text.split("\n"))):
      if line.lstrip().startswith("```"):
        in_code = not in_code
      elif not in_code:
        line = _MATH_ROLE.sub(lambda m: f"${m.group(1).strip()}$", line)
        line = _ROLE.sub(lambda m: self._role(m, namespace), line)
        line = _LITERAL.sub(":", line)
      out.append(line)
    return "\n".join(out)


def _exports(module: Any) -> list[str]:
  return [str(name) for name in (module.exports or ())]


def _walk(obj: Any) -> Iterable[Any]:
  for member in list(obj.members.values()):
    if member.is_alias:
      continue
    yield member
    if member.is_module or member.is_class:
      yield from _walk(member)


class GradtxExtension(griffe.Extension):
  """Loads ``gradtx._src`` and converts every docstring (see module doc)."""

  def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader,
                 **kwargs: Any) -> None:
    if pkg.name != "gradtx":
      return
    src_dir = pkg.filepath.parent / "_src"
    if "_src" not in pkg.members and src_dir.is_dir():
      src = griffe.Module("_src", filepath=src_dir, parent=pkg)
      pkg.set_member("_src", src)
      for path in sorted(src_dir.glob("*.py")):
        src.set_member(path.stem, loader._load_module(  # noqa: SLF001
            path.stem, path, submodules=False, parent=src))
      for init in sorted(src_dir.glob("*/__init__.py")):
        name = init.parent.name
        src.set_member(name, loader._load_module(  # noqa: SLF001
            name, init, submodules=True, parent=src))
    documented = {f"gradtx.{n}" for n in _exports(pkg)}
    if "torch_like" in pkg.members:
      documented |= {f"gradtx.torch_like.{n}"
                     for n in _exports(pkg.members["torch_like"])}
      documented.add("gradtx.torch_like")
    rst = Rst2Markdown(documented)
    for obj in [pkg, *_walk(pkg)]:
      if obj.docstring is not None:
        obj.docstring.value = rst.convert(obj.docstring.value, obj.path)
