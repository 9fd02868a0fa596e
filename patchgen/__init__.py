"""patchgen: regenerate, build, boot and test the netfilter BPF base hook series."""
