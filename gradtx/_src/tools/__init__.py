"""Built on the library: the ``gradtx`` command line (``cli.py``: ``race``,
``lr-find``, ``list``, ``bench``), its progress bar (``progress.py``) and
figures (``plots.py``, also the drawing behind ``LRFindResult.plot``, the
one place the library imports from here), and the benchmark against optax
(``bench/``). Their dependencies are the optional extras ``cli`` and
``bench``.
"""
