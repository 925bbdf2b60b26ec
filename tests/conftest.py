"""Shared test setup.

float64 is enabled for the whole suite: the per-step reference tests compare
in float64 at relative 1e-9. Tests of other dtypes ask for them explicitly.
Rank promotion is strict so that an accidental broadcast in a transform
fails loudly instead of silently changing shapes.

Compiled programs go to a persistent compilation cache in a temporary
folder made for this run (removed at its end): many tests build the same
optimizer step on the same tree from a fresh closure, which JAX's
in-memory cache cannot recognise but the persistent cache (keyed by the
program's text) can. The folder is handed through the environment to the
pytest-xdist workers and to the interpreters that tests start, so a
program compiled by one of them is compiled once for all. A run never
reads a cache left by an earlier one.

XLA:CPU compiles with its loop emitters instead of its MLIR fusion emitters
(``--xla_cpu_use_fusion_emitters=false``, added to ``XLA_FLAGS`` for the
workers and every interpreter the tests start). Eager steps compile one
small program per operation and shape, over 2,500 in a run; the loop
emitters compile each in half the time, which takes about a quarter off
the suite's CPU time, and the suite passes unchanged with either (the
float64 reference tests compare at 1e-9; the docs tables that record exact
evaluation counts match both). ``GRADTX_TEST_XLA_DEFAULTS=1`` runs the
suite with XLA's own defaults. The flag is only added when this jaxlib
knows it: XLA aborts on an unknown flag.
"""

import atexit
import gc
import os
import shutil
import subprocess
import sys
import tempfile

FAST_COMPILE_FLAG = "--xla_cpu_use_fusion_emitters=false"


def _xla_accepts(flag):
  """Whether this jaxlib parses ``flag``: asked in a child interpreter, since
  XLA aborts the process on a flag it does not know. Building compile
  options parses ``XLA_FLAGS``, without importing jax (0.2 s)."""
  probe = ("try:\n  from jaxlib import _jax as x\n"
           "except ImportError:\n  from jaxlib import xla_extension as x\n"
           "x.CompileOptions()")
  env = dict(os.environ, XLA_FLAGS=flag)
  return subprocess.run([sys.executable, "-c", probe], env=env,
                        capture_output=True, check=False).returncode == 0


# Decided once, by pytest's interpreter (the controller of pytest-xdist, or
# the only one with -n 0), before any backend starts; the pytest-xdist
# workers and the interpreters the tests start inherit the environment.
if ("PYTEST_XDIST_WORKER" not in os.environ
    and not os.environ.get("GRADTX_TEST_XLA_DEFAULTS")
    and _xla_accepts(FAST_COMPILE_FLAG)):
  os.environ["XLA_FLAGS"] = " ".join(
      f for f in (os.environ.get("XLA_FLAGS"), FAST_COMPILE_FLAG) if f)

import pytest  # noqa: E402

CACHE_ENV = "GRADTX_TEST_COMPILATION_CACHE"

if CACHE_ENV not in os.environ:
  _cache_dir = tempfile.mkdtemp(prefix="gradtx-test-jax-cache-")
  os.environ[CACHE_ENV] = _cache_dir
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
# Read by the JAX of every interpreter started from here (environment
# variables), and set explicitly in this one by pytest_configure.
_CACHE = {
    "jax_compilation_cache_dir": os.environ[CACHE_ENV],
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": -1,
}
for _name, _value in _CACHE.items():
  os.environ.setdefault(_name.upper(), str(_value))


@pytest.hookimpl(trylast=True)  # after pytest-xdist's, which names the role
def pytest_configure(config):
  """Configures JAX in every interpreter that runs tests, before any test
  module is collected. The controller of pytest-xdist runs none and leaves
  JAX unimported, which starts its workers a second sooner."""
  if config.pluginmanager.hasplugin("dsession"):
    return
  import jax  # pylint: disable=import-outside-toplevel

  for name, value in _CACHE.items():
    jax.config.update(name, value)
  jax.config.update("jax_enable_x64", True)
  jax.config.update("jax_numpy_rank_promotion", "raise")


# The modules that take longest, longest first: pytest-xdist hands whole
# files to its workers in collection order (``--no-loadscope-reorder`` in
# pyproject.toml), so starting with these keeps one long module from
# running alone at the end of the run.
LONGEST_FIRST = (
    "tests/upstream/test_upstream.py",
    "tests/test_properties.py",
    "tests/test_numerics.py",
    "tests/test_convergence.py",
    "tests/test_sharding.py",
    "tests/test_determinism.py",
    "tests/test_second_order.py",
    "tests/test_lbfgs.py",
    "tests/test_state_handover.py",
    "tests/test_second_order_scipy.py",
    "tests/test_examples.py",
)


def pytest_collection_finish(session):
  """Python's cyclic garbage collector leaves alone, from here on, what
  collection made (the libraries imported, the test modules and their
  parameters, all alive to the end of the run), and runs a tenth as often:
  tracing allocates many small objects, and each full collection walked
  the whole heap. Measured on three of the longest modules run in one
  process: 2.2 s of their 45 s in the collector, 1.1 s after."""
  gc.collect()
  gc.freeze()
  gc.set_threshold(10_000, 10, 10)


def pytest_collection_modifyitems(config, items):
  rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
  root = config.rootpath

  def key(item):
    path = item.path.relative_to(root).as_posix()
    return rank.get(path, len(rank))

  items.sort(key=key)  # stable: within a module, the order stays


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
  """A pytest-xdist worker ends here, without tearing its interpreter down.

  By now the worker has sent its last report and its exit status to the
  controlling process (pytest-xdist's ``pytest_sessionfinish``) and every
  plugin has run its own ``pytest_unconfigure``. What remains, pytest's
  cleanups and Python's teardown of a heap that holds thousands of
  compiled programs, reaches no report and takes about 6 s at the end of
  each run, while the controller waits for its workers to exit.
  """
  if hasattr(config, "workerinput"):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(config.workeroutput["exitstatus"]))
