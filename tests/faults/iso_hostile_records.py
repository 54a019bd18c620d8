"""While its test runs, conv2d overwrites the records already written for earlier cases
with hostile data: JSON nested a million deep, a number with 100,000 digits, an .npy
whose header declares an array of exabytes, one of Python objects, one of strings, one
shorter than its header says, records of the wrong shape. Each must end as an error
for that case (the judge's reader refuses it), not as an exception out of the grader.
(The folder's name is spelled in pieces so that the integrity scan, which would zero
the notebook anyway, does not hide whether the reader copes.)"""
import json
import os

_OUT = os.path.join("." + "grade" + "kit", "out", "conv2d")  # the recordings folder


def _npy(name, descr, shape, data=b""):
    header = "{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    head = header.encode("latin1")
    head += b" " * (-(len(head) + 11) % 64) + b"\n"
    with open(os.path.join(_OUT, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + data)


def _tensor(name):
    return {"status": "ok", "value": {"__tensor__": name, "dtype": "torch.float64", "requires_grad": False},
            "ops": []}


_HOSTILE = [
    lambda: b"[" * 1000000 + b"]" * 1000000,
    lambda: b'{"status": "ok", "value": ' + b"9" * 100000 + b', "ops": []}',
    lambda: json.dumps(_tensor("gkhuge.npy")).encode(),
    lambda: json.dumps(_tensor("gkobj.npy")).encode(),
    lambda: json.dumps(_tensor("gkstr.npy")).encode(),
    lambda: json.dumps(_tensor("gkshort.npy")).encode(),
    lambda: json.dumps({"status": "ok", "value": {"__tuple__": 5}, "ops": "x"}).encode(),
    lambda: json.dumps({"status": "ok", "value": {"__dict__": [1, 2]}}).encode(),
    lambda: json.dumps({"status": "ok", "value": {"__nnmodule__": "Conv2d"}}).encode(),
    lambda: json.dumps([{"status": "ok"}]).encode(),
    lambda: b"\xff\xfe\x00not json",
]


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if os.path.isdir(_OUT):
        _npy("gkhuge.npy", "'<f8'", (10**6, 10**6, 10**6), b"\0" * 64)
        _npy("gkobj.npy", "'|O'", (2,), b"\0" * 64)
        _npy("gkstr.npy", "'<U8'", (2,), b"\0" * 64)
        _npy("gkshort.npy", "'<f8'", (1000, 1000), b"\0" * 64)
        done = sorted(int(n[:-5]) for n in os.listdir(_OUT) if n.endswith(".json") and n[:-5].isdigit())
        for i in done:
            with open(os.path.join(_OUT, f"{i}.json"), "wb") as f:
                f.write(_HOSTILE[i % len(_HOSTILE)]())
    return x * 2
