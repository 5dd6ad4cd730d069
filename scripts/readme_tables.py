#!/usr/bin/env python3
"""Copies the results tables of the executed notebooks into README.md.

Each notebook's summary cell displays a Markdown table (support::viz::Table). README.md holds
    <!-- results: NOTEBOOK_NAME -->
    ...
    <!-- /results -->
and everything between the two markers is replaced by the first Markdown table shown after the
notebook's `# Summary` heading (or, without one, the last table it shows).
"""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def summary_table(nb_path):
    """The first table shown after the notebook's `# Summary` heading, else its last table."""
    nb = json.loads(nb_path.read_text())
    found, in_summary = None, False
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and "".join(cell["source"]).lstrip().startswith("# Summary"):
            in_summary, found = True, None
        for out in cell.get("outputs", []):
            md = out.get("data", {}).get("text/markdown")
            if md:
                found = "".join(md).strip()
                if in_summary:
                    return found
    return found


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    for m in re.finditer(r"<!-- results: (\S+) -->", text):
        name = m.group(1)
        table = summary_table(ROOT / "notebooks" / f"{name}.ipynb")
        if table is None:
            print(f"{name}: no table in the notebook's outputs (not executed yet?)")
            continue
        block = re.compile(rf"(<!-- results: {re.escape(name)} -->\n).*?(<!-- /results -->)", re.S)
        text = block.sub(lambda b: b.group(1) + table + "\n" + b.group(2), text)
        print(f"{name}: table copied into README.md")
    readme.write_text(text)


if __name__ == "__main__":
    main()
