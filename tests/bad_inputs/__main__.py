"""Print the counts of the bad-input table by domain and outcome: ``python -m tests.bad_inputs``.

``--only MODULE`` runs one module's cases; ``--details`` lists every case that is not clear,
with what happened; ``--json PATH`` writes every case's outcome.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path

from continual.tables import format_table
from tests.bad_inputs import OUTCOMES, outcome
from tests.bad_inputs.cases import DOMAINS, all_cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=sorted(DOMAINS), help="one module's cases")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    results = []
    for case in all_cases(args.only):
        kind, detail = outcome(case)
        results.append(
            {"domain": case.domain, "case": case.name, "outcome": kind, "detail": detail}
        )
        if args.details and kind != "clear":
            print(f"[{kind}] {case.domain}: {case.name}\n    {detail[:300]}")
    counts = Counter((r["domain"], r["outcome"]) for r in results)
    domains = sorted({r["domain"] for r in results})
    rows = [
        [d, *(counts[d, o] for o in OUTCOMES), sum(counts[d, o] for o in OUTCOMES)] for d in domains
    ]
    rows.append(["all", *(sum(counts[d, o] for d in domains) for o in OUTCOMES), len(results)])
    print(format_table(["domain", *OUTCOMES, "cases"], rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
