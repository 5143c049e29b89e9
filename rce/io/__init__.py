"""Reading district exports: readers, layout presets, normalisers and canonical loaders.

Public entry points (the contract with ``rce.prepare``, ``rce.dosage`` and the CLI):

* :func:`read_table` -- any supported file as an all-text :class:`RawTable`;
* :func:`detect_layout` -- the preset a header belongs to, as a :class:`Layout`;
* :func:`load_roster`, :func:`load_assessments` -- canonical tables with per-file reports;
* :func:`usage_sources` -- how ``rce.dosage`` should read each usage export.
"""

from rce.io.load import (
    FileReport,
    LoadedTable,
    load_assessments,
    load_roster,
    usage_source_for,
    usage_sources,
)
from rce.io.presets import Layout, closest_presets, detect_layout
from rce.io.readers import RawTable, read_table, sniff

__all__ = [
    "FileReport",
    "Layout",
    "LoadedTable",
    "RawTable",
    "closest_presets",
    "detect_layout",
    "load_assessments",
    "load_roster",
    "read_table",
    "sniff",
    "usage_source_for",
    "usage_sources",
]
