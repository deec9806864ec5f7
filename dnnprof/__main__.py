"""`python -m dnnprof`."""

import sys

from dnnprof.cli import console_main

sys.exit(console_main())
