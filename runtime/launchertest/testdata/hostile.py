"""A hostile model (runtime/launchertest): every attack must fail.

attack() tries each one and prints a line per attack,
"ATTACK <name> blocked <reason>" or "ATTACK <name> SUCCEEDED", then returns
a table (imports, scratch and output must still work).
"""
import os
import socket
import sys


def _try(name, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is a block
        print("ATTACK %s blocked %s: %s" % (name, type(e).__name__, e), flush=True)
        return
    print("ATTACK %s SUCCEEDED" % name, flush=True)


def _read(path):
    with open(path, "rb") as f:
        f.read(1)


def _append(path):
    with open(path, "ab") as f:
        f.write(b"\n# pwned\n")


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(0)


def _chmod_and_write(folder, path):
    os.chmod(folder, 0o777)
    os.chmod(path, 0o666)
    _append(path)


def _see(pid):
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    if pid in pids:
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise PermissionError("pid %d is not visible (%d processes in /proc)" % (pid, len(pids)))
    # kill(0) succeeded: the process exists and could be signalled


def _signal(pid):
    os.kill(pid, 0)


def _connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.close()


def _listdir(path):
    if not os.listdir(path):
        raise FileNotFoundError("empty: " + path)


def _unshare():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _write_tmp():
    with open("/var/tmp/lakehouse-hostile-%d" % os.getpid(), "w") as f:
        f.write("x")


def attack(shadow, catalog, warehouse, package_dir, package_file, code_file, home, pid, port):
    import pandas  # noqa: F401 - imports must still work
    import pyarrow as pa

    _try("read_shadow", lambda: _read(shadow))
    _try("read_catalog", lambda: _read(catalog))
    _try("truncate_catalog", lambda: _truncate(catalog))
    _try("write_warehouse", lambda: _append(warehouse))
    _try("read_warehouse", lambda: _read(warehouse))
    _try("append_package", lambda: _append(package_file))
    _try("chmod_package", lambda: _chmod_and_write(package_dir, package_file))
    _try("write_code", lambda: _append(code_file))
    _try("list_home", lambda: _listdir(home))
    _try("write_var_tmp", _write_tmp)
    _try("see_processes", lambda: _see(pid))
    _try("signal_launcher", lambda: _signal(pid))
    _try("unshare", _unshare)
    _try("connect_loopback", lambda: _connect(port))
    with open(os.path.join(os.environ["TMPDIR"], "scratch.txt"), "w") as f:
        f.write("scratch works")
    return pa.table({"x": [1, 2, 3]})


def read_shadow():
    with open("/etc/shadow") as f:
        return f.read()


def daemon(marker):
    """Leaves a double-forked, setsid sleeper behind and returns."""
    import time

    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            os.close(r)
            os.write(w, marker.encode())
            os.close(w)
            time.sleep(3600)
        os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    print("daemon running:", os.read(r, 100).decode() == marker, flush=True)


def whoami():
    print(os.getuid(), os.getgid(), flush=True)
