"""`python -m pydb` runs the pydb command line."""

from pydb.cli import main

main()
