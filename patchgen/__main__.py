from patchgen.cli import entry

entry()
