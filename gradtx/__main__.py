"""``python -m gradtx``: the same as the ``gradtx`` command."""

import sys

from gradtx._src.tools.cli import main

if __name__ == "__main__":
  sys.exit(main())
