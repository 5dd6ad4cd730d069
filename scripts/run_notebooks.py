#!/usr/bin/env python3
"""Executes notebooks on the evcxr kernel and fails on the first cell that goes wrong.

    python scripts/run_notebooks.py [--inplace | --output-dir DIR] notebooks/X.ipynb ...

nbconvert exits 0 when a Rust cell panics or returns `Err` (evcxr reports both as stderr text,
not as errors), so this runner checks every executed cell itself: any `error` output or any
stderr stream fails the run, naming the notebook and the cell and printing what it said.
The `support` crate writes nothing to stderr in normal operation, so stderr means trouble.
Three more outputs fail a cell: a result that is the text `Figure(640x440)` (a figure that was not
displayed as an image), a bare `()` result (a cell ending in a loop or a call without `;`, which
JupyterLab shows as `Out[n]: ()`), and an absolute path of this machine (the repository, the home folder, the
temporary folder) in any text output: committed outputs must not carry the machine they ran on.
After each cell the runner merges consecutive stream outputs (evcxr sends a message per line:
one output per `println!`) and gives a result the cell's own execution count (evcxr numbers it
one higher, so JupyterLab showed Out[n+1] beside In[n]).
evcxr relays the child process's stderr asynchronously: the text of an `Err` can arrive after
the cell has finished, and nbclient would drop it. So after each cell the runner keeps reading
the kernel's output channel until it has been quiet for a moment, and adds what belongs to that
cell before checking it.
Notebooks run one after another (they share the build folder notebooks/.evcxr_build).
"""
import argparse
import os
import pathlib
import re
import sys
import tempfile
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


FIGURE_TEXT = re.compile(r"^Figure\(\d+x\d+\)$")


def machine_paths():
    """Regexes of this machine's absolute paths that must not appear in an output."""
    repo = pathlib.Path(__file__).resolve().parent.parent
    folders = {str(repo), os.path.realpath(repo), os.path.expanduser("~"), tempfile.gettempdir(), "/tmp"}
    # A folder counts where it starts a path: not inside a longer word or a relative path.
    return [re.compile(r"(?<![\w.~$/-])" + re.escape(f.rstrip("/")) + r"(/|\b)") for f in folders if f not in ("", "/")]


MACHINE_PATHS = machine_paths()


def output_texts(out):
    if out.get("output_type") == "stream":
        yield out.get("text", "")
    for mime in ("text/plain", "text/markdown", "text/html"):
        value = out.get("data", {}).get(mime)
        if value:
            yield "".join(value) if isinstance(value, list) else value


def tidy_cell(cell):
    """Merges consecutive stream outputs of one name; gives results the cell's execution count."""
    merged = []
    for out in cell.get("outputs", []):
        prev = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None and prev.get("output_type") == "stream"
                and prev.get("name") == out.get("name")):
            prev["text"] = prev.get("text", "") + out.get("text", "")
        else:
            merged.append(out)
        if out.get("output_type") == "execute_result":
            out["execution_count"] = cell.get("execution_count")
    cell["outputs"] = merged


def check_cell(cell, index):
    problems = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            problems.append(f"{out.get('ename')}: {out.get('evalue')}")
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            problems.append(out.get("text", ""))
        data = out.get("data", {})
        plain = "".join(data.get("text/plain", "")).strip()
        if FIGURE_TEXT.match(plain) and "image/png" not in data:
            problems.append(f"the cell's result is the text `{plain}`, not an image: the figure was not displayed\n")
        if plain == "()" and out.get("output_type") == "execute_result":
            problems.append("the cell's result is a bare `()`: end its last statement with `;` or give it a value\n")
        for text in output_texts(out):
            for pattern in MACHINE_PATHS:
                m = pattern.search(text)
                if m:
                    line = next(l for l in text.splitlines() if pattern.search(l))
                    problems.append(f"an output shows this machine's path {m.group(0)!r}: {line.strip()}\n")
    text = "".join(problems).strip()
    if text:
        src = "".join(cell.get("source", ""))
        raise CellFailed(f"cell {index} failed:\n--- source ---\n{src}\n--- what went wrong ---\n{text}")


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
        tidy_cell(cell)
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


SELFTEST_CASES = {
    "panic": ("panics", 'let v: Vec<u32> = Vec::new();\nprintln!("{}", v[3]);'),
    "err": ("returns Err", 'let r: Result<(), std::io::Error> = Err(std::io::Error::other("expected failure"));\nr?;'),
    # A value whose Debug text is a figure's and that has no evcxr_display: the ImageNet cat's fate.
    "figure_text": ("shows `Figure(244x380)` as text", 'struct Figure;\nimpl std::fmt::Debug for Figure {\n'
                    '    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { write!(f, "Figure(244x380)") }\n}\n'
                    'Figure'),
    "unit": ("shows a bare `()`", 'for i in 0..2 {\n    println!("{i}");\n}'),
    "machine_path": ("prints this machine's path", 'println!("no checkpoint at {}", std::env::current_dir().unwrap().display());'),
}


def selftest(out_dir):
    """The runner must fail a notebook whose cell panics, returns `Err`, shows a figure as text or
    a bare `()`, or prints a machine path, and merge the streams of a passing one."""
    here = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    cases = {name: src for name, (_, src) in SELFTEST_CASES.items()}
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
        print(f"runner self-test: a cell that {SELFTEST_CASES[name][0]} fails the run, as it must")
    path = here / ".selftest_ok.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('for i in 0..3 { println!("line {i}"); }\n7 * 6')])
    nbformat.write(nb, path)
    try:
        ok, message, _ = run(path, out_dir / path.name, 600)
    finally:
        path.unlink()
    cell = nbformat.read(out_dir / path.name, as_version=4).cells[0]
    kinds = [o["output_type"] for o in cell.outputs]
    counts = {o.get("execution_count") for o in cell.outputs if o["output_type"] == "execute_result"}
    if not ok or kinds != ["stream", "execute_result"] or counts != {cell.execution_count}:
        print(f"runner self-test FAILED: a passing cell gave {kinds}, counts {counts} for cell {cell.execution_count} ({message!r})")
        sys.exit(1)
    print("runner self-test: three println! lines are one output, and the result has its cell's number")


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
