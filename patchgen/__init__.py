"""patchgen: regenerate, build, boot and test the netfilter BPF base hook series."""

# What a Ctrl-C prints, wherever it lands (patchgen.cli; __main__ while importing).
INTERRUPTED = "patchgen: interrupted; nothing half-made was kept"
