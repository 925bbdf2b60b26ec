"""gradtx against optax: the benchmark behind ``gradtx bench`` and
``benchmarks/bench.py``.

Built on the library and never imported by it. ``command`` holds the
command line (it imports neither jax nor optax, so ``--help`` works without
them), ``cpu`` times steps on this machine, ``tpu`` compiles them for a TPU
this machine does not have (the ``bench-tpu`` extra).
"""
