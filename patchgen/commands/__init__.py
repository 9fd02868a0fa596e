"""One module per command: ``run(request, settings, progress) -> result``.

cli.py parses the arguments into a request, calls the command's ``run``, and
turns the typed result into output and an exit code.  The stages that
several commands share are in patchgen/stages.py; the libraries they drive
(build, check, prep, bench, kselftest, ...) stay where they are.

    tree      commands/tree.py      obtain, prepare and probe a tree
    build     commands/build.py     configure and build one commit
    generate  commands/generate.py  compute the series, commit it to its branch
    check     commands/check.py     build every patch in every config, W=1, checkpatch
    prep      commands/prep.py      format the series for the list, send it
    test      commands/test.py      build, boot, run the selftests, report
    run       commands/run.py       generate, then test the tip of the series
    boot      commands/boot.py      build, boot, run one command in the guest
    bench     commands/bench.py     cost of both dispatch paths
"""
