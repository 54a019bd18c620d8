"""The student's kernel in a bubblewrap sandbox, with limits and a watchdog.

:class:`~autograder.integration.execute.JudgedExecute` starts every notebook's kernel through
:class:`SandboxedKernelManager`, which prefixes the kernel command with ``prlimit`` and
``bwrap``. Inside the sandbox the kernel sees

- no network (``--unshare-net``: not even the host's loopback), its own pid, IPC and
  UTS namespaces, a fresh ``/proc`` and a minimal ``/dev``;
- read-only: ``/usr`` (and the ``/bin``, ``/lib*`` links), a few files of ``/etc``, the
  Python installation the grader runs from, and the packages the notebook imports
  from elsewhere (``gradekit``, ``coursedata``); the hidden checks (``autograder``)
  and the references (``solutions``) are hidden even where they are installed in the
  same environment;
- writable: its working directory, a sized ``tmpfs`` mounted over the path of the
  scratch copy of the submission folder and filled from it when the kernel starts
  (so whatever the notebook writes there is bounded and vanishes with the sandbox;
  the grader reads the recordings in ``.gradekit/out`` through
  ``/proc/<pid>/root``, :meth:`Sandbox.view`, from a tmpfs of their own), with the
  judge's ``.gradekit/cases`` bound read-only inside it; small ``tmpfs`` mounts for ``/tmp`` (``$HOME`` lives
  there) and ``/dev/shm``; and the folder of the kernel's unix sockets (only while
  the kernel starts, when the grader is root: :meth:`Sandbox.seal_rundir`).
  Nothing else: not the course folder, the gradebook, the exchange, other students'
  submissions or the grader's temporary files;
- only the notebook's cells run as the student's code: the kernel's Python starts
  isolated (``python -I``: no current folder on ``sys.path``, no ``PYTHON*``
  variables, no user site, so nothing in the working folder can shadow a module or
  run as ``sitecustomize``), see :func:`isolate_python`;
- a minimal environment (nothing tells grading from practice: no ``NBGRADER_*``);
- limits: ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_AS`` (per process
  address space; off when a GPU is bound, CUDA reserves far more than it uses),
  ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, no core dumps; and, from a watchdog thread in
  the grader, the total memory (proportional set size) of all processes in the
  sandbox and the notebook's wall time: past either, the whole sandbox is killed and
  the grader records why ("out of memory", "timeout").

When the grader runs as root, ``bwrap`` runs without a user namespace and the kernel
is started through ``setpriv`` as an unprivileged uid with no capabilities and
``no_new_privs`` (``RLIMIT_NPROC`` is ignored for uid 0, including uid 0 mapped
through a user namespace, so the uid matters). Each concurrently graded notebook
gets its own uid from a range, so one student's fork bomb does not eat another's
process budget. A grader that is not root uses an unprivileged user namespace
(``--unshare-user``; the kernel keeps the grader's uid).

Every process the kernel starts lives in the sandbox's pid namespace, so it ends
with the kernel (``--die-with-parent``; :meth:`Sandbox.close` kills what is left and
checks that nothing survived).

GPUs: with ``gpu="auto"`` and ``/dev/nvidia<N>`` present, the notebook waits for a
free GPU (a ``flock`` per device in ``lock_dir``, so one notebook per GPU at a time,
across grading processes), and the sandbox gets that device node plus the control
nodes (``nvidiactl``, ``nvidia-uvm``...) and a read-only ``/sys``.

Debian/Ubuntu packages: ``bubblewrap`` (``bwrap``), and ``util-linux`` (``prlimit``,
``setpriv``; essential, always installed).

The modules: :mod:`.core` (:class:`~.core.Sandbox`, one notebook's sandbox),
:mod:`.bubblewrap` (availability and the command line: ``prlimit``, ``bwrap``, the uid
drop), :mod:`.runtime` (the watchdog, the audit channel, killing and cleaning up),
:mod:`.kernel` (the Jupyter kernel manager and client), :mod:`.limits`, :mod:`.errors`,
:mod:`.processes` (``/proc``), :mod:`.locks` (uid slots and GPUs) and :mod:`.files` (what
is copied into the scratch folder, and removing it).
"""
