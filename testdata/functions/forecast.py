"""The "add a package and re-run" benchmark's function: it imports prophet
(a deep dependency tree) and reports its own import time."""
import time


def forecast():
    t0 = time.perf_counter()
    import prophet  # noqa: F401

    print("import_seconds=%.4f" % (time.perf_counter() - t0))
