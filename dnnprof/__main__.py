"""`python -m dnnprof`."""

import sys

from dnnprof.cli import main

sys.exit(main())
