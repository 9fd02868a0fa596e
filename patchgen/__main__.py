import sys

from patchgen import INTERRUPTED

try:
    # Importing takes a noticeable moment; a Ctrl-C then is no traceback.
    from patchgen.cli import entry
except KeyboardInterrupt:
    print(INTERRUPTED, file=sys.stderr)
    sys.exit(130)  # ExitCode.INTERRUPTED, whose module may be what was interrupted

entry()
