"""Pins GIB gibibytes of memory with mlock for SECONDS seconds, so that a
store larger than the memory left for the page cache can be benchmarked
(docs/benchmarks.md, "A store larger than memory"). Needs CAP_IPC_LOCK or
a large enough `ulimit -l`. Usage: python3 benches/pin_memory.py GIB SECONDS;
end it early by its PID."""
import mmap, ctypes, sys, time
n = int(sys.argv[1]) << 30
m = mmap.mmap(-1, n)
libc = ctypes.CDLL(None, use_errno=True)
buf = (ctypes.c_char * n).from_buffer(m)
if libc.mlock(ctypes.c_void_p(ctypes.addressof(buf)), ctypes.c_size_t(n)) != 0:
    print("mlock failed", ctypes.get_errno(), flush=True); sys.exit(1)
print("pinned", sys.argv[1], "GiB", flush=True)
time.sleep(int(sys.argv[2]))
