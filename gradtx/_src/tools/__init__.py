"""Built on the library, never imported by it: the ``gradtx`` command line
(``cli.py``: ``race``, ``lr-find``, ``list``, ``bench``), its progress bar
(``progress.py``) and figures (``plots.py``, also the drawing behind
``LRFindResult.plot``), and the benchmark against optax (``bench/``). Their
dependencies are the optional extras ``cli`` and ``bench``.
"""
