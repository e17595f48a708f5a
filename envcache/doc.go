// Package envcache gives Python functions environments that are assembled,
// never built. A function asks for (python version, pip requirements); the
// cache
//
//  1. resolves the spec to a locked set of distributions for this platform
//     and interpreter with a real resolver: the target interpreter's own
//     `pip install --dry-run --ignore-installed --report` (pip ≥ 22.2), so
//     markers and wheel tags are those of the interpreter that will run the
//     function. pyarrow is always added (the runner needs it;
//     Config.RunnerRequirements). The index is
//     PyPI, $PIP_INDEX_URL or Config.Index (an index URL, --find-links
//     folders, --no-index for air-gapped machines). Resolutions are cached
//     by (requirements, interpreter version, platform, index): a repeat
//     costs no resolver call. An unsatisfiable spec or an unknown package
//     fails with ErrInvalidArgument and the resolver's reason in one
//     paragraph.
//  2. installs each distribution once per machine into its own
//     content-addressed folder: wheels are unpacked directly (purelib and
//     platlib merged, scripts under bin/, headers and data skipped), sdists
//     are first built with `pip wheel --no-deps`; bytecode is compiled for
//     the interpreter (unchecked-hash pycs) and the folder is made
//     read-only. Installs run in parallel; a flock per package and an
//     atomic rename make concurrent requests, from goroutines or
//     processes, install it exactly once.
//  3. assembles an Environment: the interpreter (PythonFor's choice among
//     FindPythons: $LAKEHOUSE_PYTHON, Config.PythonDirs, pyenv versions,
//     python3.X on PATH; never a pyenv shim) plus the ordered list
//     of package folders, which launchers put on sys.path (process) or
//     mount read-only (containerd). The first folder is the lakehouse SDK
//     embedded in the binary (python.SDK), installed like any distribution
//     (pkgs/<hash>/ with lakehouse/ and its dist-info, hash = the SDK's
//     content and the cache tag), so functions import the real
//     lakehouse and lakehouse.expectations; environments of a Cache with
//     empty RunnerRequirements (tests of the cache's mechanics) omit it.
//     GC keeps this binary's SDK while any resolution remains.
//
// # Interpreters
//
// This package is the one place that finds Python interpreters.
// FindPythons lists them by name and runs nothing, so the planner can call
// it for every plan; PythonFor maps a requested version to one of them.
// The planner names that binary in the plan and a Cache runs (probes) the
// same one, so a plan never shows an interpreter the run does not use.
//
// # Layout
//
//	<data-dir>/envcache/
//	├── resolutions/<key>.json   a locked spec; mtime = last use
//	├── pkgs/
//	│   ├── <hash>/              one installed distribution, read-only,
//	│   │                        laid out like site-packages
//	│   ├── <hash>.json          its metadata, written last: the folder is
//	│   │                        installed iff this exists; mtime = last use;
//	│   │                        holds the folder's stamp
//	│   ├── <hash>.files         SHA-256 of the files its RECORD does not
//	│   │                        hash (RECORD itself) and of the bytecode
//	│   │                        (checked before RECORD: compileall
//	│   │                        rewrites a stale pyc a wheel ships)
//	│   └── <hash>.lock          flock held while installing, compiling,
//	│                            verifying or removing it
//	├── tools/uv-<version>/uv    the cache's own uv, read-only (uvtool.go)
//	├── interpreters/<key>.json  an interpreter's wheel tags, best first
//	│                            (key: binary, version, platform, pip)
//	└── tmp/                     installs in progress (renamed into pkgs/)
//
// <hash> is sha256(file sha256 | interpreter cache tag): the same wheel
// installed for two Python versions is two folders, because each holds
// bytecode for its interpreter.
//
// # Integrity
//
// A package folder and everything in it belong to the user that installed
// it (the lakehouse user) and have no write bits: folders 0555, files 0444
// (0555 when the wheel marks them executable). Functions never run as that
// user. Two checks catch a folder changed anyway (integrity.go,
// verify.go):
//
//   - Every environment checks each folder's stamp, a SHA-256 over every
//     entry's path, mode, size, inode, owner, modification and change
//     time, taken when the folder was sealed. A write, an append, a
//     chmod, an added or removed file all change a change time (which no
//     process can set back), so a tampered folder fails with a
//     DamageError telling to run `lakehouse env verify --fix`. It costs a
//     stat per file, no reads.
//   - `lakehouse env verify` (Verify) hashes every file and compares it
//     with the wheel's RECORD (sha256=<urlsafe base64, no padding>) or,
//     for what RECORD does not hash, the manifest <hash>.files written
//     when the folder was sealed (after install, and again after the
//     bytecode is compiled); it also reports added files and write bits.
//     --fix removes damaged packages (the next environment installs them
//     again) and renews the stamp of a folder whose content is intact.
//
// A folder of an older version (no stamp) is installed again when an
// environment needs it.
//
// # Garbage collection
//
// GC (`lakehouse env gc`) drops resolutions not used for OlderThan (default
// 30 days in the CLI), then removes packages that no remaining resolution
// uses and that were not used for OlderThan. A package is removed under its
// lock, metadata file first, so a concurrent install redoes it cleanly.
//
// # Resolvers
//
// uv (`uv pip compile --format pylock.toml`) by default: Config.UV,
// $LAKEHOUSE_UV or uv on PATH, else the cache's own uv, which it installs
// on first need (uvtool.go): the wheel of the pinned UVVersion for this
// machine's platform is found on the configured index's simple API,
// checked against the index's SHA-256, and only its binary is kept, in
// tools/uv-<version>/uv, read-only, stamped, installed once under a flock.
// When no uv can be had (offline, an index without uv) the cache resolves
// with pip and says so once in the debug log; Config.Resolver or
// $LAKEHOUSE_RESOLVER "pip" always does. Both resolve for the target
// interpreter, and the cache key does not depend on which one ran. While
// uv resolves, the newest platform wheel of each bare-name requirement
// (pandas, pyarrow) is installed speculatively (speculate.go); a guess the
// resolution does not use is an unused folder that gc removes.
//
// # Bytecode
//
// Installing a package means unpacking it; its bytecode is compiled
// afterwards in the background (one package at a time, at nice 19, after
// the installs in progress), so a new environment is usable as soon as its
// files are in place and the first run compiles what it imports in memory.
// Wait finishes the bytecode; Close abandons what has not started (the next
// Environment call queues it again). Config.SyncCompile compiles before an
// install counts as done.
//
// # Caveats
//
//   - While a package's bytecode is being compiled its folders are
//     writable by their owner for a moment. Containers mount them
//     read-only regardless; a process-launcher function running as the
//     same (non-root, or capability-less root) owner could write there in
//     that window. Environments assembled meanwhile skip the stamp check
//     of a folder whose lock is held (it is stamped again after). A
//     process killed while compiling leaves a folder whose stamp differs:
//     `env verify --fix` removes it.
//   - Assembling checks stamps, not content: a file changed and its times
//     set back by someone able to set the system clock passes until
//     `env verify`.
//   - File creation dominates a cold install: 0.2-0.9 ms of kernel time
//     per file on the test machine, whose ext4 has no journal, so that
//     every inode allocation skips (re-checking each, per allocation) the
//     inodes deleted in the last 60-360 s (ext4 recently_deleted(): 70% of
//     the kernel profile after a test run removed its temporary folders);
//     pandas or pyarrow are thousands of files. tmp/ carries the ext4
//     top-directory flag (chattr +T), so each install's folder lands in a
//     block group of its own, away from recent deletions: the install
//     phase of pandas+prophet (7,000 files) went from 4.4 s to 1.3 s.
//     Wheels are downloaded into memory (hashed while they arrive, no
//     temporary file to create and delete) and their members are written
//     by parallel goroutines into folders created once, each as soon as
//     it has arrived (stream.go): the install is trusted only once the
//     whole file has the index's hash and the members written are those
//     of its central directory.
//   - Packages that need their .data/data files installed under the prefix
//     (e.g. Jupyter extensions) do not get them.
//   - A distribution that is only available as a local folder (a path
//     requirement) is refused.
package envcache
