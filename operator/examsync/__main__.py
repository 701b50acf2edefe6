"""`python -m examsync`: the same entry point as the `examsync` command."""

from examsync.cli import main

if __name__ == "__main__":
    main()
