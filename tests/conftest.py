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
"""

import atexit
import os
import shutil
import tempfile

import jax

CACHE_ENV = "GRADTX_TEST_COMPILATION_CACHE"

if CACHE_ENV not in os.environ:
  _cache_dir = tempfile.mkdtemp(prefix="gradtx-test-jax-cache-")
  os.environ[CACHE_ENV] = _cache_dir
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
# Read by the JAX of every interpreter started from here (environment
# variables), and set explicitly in this one, which imported JAX already.
_CACHE = {
    "jax_compilation_cache_dir": os.environ[CACHE_ENV],
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": -1,
}
for _name, _value in _CACHE.items():
  os.environ.setdefault(_name.upper(), str(_value))
  jax.config.update(_name, _value)

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


def pytest_collection_modifyitems(config, items):
  rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
  root = config.rootpath

  def key(item):
    path = item.path.relative_to(root).as_posix()
    return rank.get(path, len(rank))

  items.sort(key=key)  # stable: within a module, the order stays
