#!/usr/bin/env python3
"""Executes notebooks on the evcxr kernel and fails on the first cell that goes wrong.

    python scripts/run_notebooks.py [--inplace | --output-dir DIR] notebooks/X.ipynb ...

nbconvert exits 0 when a Rust cell panics or returns `Err` (evcxr reports both as stderr text,
not as errors), so this runner checks every executed cell itself: any `error` output or any
stderr stream fails the run, naming the notebook and the cell and printing what it said.
The `support` crate writes nothing to stderr in normal operation, so stderr means trouble.
evcxr relays the child process's stderr asynchronously: the text of an `Err` can arrive after
the cell has finished, and nbclient would drop it. So after each cell the runner keeps reading
the kernel's output channel until it has been quiet for a moment, and adds what belongs to that
cell before checking it.
Notebooks run one after another (they share the build folder notebooks/.evcxr_build).
"""
import argparse
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient


# The repository's own `rust` kernel (scripts/evcxr_kernel.py: a build folder per running kernel),
# registered by `playground.sh setup` in notebooks/.jupyter, goes first on the kernel search path.
LOCAL_KERNELS = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / ".jupyter"
if (LOCAL_KERNELS / "kernels" / "rust" / "kernel.json").exists():
    paths = os.environ.get("JUPYTER_PATH", "").split(os.pathsep)
    if str(LOCAL_KERNELS) not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(LOCAL_KERNELS)] + [p for p in paths if p])


class CellFailed(Exception):
    pass


def check_cell(cell, index):
    problems = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            problems.append(f"{out.get('ename')}: {out.get('evalue')}")
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            problems.append(out.get("text", ""))
    text = "".join(problems).strip()
    if text:
        src = "".join(cell.get("source", ""))
        raise CellFailed(f"cell {index} failed:\n--- source ---\n{src}\n--- stderr/error ---\n{text}")


async def drain_late_output(client, cell, msg_id, quiet=0.5, limit=3.0):
    """Collects stream output of `msg_id` that arrives after the cell's reply."""
    if msg_id is None or client.kc is None:
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            msg = await client.kc.get_iopub_msg(timeout=quiet)
        except Exception:  # queue.Empty: quiet long enough
            return
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("msg_type") != "stream":
            continue
        content = msg["content"]
        cell.setdefault("outputs", []).append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))


def run(path, dest, timeout):
    nb = nbformat.read(path, as_version=4)
    started = time.time()

    async def after_cell(cell, cell_index, execute_reply=None, **_):
        msg_id = (execute_reply or {}).get("parent_header", {}).get("msg_id")
        await drain_late_output(client, cell, msg_id)
        nbformat.write(nb, dest)  # progress survives an interrupted run and can be watched
        check_cell(cell, cell_index)

    client = NotebookClient(nb, timeout=timeout, kernel_name="rust", resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=after_cell)
    try:
        client.execute()
        ok, message = True, ""
    except CellFailed as e:
        ok, message = False, str(e)
    except Exception as e:  # kernel died, timeout, compile error (nbclient raises CellExecutionError)
        ok, message = False, f"{type(e).__name__}: {e}"
    nbformat.write(nb, dest)
    return ok, message, time.time() - started


def selftest(out_dir):
    """The runner must fail a notebook whose cell panics and one whose cell returns `Err`."""
    here = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    cases = {"panic": 'let v: Vec<u32> = Vec::new();\nprintln!("{}", v[3]);',
             "err": 'let r: Result<(), std::io::Error> = Err(std::io::Error::other("expected failure"));\nr?;'}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, src in cases.items():
        path = here / f".selftest_{name}.ipynb"
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('println!("before");'), nbformat.v4.new_code_cell(src),
                                             nbformat.v4.new_code_cell('println!("after");')])
        nbformat.write(nb, path)
        try:
            ok, message, _ = run(path, out_dir / path.name, 600)
        finally:
            path.unlink()
        if ok or "cell 1 failed" not in message:
            print(f"runner self-test FAILED: the {name} cell was not caught ({message!r})")
            sys.exit(1)
        print(f"runner self-test: a cell that {'panics' if name == 'panic' else 'returns Err'} fails the run, as it must")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--selftest":
        return selftest(pathlib.Path(sys.argv[2]))
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="+", type=pathlib.Path)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--inplace", action="store_true", help="write outputs back into the notebooks")
    g.add_argument("--output-dir", type=pathlib.Path, help="write executed copies here")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    args = ap.parse_args()
    failed = 0
    for path in args.notebooks:
        dest = path if args.inplace else args.output_dir / path.name
        if not args.inplace:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        print(f"executing {path} ...", flush=True)
        ok, message, secs = run(path, dest, args.timeout)
        print(f"{'ok  ' if ok else 'FAIL'} {path} ({secs:.0f} s) -> {dest}", flush=True)
        if not ok:
            failed += 1
            print(message, flush=True)
    print(f"notebooks: {len(args.notebooks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
