"""Run optax 0.2.8's own test modules with gradtx's exports in place of optax's.

Each module is loaded twice from the installed optax wheel: once as shipped
(the baseline) and once with a private ``__import__`` in the module's globals,
so that every ``import optax`` / ``from optax._src import alias`` /
``from optax.transforms import _masking`` the test module runs hands it a
*swapped view* of that optax module: any attribute whose name gradtx exports
is gradtx's object, everything else is optax's. optax itself is untouched (its
own modules keep their references), so only what the tests call directly is
gradtx's, exactly what a user who swaps ``import optax`` for gradtx would run.

The tests are absltest (unittest) cases and run under ``unittest`` in a fresh
interpreter per call, with JAX at its defaults (float32, rank promotion
allowed) as optax's suite expects, untouched by the project's conftest.

Usage::

    python tests/upstream/runner.py                # the CI modules, table
    python tests/upstream/runner.py --all          # every module
    python tests/upstream/runner.py --all --markdown   # table for the docs
    python tests/upstream/runner.py --json out.json _src/alias_test.py

The pytest side is ``tests/upstream/test_upstream.py``.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import pathlib
import subprocess
import sys
import time
import types
import unittest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Modules testing what gradtx also has. ``FAST`` is what the ordinary
# ``python -m pytest`` runs (under a minute of CPU with the optax baseline
# cached); ``SLOW`` runs with ``--upstream-all``.
FAST = (
    "_src/base_test.py",
    "_src/update_test.py",
    "_src/combine_test.py",
    "_src/transform_test.py",
    "transforms/_adding_test.py",
    "transforms/_clipping_test.py",
    "transforms/_masking_test.py",
    "transforms/_freezing_test.py",
    "transforms/_combining_test.py",
    "transforms/_layouts_test.py",
    "transforms/_conditionality_test.py",
    "schedules/_join_test.py",
    "schedules/_schedule_test.py",
    "tree_utils/_state_utils_test.py",
    "schedules/_inject_test.py",
    "transforms/_accumulation_test.py",
    "_src/lookahead_test.py",
)
SLOW = (
    "_src/alias_test.py",
    "_src/linesearch_test.py",
    "_src/float64_test.py",
)
ALL = FAST + SLOW

# Names optax spells differently, per optax module: optax name -> gradtx name.
RENAMES = {
    "optax.tree": {
        "full_like": "tree_full_like",
        "zeros_like": "tree_zeros_like",
        "cast": "tree_cast",
    },
    "optax.tree_utils": {},
}


def optax_dir() -> pathlib.Path:
  import optax  # pylint: disable=import-outside-toplevel

  return pathlib.Path(optax.__file__).resolve().parent


# ---------------------------------------------------------------- swapping


class _Swapped(types.ModuleType):
  """A view of one optax module with gradtx's same-named objects on top."""

  def __init__(self, real, swap):
    super().__init__(real.__name__, getattr(real, "__doc__", None))
    object.__setattr__(self, "_real", real)
    object.__setattr__(self, "_swap", swap)
    object.__setattr__(self, "_cache", {})

  def __getattr__(self, name):
    real, swap, cache = self._real, self._swap, self._cache
    if name in cache:
      return cache[name]
    value = swap.lookup(real, name)
    cache[name] = value
    return value

  def __dir__(self):
    return dir(self._real)


class Swap:
  """gradtx's namespace, looked up by optax's names."""

  def __init__(self):
    sys.path.insert(0, str(ROOT))
    import gradtx  # pylint: disable=import-outside-toplevel

    self.gradtx = gradtx
    self.names = set(gradtx.__all__)
    self.views = {}
    self.used = set()

  def view(self, module):
    key = id(module)
    if key not in self.views:
      self.views[key] = _Swapped(module, self)
    return self.views[key]

  def lookup(self, real, name):
    value = getattr(real, name)
    if isinstance(value, types.ModuleType):
      # A submodule (optax._src.lookahead) is never swapped for a gradtx
      # function of the same name (gradtx.lookahead); its contents are.
      return self.view(value) if value.__name__.startswith("optax") else value
    renamed = RENAMES.get(real.__name__, {}).get(name, name)
    if renamed in self.names:
      self.used.add(renamed)
      return getattr(self.gradtx, renamed)
    return value

  def importer(self):
    real_import = builtins.__import__

    def swapped_import(name, globals=None, locals=None, fromlist=(), level=0):  # pylint: disable=redefined-builtin
      module = real_import(name, globals, locals, fromlist, level)
      if isinstance(module, types.ModuleType) and module.__name__.split(".")[0] == "optax":
        return self.view(module)
      return module

    return swapped_import


def load(path: str, swap: Swap | None) -> types.ModuleType:
  """Executes optax's test module ``path`` (relative to optax/) afresh."""
  file = optax_dir() / path
  name = "upstream_" + path.replace("/", "_").removesuffix(".py")
  module = types.ModuleType(name)
  module.__file__ = str(file)
  if swap is not None:
    module.__builtins__ = dict(vars(builtins), __import__=swap.importer())
  sys.modules[name] = module  # dataclasses and pickling look modules up
  exec(compile(file.read_text(), str(file), "exec"), module.__dict__)  # pylint: disable=exec-used
  return module


# ---------------------------------------------------------------- running


class _Result(unittest.TestResult):
  """Records one outcome per test id: pass, fail, error or skip."""

  def __init__(self, path):
    super().__init__()
    self.path = path
    self.outcomes = {}

  def _id(self, test):
    # "path::Class::test_name"; parameterized names may hold dots.
    return (f"{self.path}::{type(test).__name__}::"
            f"{getattr(test, '_testMethodName', test.id())}")

  def _set(self, test, outcome, err=None):
    key = self._id(getattr(test, "test_case", test))
    msg = ""
    if err is not None:
      etype, value, _ = err
      msg = f"{etype.__name__}: {str(value).strip().splitlines()[0] if str(value).strip() else ''}"[:300]
    previous = self.outcomes.get(key)
    if previous is None or previous[0] in ("pass", "skip"):
      self.outcomes[key] = (outcome, msg)

  def addSuccess(self, test):
    self._set(test, "pass")

  def addFailure(self, test, err):
    self._set(test, "fail", err)

  def addError(self, test, err):
    self._set(test, "error", err)

  def addSkip(self, test, reason):
    self._set(test, "skip")

  def addExpectedFailure(self, test, err):
    self._set(test, "pass")

  def addUnexpectedSuccess(self, test):
    self._set(test, "fail")

  def addSubTest(self, test, subtest, err):
    if err is not None:
      self._set(test, "fail" if issubclass(err[0], test.failureException) else "error", err)


def run_module(path: str, swap: Swap | None) -> dict:
  result = _Result(path)
  try:
    module = load(path, swap)
  except Exception as e:  # pylint: disable=broad-except
    return {f"{path}::<import>": ("error", f"{type(e).__name__}: {e}"[:300])}
  suite = unittest.defaultTestLoader.loadTestsFromModule(module)
  suite.run(result)
  return result.outcomes


def versions() -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel

  return {"optax": optax.__version__, "jax": jax.__version__}


BASELINE = HERE / "optax_baseline.json"


def load_baseline() -> dict:
  """optax's own outcomes, cached per (optax, jax) version: running each
  module on optax as well would double the suite's cost."""
  if not BASELINE.exists():
    return {}
  data = json.loads(BASELINE.read_text())
  return data["modules"] if data.get("versions") == versions() else {}


def run_here(paths, refresh: bool = False) -> dict:
  """Runs ``paths`` in this interpreter. Returns a JSON-able dict."""
  from absl import flags  # pylint: disable=import-outside-toplevel

  if not flags.FLAGS.is_parsed():
    flags.FLAGS(["upstream"])
  swap = Swap()
  cached = {} if refresh else load_baseline()
  report = {}
  for path in paths:
    t0 = time.process_time()
    if path in cached:
      base = {k: (v, "") for k, v in cached[path].items()}
    else:
      base = run_module(path, None)
    t1 = time.process_time()
    ours = run_module(path, swap)
    t2 = time.process_time()
    print(f"{path}: {t1 - t0:.0f}s on optax, {t2 - t1:.0f}s on gradtx",
          file=sys.stderr, flush=True)
    report[path] = {
        "optax_cpu_s": round(t1 - t0, 1),
        "gradtx_cpu_s": round(t2 - t1, 1),
        "tests": {
            k: {"optax": base.get(k, ("missing", ""))[0],
                "gradtx": ours.get(k, ("missing", ""))[0],
                "message": ours.get(k, ("", ""))[1]}
            for k in sorted(set(base) | set(ours))
        },
    }
    dump = os.environ.get("GRADTX_UPSTREAM_DUMP")
    if dump:  # one file per module as it finishes, to watch a long run
      os.makedirs(dump, exist_ok=True)
      pathlib.Path(dump, path.replace("/", "__") + ".json").write_text(
          json.dumps({path: report[path]}))
  return report


def save_baseline(report: dict) -> None:
  data = ({"versions": versions(), "modules": {}} if not BASELINE.exists()
          else json.loads(BASELINE.read_text()))
  if data.get("versions") != versions():
    data = {"versions": versions(), "modules": {}}
  for path, entry in report.items():
    data["modules"][path] = {t: o["optax"] for t, o in entry["tests"].items()
                             if o["optax"] != "missing"}
  data["modules"] = dict(sorted(data["modules"].items()))
  BASELINE.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")


def run(paths, timeout=None, refresh=False) -> dict:
  """Runs ``paths`` in a fresh interpreter (JAX defaults, no conftest).

  Progress (one line per module) goes to this process's stderr.
  """
  env = dict(os.environ)
  env.pop("JAX_ENABLE_X64", None)
  env.pop("JAX_NUMPY_RANK_PROMOTION", None)
  cmd = [sys.executable, str(HERE / "runner.py"), "--json", "-", "--here",
         *(["--refresh-baseline"] if refresh else []), *paths]
  out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env,
                       cwd=ROOT, timeout=timeout, check=False)
  if out.returncode != 0 or "\n=== JSON ===\n" not in out.stdout:
    raise RuntimeError(f"upstream runner failed ({out.returncode}):\n"
                       f"{out.stdout[-4000:]}")
  report = json.loads(out.stdout.split("\n=== JSON ===\n", 1)[1])
  if refresh:
    save_baseline(report)
  return report


# ---------------------------------------------------------------- judging


def load_allowlist() -> dict:
  """``tests/upstream/allowlist.txt``: ``test id  # reason`` per line."""
  allow = {}
  for line in (HERE / "allowlist.txt").read_text().splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    test, _, reason = line.partition("#")
    allow[test.strip()] = reason.strip()
  return allow


def judge(report: dict, allow: dict) -> dict:
  """Per module: passing on optax, passing on gradtx, allowlisted, unexpected."""
  table = {}
  for path, entry in report.items():
    tests = entry["tests"]
    on_optax = [t for t, o in tests.items() if o["optax"] == "pass"]
    on_gradtx = [t for t in on_optax if tests[t]["gradtx"] == "pass"]
    # A test that gradtx makes skip itself (optax's schedule test skips an
    # optimizer whose learning_rate annotation is not optax's own type
    # object) did not fail: it is counted apart, not judged.
    skipped = [t for t in on_optax if tests[t]["gradtx"] == "skip"]
    failing = [t for t in on_optax if tests[t]["gradtx"] not in ("pass", "skip")]
    table[path] = {
        "optax": len(on_optax),
        "gradtx": len(on_gradtx),
        "skipped": len(skipped),
        "allowlisted": sorted(t for t in failing if t in allow),
        "unexpected": {t: tests[t]["message"] for t in failing if t not in allow},
        "stale": sorted(t for t in allow if t.startswith(path + "::") and t in on_gradtx),
        "cpu_s": entry["optax_cpu_s"] + entry["gradtx_cpu_s"],
    }
  return table


def markdown(table: dict) -> str:
  lines = ["| module | pass on optax | of those, pass on gradtx | skip on gradtx "
           "| allowlisted | other failures |", "|---|---:|---:|---:|---:|---:|"]
  totals = [0] * 5
  for path, row in table.items():
    cells = [row["optax"], row["gradtx"], row["skipped"],
             len(row["allowlisted"]), len(row["unexpected"])]
    lines.append(f"| `optax/{path}` | " + " | ".join(map(str, cells)) + " |")
    totals = [a + b for a, b in zip(totals, cells)]
  lines.append("| **total** | " + " | ".join(map(str, totals)) + " |")
  lines += ["", "| allowlisted test | reason |", "|---|---|"]
  lines += [f"| `{t}` | {r} |" for t, r in load_allowlist().items()]
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("modules", nargs="*", help="paths under optax/, e.g. _src/alias_test.py")
  parser.add_argument("--all", action="store_true", help="every module, not only the CI ones")
  parser.add_argument("--json", help="write the raw report here ('-' for stdout)")
  parser.add_argument("--markdown", action="store_true", help="print the docs table")
  parser.add_argument("--refresh-baseline", action="store_true",
                      help="run the modules on optax too and cache that in "
                      "optax_baseline.json")
  parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  paths = args.modules or (ALL if args.all else FAST)
  if args.here:
    report = run_here(paths, args.refresh_baseline)
    if args.json == "-":
      print("\n=== JSON ===\n" + json.dumps(report))
      return 0
  else:
    report = run(paths, refresh=args.refresh_baseline)
  if args.json and args.json != "-":
    pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
  table = judge(report, load_allowlist())
  if args.markdown:
    print(markdown(table))
  bad = 0
  for path, row in table.items():
    print(f"{path}: optax {row['optax']}, gradtx {row['gradtx']}, skipped "
          f"{row['skipped']}, allowlisted {len(row['allowlisted'])}, cpu "
          f"{row['cpu_s']:.0f}s")
    for t, msg in row["unexpected"].items():
      bad += 1
      print(f"  FAIL {t}: {msg}")
    for t in row["stale"]:
      bad += 1
      print(f"  STALE allowlist entry now passes: {t}")
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
