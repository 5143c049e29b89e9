"""``python -m rce`` runs the command-line interface."""

from rce.cli import main

if __name__ == "__main__":
    main()
