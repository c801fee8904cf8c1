"""Benchmark of what a user hears: push-to-talk voice-to-voice latency over a varied corpus of recorded questions,
the streaming pipeline against a sequential design, and what each service adds on top of its bare library.

Run with ``make bench`` (``QUICK=1`` for a reduced run) or ``python -m bench`` from the frontend venv; it writes
``bench/results/latest.json`` and the generated part of ``docs/benchmarks.md``. Read in this order: ``run.py``
(the sections), ``corpus.py`` (the questions), ``turns.py`` (one turn, two ways), ``overhead.py`` (services vs
libraries, with ``bare_*.py`` run in each service's venv), ``report.py`` (the tables). ``processes.py`` starts the
services for the test suite too.
"""
