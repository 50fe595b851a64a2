"""Mappers as plain data: rebuild any ID mapper from its ``to_dict()``."""

from __future__ import annotations

from typing import Any

from recsys.graphhash import DoubleGraphHash, GraphHash
from recsys.mappers import DoubleHash, FrequencyHash, Full, IdMapper, ModuloHash

__all__ = ["mapper_from_dict"]


def mapper_from_dict(spec: dict[str, Any]) -> IdMapper:
    """Rebuild a mapper from :meth:`~recsys.mappers.IdMapper.to_dict` (arrays are shared).

    Examples
    --------
    >>> from recsys.mappers import DoubleHash
    >>> from recsys.mapper_specs import mapper_from_dict
    >>> mapper = DoubleHash(8, seed=3)
    >>> copy = mapper_from_dict(mapper.to_dict())
    >>> type(copy).__name__, bool((copy.rows(range(50)) == mapper.rows(range(50))).all())
    ('DoubleHash', True)
    """
    kind = spec.get("kind")
    if kind == "full":
        return Full(spec["n_ids"], spec["n_fallback"])
    if kind == "modulo":
        return ModuloHash(spec["n_rows"])
    if kind == "double":
        return DoubleHash(spec["n_rows"], spec["seed"])
    if kind == "frequency":
        return FrequencyHash(spec["n_rows"], spec["frequent"])
    if kind == "graphhash":
        return GraphHash(spec["labels"], spec["n_fallback"])
    if kind == "doublegraphhash":
        graph = mapper_from_dict(spec["graph"])
        return DoubleGraphHash(graph, spec["n_hash_rows"], spec["seed"])  # type: ignore[arg-type]
    raise ValueError(
        f"spec['kind'] must be one of 'full', 'modulo', 'double', 'frequency', 'graphhash', "
        f"'doublegraphhash', got {kind!r}"
    )
