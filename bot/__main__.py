"""`python -m bot` is the `klachtwijzer` command."""

from bot.cli import main

main()
