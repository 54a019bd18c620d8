"""The kernel a notebook is graded in: ipykernel, with the grader's audit hook installed first.

The grader starts a sandboxed kernel as ``python -I -m gradekit.kernel --gradekit-channel=FD
-f CONNECTION_FILE``. Before ipykernel is imported, an audit hook (:class:`Sentinel`, which
Python gives no way to remove) is installed; it is armed once the kernel is initialised, before
the first cell runs. From then on it reports, on the pipe ``FD`` whose other end the grader
reads, the moments where code is made from data or reaches into the interpreter:

- ``pickle.find_class``: anything unpickled that names a global (a pickle of a bytes constant
  that runs code);
- ``marshal.loads`` outside the import system (a code object from bytes);
- ``exec``, ``compile``, ``code.__new__`` called by the notebook's own code (not by a library
  such as IPython, which runs the cells, or the import system);
- frame, garbage-collector and ``ctypes`` events called by the notebook's own code
  (``sys._getframe``, ``gc.get_objects``, ``object.__getattr__`` of code and frames...).

A report is written *in* the hook, before the event's action runs: code that comes from the
bytes being unpickled cannot stop the report about its own unpickling. The grader scores a
notebook with any report zero (an integrity finding, named in the feedback), and a channel that
closes while the kernel still runs cells is a finding too. The pipe only carries reports: a
kernel can add lines, never take one back.

Outside grading (a student's own JupyterLab) this module is not used.
"""
from __future__ import annotations

import json
import os
import sys

CHANNEL_FLAG = "--gradekit-channel="
#: Reports written at most (one finding is enough to score the notebook zero).
MAX_REPORTS = 20
#: Events reported when the notebook's own code raises them (see :func:`gradekit.trace.is_notebook_code`).
FROM_NOTEBOOK = ("exec", "compile", "code.__new__", "function.__new__", "sys._getframe", "sys._current_frames",
                 "sys.addaudithook", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                 "object.__getattr__", "object.__setattr__", "object.__delattr__", "ctypes.")


#: Events raised often by library code (decided by the cheap file-name claim first).
FREQUENT = ("object.__getattr__", "object.__setattr__", "object.__delattr__", "sys._getframe")
#: Attributes whose reading is reported (``object.__getattr__``): code and frame internals.
RESTRICTED = ("__code__", "f_", "tb_", "gi_", "cr_", "co_")


class Sentinel:
    """The audit hook: ``sentinel(event, args)``; reports to ``fd`` once :meth:`arm` ran."""

    def __init__(self, fd: int | None):
        self.fd = fd
        self.armed = False
        self.busy = False
        self.reports = 0

    def arm(self) -> None:
        self.armed = True
        self._write({"ready": True})

    def __call__(self, event: str, args) -> None:
        if not self.armed or self.busy or self.reports >= MAX_REPORTS:
            return
        if not (event in ("pickle.find_class", "marshal.loads", "marshal.load") or event.startswith(FROM_NOTEBOOK)):
            return
        self.busy = True
        try:
            what = self._finding(event, args)
            if what:
                self.reports += 1
                self._write({"finding": what})
        except Exception:  # noqa: BLE001  (a hook must never break the event)
            pass
        finally:
            self.busy = False

    @staticmethod
    def _caller():
        frame = sys._getframe(3)  # _caller <- _finding <- __call__ <- the code that raised the event
        return frame

    def _finding(self, event: str, args) -> str | None:
        from .trace import genuine, is_notebook_code

        caller = self._caller()
        frequent = event.startswith(FREQUENT)
        if frequent and (caller is None or not is_notebook_code(caller.f_code)):
            # Frequent events (frames, attributes: every profiled call reads a frame's f_code):
            # decided first, by the file name's claim (cheap); code that lies about its file was
            # made by compile or exec, which are checked against the library's own code below.
            return None
        if event == "object.__getattr__" and len(args) > 1 and not str(args[1]).startswith(RESTRICTED):
            return None
        where = f" (line {caller.f_lineno} of a notebook cell)" if caller is not None \
            and not genuine(caller.f_code) else ""
        if event == "pickle.find_class":
            return f"unpickles {_short(args[0])}.{_short(args[1])}: code run from bytes{where}"
        if event.startswith("marshal."):
            if caller is not None and caller.f_code.co_filename.startswith("<frozen importlib") \
                    and genuine(caller.f_code):
                return None
            return f"loads a code object with marshal{where}"
        if event in ("exec", "compile"):
            if args and (_timing_template(args[0]) if event == "compile" else _timing_code(args[0])):
                return None
            caller = _past_evaluators(caller)
            if caller is None or genuine(caller.f_code):
                return None
        elif not frequent and (caller is None or not is_notebook_code(caller.f_code)):
            return None
        detail = f" {_short(args[1])}" if event.startswith("object.") and len(args) > 1 else ""
        return f"{event}{detail}: code made from data, or reaching into the interpreter{where}"

    def _write(self, message: dict) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, (json.dumps(message) + "\n").encode()[:2000])
        except OSError:
            self.fd = None


#: Standard-library modules that compile or run code given to them as text: an ``exec`` or
#: ``compile`` they raise is decided by who called them.
EVALUATORS = ("timeit", "codeop", "runpy", "code", "doctest", "pdb", "bdb", "profile", "cProfile", "trace",
              "typing", "inspect", "rlcompleter", "pydoc", "functools", "contextlib")


def _past_evaluators(frame):
    """The first frame, walking up from ``frame``, that is not a (genuine) :data:`EVALUATORS` module's."""
    from .trace import genuine

    for _ in range(16):
        if frame is None or not (str(frame.f_globals.get("__name__")).split(".")[0] in EVALUATORS
                                 and genuine(frame.f_code)):
            return frame
        frame = frame.f_back
    return frame


def _timing_sources() -> list[str]:
    """What ``timeit`` compiles to time a callable (``timeit.timeit(lambda: f(x))``): its template
    around ``_stmt()``, and the default set-up ``"pass"``; no text of the notebook's in them."""
    import timeit

    return ["pass"] + [timeit.template.format(stmt="_stmt()", setup=setup, init=init)
                       for setup, init in (("pass", ", _stmt=_stmt"), ("_setup()", ", _setup=_setup, _stmt=_stmt"))]


def _timing_template(source) -> bool:
    if isinstance(source, bytes):
        source = source.decode("utf-8", "replace")
    return isinstance(source, str) and source in _timing_sources()


def _timing_code(code) -> bool:
    """A code object ``timeit`` compiled from one of :func:`_timing_sources`."""
    from .trace import code_signatures

    if getattr(code, "co_filename", None) != "<timeit-src>":
        return False
    mine = code_signatures(code)
    return any(mine == code_signatures(compile(source, "<timeit-src>", "exec")) for source in _timing_sources())


def _short(value) -> str:
    try:
        return str(value)[:80]
    except Exception:  # noqa: BLE001
        return "?"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    fd = None
    for arg in list(argv):
        if arg.startswith(CHANNEL_FLAG):
            fd = int(arg[len(CHANNEL_FLAG):])
            argv.remove(arg)
    sentinel = Sentinel(fd)
    sys.addaudithook(sentinel)
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    from . import trace  # noqa: F401  (imported before arming: its paths are computed now)
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(argv)
    sentinel.arm()
    app.start()


if __name__ == "__main__":
    main()
