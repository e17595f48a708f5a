#!/usr/bin/env bash
# containerd-test.sh: a private containerd daemon for tests.
#
#   scripts/containerd-test.sh start DIR   starts containerd with its root,
#                                          state, config and socket under DIR
#                                          and prints the socket path
#   scripts/containerd-test.sh stop DIR    stops that daemon by its PID,
#                                          removes leftover tasks' mounts,
#                                          unmounts DIR's tmpfs and removes DIR
#
# DIR gets a tmpfs of its own (containerd keeps its state on tmpfs in
# /run normally; on disk each container costs milliseconds of file creation
# and fsync). The daemon runs as root (it needs mounts and cgroups), listens only on
# DIR/containerd.sock, has the CRI plugin disabled and never touches the
# machine's own /var/lib/containerd or /run/containerd/containerd.sock. Its log
# is DIR/containerd.log.
#
# Needs the Debian packages containerd and runc:
#   apt-get install -y containerd runc
#
# Use it from a test command:
#   dir=$(mktemp -d /tmp/lakehouse-ctrd.XXXXXX)
#   export LAKEHOUSE_CONTAINERD_SOCKET=$(scripts/containerd-test.sh start "$dir")
#   go test ./runtime/...
#   scripts/containerd-test.sh stop "$dir"
set -euo pipefail

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2

case $cmd in
start)
	for b in containerd containerd-shim-runc-v2 runc; do
		if ! command -v "$b" >/dev/null 2>&1; then
			echo "$0: $b is not installed; run: apt-get install -y containerd runc" >&2
			exit 1
		fi
	done
	if [[ $(id -u) -ne 0 ]]; then
		echo "$0: containerd must run as root" >&2
		exit 1
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	# A private tmpfs for root and state: creating files and fsyncing the
	# metadata database on the disk here costs milliseconds per container.
	mount -t tmpfs -o mode=0700 lakehouse-ctrd "$dir"
	mkdir -p "$dir/root" "$dir/state"
	sock=$dir/containerd.sock
	cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
	# setsid: the daemon outlives this script but not `stop`.
	setsid containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 </dev/null &
	# (the log lives on the tmpfs too and goes with `stop`)
	echo $! >"$dir/containerd.pid"
	for _ in $(seq 1 100); do
		if [[ -S $sock ]] && ctr --address "$sock" version >/dev/null 2>&1; then
			echo "$sock"
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "$0: containerd did not start; its log:" >&2
	tail -20 "$dir/containerd.log" >&2 || true
	exit 1
	;;
stop)
	[[ -d $dir ]] || exit 0
	dir=$(cd "$dir" && pwd)
	if [[ -f $dir/containerd.pid ]]; then
		pid=$(cat "$dir/containerd.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid"
			for _ in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	# A shim outlives its daemon while a container of it is left (a test
	# that failed to clean up): stop it and the task it runs.
	for shim in $(pgrep -f -- "containerd-shim.* -address $dir/containerd.sock" || true); do
		pkill -KILL -P "$shim" 2>/dev/null || true
		kill -KILL "$shim" 2>/dev/null || true
	done
	# Anything still mounted under DIR (a task's rootfs) goes before DIR does.
	{ grep -F " $dir/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	if grep -qF " $dir " /proc/self/mounts; then
		umount "$dir" 2>/dev/null || umount -l "$dir"
	fi
	rm -rf "$dir"
	;;
*)
	usage
	;;
esac
