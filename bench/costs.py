"""Measure every gradient source's cost in forward-pass equivalents and write the table gradsel ships
(gradsel_cli/sources/costs.json), which the cost ledger and --budget read. Run it on an idle machine after a
kernel changes what a source costs, or after adding a source; `gradsel bench --costs` then compares a fresh
measurement with the table. Documentation and maintenance, not a test.

    python bench/costs.py                      # the grid H = 20, 50, 100 x B = 1, 8, 32
    python bench/costs.py --hidden 20,50,100,200 --batch 1,8,32,100
"""

import argparse
import json
import sys

from gradsel_cli.numerics.benchmark import cost_table
from gradsel_cli.sources import costs


def sizes(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=sizes, default=[20, 50, 100])
    parser.add_argument("--batch", type=sizes, default=[1, 8, 32])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    table = cost_table(args.hidden, args.batch, args.repeat, progress=lambda d, t, label: print(label, file=sys.stderr))
    costs.TABLE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {costs.TABLE} ({table['measured']})")


if __name__ == "__main__":
    main()
