"""What one notebook's sandbox may use (memory, processes, files, time), and the units."""
from __future__ import annotations

from dataclasses import dataclass

GiB = 2**30
MiB = 2**20


@dataclass
class Limits:
    memory: int = 4 * GiB            #: total PSS of the sandbox's processes (watchdog)
    address_space: int | None = None  #: RLIMIT_AS per process; None: memory + 8 GiB; 0: off
    processes: int = 256             #: RLIMIT_NPROC (threads count too)
    file_size: int = 1 * GiB         #: RLIMIT_FSIZE
    open_files: int = 1024           #: RLIMIT_NOFILE
    tmp_size: int = 512 * MiB        #: size of the /tmp and /dev/shm tmpfs mounts
    work_size: int = 1 * GiB         #: what the notebook may write in its working folder (tmpfs)
    record_size: int = 272 * MiB     #: size of the tmpfs for one test cell's recordings (.gradekit/out)
    wall_time: float | None = 3600.0  #: seconds for the whole notebook (watchdog)
