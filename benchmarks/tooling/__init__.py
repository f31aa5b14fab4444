"""What only this repository's maintainers run, kept out of the installed package.

The README generator (:mod:`tooling.readme`), the peers runner and the workloads it runs in
each peer's own virtual environment (:mod:`tooling.peers`, :mod:`tooling.peer_workloads`)
and the Markdown table reader they share (:mod:`tooling.markdown_tables`). The scripts
``benchmarks/update_readme.py`` and ``benchmarks/peers/run.py`` put ``benchmarks/`` on
``sys.path`` and import from here; the suites users run stay in :mod:`splitlab.bench`.
"""
