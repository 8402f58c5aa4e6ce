"""npdg's benchmark scripts, importable (``from benchmarks import accuracy``) for their tests.

Each script still runs as ``python benchmarks/<name>.py`` from the repository root and saves
its figures under ``benchmarks/results/``. Library logic lives in ``npdg`` (the studies in
:mod:`npdg.apis.studies`, the bookkeeping in :mod:`npdg.apis.report`); a script only wires
one measurement to them.
"""
