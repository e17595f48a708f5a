package process

// deniedSyscalls fail with EPERM in a function: what a data function never
// needs and what would let it reach past its sandbox (other processes'
// memory, the kernel, mounts, namespaces, keys, file handles).
var deniedSyscalls = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"unshare", "setns",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
	"bpf", "perf_event_open", "userfaultfd",
	"keyctl", "add_key", "request_key",
	"swapon", "swapoff", "acct", "quotactl", "syslog", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
	"sethostname", "setdomainname", "iopl", "ioperm", "lookup_dcookie", "name_to_handle_at", "open_by_handle_at",
	"personality", "uselib", "vhangup", "nfsservctl",
}
