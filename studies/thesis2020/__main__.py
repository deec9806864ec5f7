"""`python -m studies.thesis2020 [RUN...] [-o DIR]`: see studies.thesis2020.cli."""

import sys

from studies.thesis2020.cli import main

sys.exit(main())
