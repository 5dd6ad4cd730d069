#!/usr/bin/env python3
"""The Rust kernel of this repository's notebooks: evcxr_jupyter in a build folder of its own.

evcxr compiles a notebook's code in a build folder; a folder that survives between kernels makes
a warm start take seconds instead of minutes, but two kernels building in one folder at the same
time overwrite each other's sources. So each kernel started through this script takes the first
free slot `notebooks/.evcxr_build/<n>` (a file lock held for the kernel's lifetime marks a slot as
taken) and runs evcxr there (EVCXR_TMPDIR). One notebook open at a time always reuses slot 0;
a second one open at the same time gets slot 1, which is cold the first time and warm after.

`bash scripts/playground.sh setup` registers this script as the `rust` kernel in a kernel folder
of the repository (notebooks/.jupyter), which `playground.sh lab` and the notebook runner put
first on JUPYTER_PATH; a JupyterLab started otherwise uses the plain evcxr kernel (its own
temporary build folder per kernel: every start is cold).

    evcxr_kernel.py --control_file CONNECTION_FILE     (what Jupyter runs)
    evcxr_kernel.py --which-slot                        (prints the folder it would take)
"""
import fcntl
import os
import pathlib
import shutil
import sys

SLOTS = 8
BUILD = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / ".evcxr_build"


def take_slot():
    """Locks the first free slot; returns (folder, open lock file). The lock lasts as long as the
    file stays open in this process or any process it becomes (exec keeps it: inheritable)."""
    for n in range(SLOTS):
        folder = BUILD / str(n)
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / ".kernel.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        os.set_inheritable(lock.fileno(), True)
        return folder, lock
    sys.exit(f"evcxr_kernel.py: all {SLOTS} build folders in {BUILD} are in use by running kernels; "
             "shut one down (Kernel > Shut Down Kernel) and start this one again")


def main():
    folder, lock = take_slot()
    if sys.argv[1:] == ["--which-slot"]:
        print(folder)
        return
    evcxr = shutil.which("evcxr_jupyter") or str(pathlib.Path.home() / ".cargo" / "bin" / "evcxr_jupyter")
    os.environ["EVCXR_TMPDIR"] = str(folder)
    # At every start evcxr_jupyter "updates" the kernel folder $JUPYTER_PATH/kernels/rust when
    # JUPYTER_PATH is set, which would replace this kernel's spec with its own: the kernel
    # itself does not need the variable.
    os.environ.pop("JUPYTER_PATH", None)
    print(f"evcxr kernel: build folder {folder}", file=sys.stderr, flush=True)
    os.execv(evcxr, [evcxr, *sys.argv[1:]])


if __name__ == "__main__":
    main()
