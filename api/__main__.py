"""``python -m api`` is the ``switchboard`` command."""

from api.cli import main

main()
