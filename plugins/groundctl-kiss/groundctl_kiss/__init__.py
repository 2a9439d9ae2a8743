"""groundctl-kiss: a groundctl link adapter for KISS TNCs (such as Direwolf) over TCP.

Registered under the `groundctl.links` entry-point group as `kiss`. `ax25` and `kiss`
are the pure encoders and decoders the link is built from.
"""

from groundctl_kiss.ax25 import Address, Ax25Error, UiFrame, build_ui_frame, parse_ui_frame
from groundctl_kiss.kiss import KissDecoder, kiss_encode
from groundctl_kiss.link import KissLink

__all__ = [
    "Address",
    "Ax25Error",
    "KissDecoder",
    "KissLink",
    "UiFrame",
    "build_ui_frame",
    "kiss_encode",
    "parse_ui_frame",
]
