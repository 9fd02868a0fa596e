#!/bin/sh
# Fake merge_config.sh: -n -O DIR frag...; drops CONFIG_DROPPED_* like a
# missing dependency would.
while [ $# -gt 0 ]; do
	case "$1" in
	-n) shift ;;
	-O) OUT=$2; shift 2 ;;
	*) break ;;
	esac
done
cat "$@" | grep -v '^CONFIG_DROPPED' > "$OUT/.config"
