"""`python -m groundctl`: the command line, as the `groundctl` script runs it."""

from groundctl.cli import main

if __name__ == "__main__":
    main()
