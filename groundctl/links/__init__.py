"""Links: everything that opens a socket or an HTTP client.

`Link` is the contract every adapter implements (see `groundctl.links.base`); adapters are
found through the `groundctl.links` entry-point group (`groundctl.links.registry`).
`celestrak` is the CelesTrak GP client used by `groundctl tle fetch`.
"""

from groundctl.links.base import Link, LinkError, LinkOption, LinkState

__all__ = ["Link", "LinkError", "LinkOption", "LinkState"]
