//go:build linux && cgo

// The function's init: this program started again with
// LAKEHOUSE_FUNCTION_INIT in its environment runs lakehouse_function_init
// as a C constructor, before the Go runtime and every package's init (a
// lakehouse binary spends hundreds of milliseconds in those). It reads its
// plan from the spec descriptor (see spec.go for the format), sets up the
// sandbox, starts the interpreter, waits for it and reports its wait
// status on the status descriptor. Everything that needs a decision was
// decided by the launcher: this code only executes the plan.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

static int status_fd = -1;

static void fail(const char *fmt, ...) {
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	if (status_fd >= 0) {
		dprintf(status_fd, "error %.*s: %s\n", n, buf, strerror(errno));
	}
	_exit(125);
}

// The spec: NUL-terminated strings, read whole from the spec descriptor.
static char *spec;
static size_t spec_len, spec_pos;

static const char *next(void) {
	if (spec_pos >= spec_len) {
		errno = EINVAL;
		fail("spec ends early");
	}
	const char *s = spec + spec_pos;
	spec_pos += strlen(s) + 1;
	return s;
}

static int num(const char *s) { return (int)strtol(s, NULL, 10); }

static void read_spec(int fd) {
	size_t cap = 1 << 16;
	spec = malloc(cap);
	for (;;) {
		if (spec_len == cap) {
			cap *= 2;
			spec = realloc(spec, cap);
		}
		ssize_t n = read(fd, spec + spec_len, cap - spec_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("read the spec");
		if (n == 0)
			break;
		spec_len += n;
	}
	close(fd);
}

static void mkdirs(const char *path) {
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		fail("mkdir %s", path);
}

// remount makes the bind mount at path read-only or writable, keeping the
// flags the kernel locks (nosuid, nodev, noexec, atime).
static void remount(const char *path, int ro) {
	struct statfs st;
	if (statfs(path, &st) != 0)
		fail("statfs %s", path);
	unsigned long keep = st.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
	unsigned long flags = MS_BIND | MS_REMOUNT | keep | (ro ? MS_RDONLY | MS_NOSUID | MS_NODEV : 0);
	if (mount("", path, NULL, flags, NULL) != 0)
		fail("remount %s", path);
}

static void noop(int sig) { (void)sig; }

static void run(void) {
	const char *fdenv = getenv("LAKEHOUSE_FUNCTION_INIT");
	int spec_fd = num(fdenv);
	// Descriptors: 3 status, 4 lifeline, spec_fd the spec, then the
	// descriptors named in it.
	status_fd = 3;
	int lifeline = 4;
	fcntl(status_fd, F_SETFD, FD_CLOEXEC);
	fcntl(lifeline, F_SETFD, FD_CLOEXEC);
	read_spec(spec_fd);

	char **argv = calloc(spec_len / 2 + 2, sizeof(char *));
	char **envp = calloc(spec_len / 2 + 2, sizeof(char *));
	int argc = 0, envc = 0;
	const char *dir = "/";
	int ruleset = -1;
	enum { MAXKEPT = 256 };
	int kept[MAXKEPT], nkept = 0, nbound = 0;
	for (;;) {
		const char *op = next();
		if (!strcmp(op, "end")) {
			break;
		} else if (!strcmp(op, "private")) {
			if (mount("", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
				fail("make mounts private");
		} else if (!strcmp(op, "tmpfs")) {
			const char *p = next();
			if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") != 0)
				fail("cover %s", p);
		} else if (!strcmp(op, "keep")) {
			const char *p = next();
			if (nkept == MAXKEPT) {
				errno = E2BIG;
				fail("keep %s", p);
			}
			kept[nkept] = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (kept[nkept++] < 0)
				fail("open %s", p);
		} else if (!strcmp(op, "bindkept")) {
			const char *p = next();
			if (nbound == nkept) {
				errno = EINVAL;
				fail("bind %s: not kept", p);
			}
			int fd = kept[nbound++];
			char src[64];
			snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
			mkdirs(p);
			if (mount(src, p, NULL, MS_BIND | MS_REC, NULL) != 0)
				fail("bind %s", p);
			close(fd);
		} else if (!strcmp(op, "ro") || !strcmp(op, "rw")) {
			const char *p = next();
			if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) != 0)
				fail("bind %s", p);
			remount(p, op[1] == 'o');
		} else if (!strcmp(op, "proc")) {
			if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
				fail("mount /proc");
		} else if (!strcmp(op, "ids")) {
			int uid = num(next()), gid = num(next());
			if (setgroups(0, NULL) != 0)
				fail("setgroups");
			if (setresgid(gid, gid, gid) != 0)
				fail("setgid %d", gid);
			if (setresuid(uid, uid, uid) != 0)
				fail("setuid %d", uid);
		} else if (!strcmp(op, "noroot")) {
			// SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: root of the user
			// namespace gains no capabilities by exec.
			if (prctl(PR_SET_SECUREBITS, 3, 0, 0, 0) != 0)
				fail("securebits");
		} else if (!strcmp(op, "ll-create")) {
			struct {
				unsigned long long fs, net, scoped;
			} attr = {strtoull(next(), NULL, 10), strtoull(next(), NULL, 10), strtoull(next(), NULL, 10)};
			ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
			if (ruleset < 0)
				fail("landlock_create_ruleset");
		} else if (!strcmp(op, "ll-rule")) {
			unsigned long long access = strtoull(next(), NULL, 10);
			const char *p = next();
			struct __attribute__((packed)) {
				unsigned long long allowed;
				int parent;
			} attr = {access, open(p, O_PATH | O_CLOEXEC)};
			if (attr.parent < 0)
				fail("open %s", p);
			if (syscall(SYS_landlock_add_rule, ruleset, 1 /* LANDLOCK_RULE_PATH_BENEATH */, &attr, 0) != 0)
				fail("landlock rule for %s", p);
			close(attr.parent);
		} else if (!strcmp(op, "landlock")) {
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
				fail("no_new_privs");
			if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
				fail("landlock");
			close(ruleset);
		} else if (!strcmp(op, "seccomp")) {
			const char *hex = next();
			size_t n = strlen(hex) / 2;
			unsigned char *b = malloc(n);
			for (size_t i = 0; i < n; i++) {
				unsigned int v;
				sscanf(hex + 2 * i, "%2x", &v);
				b[i] = (unsigned char)v;
			}
			struct sock_fprog prog = {.len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (struct sock_filter *)b};
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
				fail("no_new_privs");
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
				fail("seccomp");
		} else if (!strcmp(op, "dir")) {
			dir = next();
		} else if (!strcmp(op, "arg")) {
			argv[argc++] = (char *)next();
		} else if (!strcmp(op, "env")) {
			envp[envc++] = (char *)next();
		} else {
			errno = EINVAL;
			fail("unknown spec operation %s", op);
		}
	}
	if (argc == 0) {
		errno = EINVAL;
		fail("no command");
	}
	// A change of user clears the parent-death signal.
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = noop;
	sigaction(SIGCHLD, &sa, NULL);

	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (chdir(dir) != 0)
			fail("chdir %s", dir);
		execve(argv[0], argv, envp);
		fail("exec %s", argv[0]);
	}
	for (;;) {
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
			if (w == pid) {
				// Exiting ends the PID namespace: the kernel kills
				// whatever the function left running.
				dprintf(status_fd, "exit %u\n", (unsigned)st);
				_exit(0);
			}
		}
		struct pollfd p = {.fd = lifeline, .events = POLLIN};
		int r = ppoll(&p, 1, NULL, &old);
		if (r > 0)
			_exit(1); // the launcher is gone
	}
}

__attribute__((constructor(101))) static void lakehouse_function_init(void) {
	if (getenv("LAKEHOUSE_FUNCTION_INIT") != NULL)
		run();
}
