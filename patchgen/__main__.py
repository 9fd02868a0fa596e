import sys

from patchgen.cli import main

sys.exit(main())
