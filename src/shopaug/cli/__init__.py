"""The ``shopaug`` command line: thin wrappers that parse options, show progress and print tables.

Work happens in the stage packages; a module here only wires one stage to the terminal. Importing
the modules below registers their commands on :data:`app`.
"""

from shopaug.cli import (  # noqa: F401  (registers commands)
    augment,
    bench,
    data,
    demo,
    doctor,
    evaluate,
    llm,
    models,
    run,
    search,
    serve,
    tune,
)
from shopaug.cli.app import app

__all__ = ["app"]
