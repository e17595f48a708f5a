package process

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/net/bpf"
)

// The function's init is this program started again with initEnv set: a C
// constructor (init_linux.c) takes over before the Go runtime starts, so
// neither Go's runtime nor any package's init delays the function. The
// launcher decides everything; the init executes a spec, a sequence of
// NUL-terminated words read from the descriptor initEnv names:
//
//	private                      make every mount private
//	tmpfs PATH                   cover PATH with an empty tmpfs (mode 0755)
//	keep PATH                    open PATH (before a tmpfs hides it)
//	bindkept PATH                bind the next kept folder at PATH
//	ro PATH | rw PATH            bind PATH over itself read-only / writable
//	proc                         mount a /proc of the PID namespace
//	ll-create FS NET SCOPED      create a Landlock ruleset (handled rights)
//	ll-rule ACCESS PATH          allow ACCESS beneath PATH
//	ids UID GID                  drop supplementary groups, set gid and uid
//	noroot                       securebits: root gains nothing by exec
//	landlock                     enforce the ruleset (and no_new_privs)
//	seccomp HEX                  load the BPF filter HEX (sock_filter array)
//	dir PATH | arg S | env S     the interpreter's folder, argv and environ
//	end
//
// Descriptors: 3 status ("exit <wait status>" or "error <message>"), 4
// the lifeline (the init exits when the launcher's end closes), 5 the
// spec.
const (
	initEnv = "LAKEHOUSE_FUNCTION_INIT"
	specFD  = 5
	// selfExe is this program: the default init (Config.Init).
	selfExe = "/proc/self/exe"
)

// command is the command that starts the function's init for sb, with
// the launcher's ends of the status pipe and of the lifeline. The
// descriptors in cmd.ExtraFiles are the init's: close them once it
// started.
func (sb *sandbox) command(internet bool) (cmd *exec.Cmd, status, life *os.File, err error) {
	var files []*os.File
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
		}
	}()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	files = append(files, statusR, statusW)
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	files = append(files, lifeR, lifeW)
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	files = append(files, specR, specW)
	extra := []*os.File{statusW, lifeR, specR}

	var spec bytes.Buffer
	word := func(ws ...string) {
		for _, w := range ws {
			spec.WriteString(w)
			spec.WriteByte(0)
		}
	}
	if sb.Namespaces {
		word("private")
		if sb.UID >= 0 {
			binds, covers, err := sb.reveal()
			if err != nil {
				return nil, nil, nil, err
			}
			for _, d := range binds {
				word("keep", d)
			}
			for _, c := range covers {
				word("tmpfs", c)
			}
			for _, d := range binds {
				word("bindkept", d)
			}
		}
		for _, d := range sb.Protect {
			word("ro", d)
		}
		// A writable folder inside a protected one (scratch below the
		// code folder) is bound writable again on top.
		for _, w := range sb.WriteDirs {
			for _, d := range sb.Protect {
				if within(w, d) {
					word("rw", w)
					break
				}
			}
		}
		word("proc")
	}
	if sb.Landlock > 0 {
		sb.landlockWords(word)
	}
	switch {
	case sb.UID >= 0:
		word("ids", strconv.Itoa(sb.UID), strconv.Itoa(sb.GID))
	case sb.UserNS:
		word("noroot")
	}
	if sb.Landlock > 0 {
		word("landlock")
	}
	filter, err := seccompFilter()
	if err != nil {
		return nil, nil, nil, err
	}
	word("seccomp", filter)
	word("dir", sb.Dir)
	for _, a := range sb.Args {
		word("arg", a)
	}
	for _, e := range sb.Env {
		word("env", e)
	}
	word("end")
	go func() {
		specW.Write(spec.Bytes())
		specW.Close()
	}()

	prog := sb.Init
	if prog == "" {
		prog = selfExe
	}
	cmd = &exec.Cmd{Path: prog, Args: []string{"lakehouse-function-init"},
		Env: []string{initEnv + "=" + strconv.Itoa(specFD)}, Dir: "/", ExtraFiles: extra}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if sb.Namespaces {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC
		if !internet {
			cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNET
		}
	}
	if sb.UserNS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	return cmd, statusR, lifeW, nil
}

// reveal lets the function's user reach every folder it is granted when
// an ancestor is closed to it (e.g. an interpreter under /root, mode
// 0700): a tmpfs (mode 0755) covers that ancestor (covers), and the
// granted folders below it are bound back at their paths (binds). The
// rest of the ancestor stays hidden.
func (sb *sandbox) reveal() (binds, covers []string, err error) {
	var all []string
	all = append(all, sb.ReadDirs...)
	all = append(all, sb.WriteDirs...)
	closed := map[string]bool{}
	for _, d := range all {
		if a := closedAncestor(d); a != "" {
			closed[a] = true
		}
	}
	for a := range closed {
		covers = append(covers, a)
	}
	sort.Strings(covers)
	for _, d := range all {
		for _, a := range covers {
			if within(d, a) && d != a {
				binds = append(binds, d)
				break
			}
		}
	}
	// Sibling folders (package folders in one store) come back as their
	// parent: one mount instead of many. Landlock still grants only them.
	binds = collapse(binds, func(parent string) bool {
		for _, a := range covers {
			if within(a, parent) {
				return false // the parent would uncover what the tmpfs hides
			}
		}
		st, err := os.Stat(parent)
		return err == nil && st.Mode().Perm()&0o001 != 0
	})
	return binds, covers, nil
}

// collapse replaces folders of dirs that share their parent with that
// parent where ok allows it, and drops folders below others.
func collapse(dirs []string, ok func(parent string) bool) []string {
	n := map[string]int{}
	for _, d := range dirs {
		n[filepath.Dir(d)]++
	}
	var out []string
	for _, d := range dirs {
		if p := filepath.Dir(d); n[p] > 1 && ok(p) {
			d = p
		}
		out = append(out, d)
	}
	sort.Strings(out)
	return outermost(out)
}

// closedAncestor is the outermost ancestor of dir that others may not
// search (no o+x), "" if none.
func closedAncestor(dir string) string {
	for i := 1; i < len(dir); i++ {
		if dir[i] != '/' {
			continue
		}
		st, err := os.Stat(dir[:i])
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			return dir[:i]
		}
	}
	return ""
}

// landlockWords adds the ruleset: reading the read folders and files,
// writing the write folders, no TCP without internet access, no signals
// or abstract sockets out of the sandbox.
func (sb *sandbox) landlockWords(word func(...string)) {
	cfg := landlockConfigs[sb.Landlock]
	fs := uint64(cfg.HandledAccessFS)
	net := uint64(cfg.HandledAccessNet)
	if sb.Network {
		net = 0
	}
	word("ll-create", u64(fs), u64(net), u64(uint64(cfg.Scoped)))
	read := fs & (ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir)
	readFile := fs & (ll.AccessFSExecute | ll.AccessFSReadFile)
	writeFile := fs & (ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate)
	for _, d := range sb.ReadDirs {
		word("ll-rule", u64(read), d)
	}
	for _, f := range sb.ReadFiles {
		access := readFile
		if f == "/dev/null" || f == "/dev/zero" {
			access = writeFile
		}
		word("ll-rule", u64(access), f)
	}
	for _, d := range sb.WriteDirs {
		// Every right, "refer" (renames across folders) aside.
		word("ll-rule", u64(fs&^ll.AccessFSRefer), d)
	}
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

var landlockConfigs = map[int]landlock.Config{
	1: landlock.V1, 2: landlock.V2, 3: landlock.V3, 4: landlock.V4,
	5: landlock.V5, 6: landlock.V6, 7: landlock.V7, 8: landlock.V8,
	9: landlock.V9, 10: landlock.V10, 11: landlock.V11,
}

// seccompFilter is the filter of deniedSyscalls as hex-encoded struct
// sock_filter entries.
func seccompFilter() (string, error) {
	policy := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionErrno, Names: deniedSyscalls}},
	}
	insts, err := policy.Assemble()
	if err != nil {
		return "", fmt.Errorf("seccomp: %v", err)
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return "", fmt.Errorf("seccomp: %v", err)
	}
	b := make([]byte, 0, 8*len(raw))
	for _, in := range raw {
		// struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; },
		// little endian on the machines this runs on.
		b = append(b, byte(in.Op), byte(in.Op>>8), in.Jt, in.Jf, byte(in.K), byte(in.K>>8), byte(in.K>>16), byte(in.K>>24))
	}
	return hex.EncodeToString(b), nil
}
