"""`python -m bot` is the `klachtwijzer` command."""

from bot.root.cli import main

main()
