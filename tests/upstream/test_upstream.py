"""optax 0.2.8's own test modules, run with gradtx's exports swapped in.

Each module's tests run twice in a fresh interpreter (see ``runner.py``):
as shipped, on optax, and with every name gradtx exports put in place of
optax's. A test that passes on optax must pass on gradtx unless
``allowlist.txt`` names it with a reason; an allowlisted test that passes on
gradtx fails here too, so the list only holds real differences.

The ordinary run takes the fast modules (``runner.FAST``); all of them with
``python -m pytest tests/upstream --upstream-all`` (or
``GRADTX_UPSTREAM_ALL=1``).
"""

import importlib.util
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def _load_runner():
  spec = importlib.util.spec_from_file_location("gradtx_upstream_runner",
                                                HERE / "runner.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module


runner = _load_runner()


def _run_all(config) -> bool:
  return bool(config.getoption("upstream_all", default=False)
              or os.environ.get("GRADTX_UPSTREAM_ALL"))


def pytest_generate_tests(metafunc):
  if "module" in metafunc.fixturenames:
    modules = runner.ALL if _run_all(metafunc.config) else runner.FAST
    metafunc.parametrize("module", modules)


@pytest.fixture(scope="module")
def table(request):
  # Looked up, not imported: only the runner's interpreter needs them.
  missing = [m for m in ("optax", "absl")
             if importlib.util.find_spec(m) is None]
  if missing:
    pytest.skip(f"needs {', '.join(missing)}")
  modules = runner.ALL if _run_all(request.config) else runner.FAST
  return runner.judge(runner.run(modules), runner.load_allowlist())


def test_allowlist_is_short_and_every_entry_has_a_reason():
  allow = runner.load_allowlist()
  assert len(allow) <= 15, f"{len(allow)} allowlisted tests; at most 15"
  assert all(allow.values()), [t for t, r in allow.items() if not r]
  assert all(t.split("::")[0] in runner.ALL for t in allow), allow


def test_module(table, module):
  row = table[module]
  assert row["optax"] > 0, f"no test of {module} passed on optax"
  problems = [f"FAIL {t}: {m}" for t, m in row["unexpected"].items()]
  problems += [f"allowlisted but passes now, remove it: {t}"
               for t in row["stale"]]
  assert not problems, "\n".join(problems)
