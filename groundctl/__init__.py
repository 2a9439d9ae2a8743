"""groundctl: ground-segment mission operations for fleets of orbital compute nodes."""

__version__ = "0.1.0"
