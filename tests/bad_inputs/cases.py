"""Every case of the table, from the one module per domain that holds them."""

from __future__ import annotations

import importlib
from dataclasses import replace

from tests.bad_inputs import Case

#: Module of tests.bad_inputs -> the domain its cases cover.
DOMAINS = {
    "core": "continual & streams",
    "class_incremental": "class-incremental",
    "tpp": "tpp",
    "recsys": "recsys",
    "memact": "memory-as-action",
    "avalanche": "avalanche",
}


def all_cases(only: str | None = None) -> list[Case]:
    """Every case (or those of the module ``only``), each marked with its domain; names are
    unique."""
    cases = []
    for module, domain in DOMAINS.items():
        if only is not None and module != only:
            continue
        found = importlib.import_module(f"tests.bad_inputs.{module}").CASES
        cases.extend(replace(case, domain=domain) for case in found)
    names = [case.name for case in cases]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"bad-input case names must be unique; repeated: {duplicated}")
    return cases
