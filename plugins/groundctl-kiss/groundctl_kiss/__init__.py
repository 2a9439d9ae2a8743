"""groundctl-kiss: a groundctl link adapter for KISS TNCs (such as Direwolf) over TCP,
and a recording format for KISS capture files.

Registered under the `groundctl.links` entry-point group as `kiss` (KissLink) and under
`groundctl.recordings` as `kiss` (KissRecording: .kss and .kiss files, opened as the link
opens a live stream). `ax25` and `kiss` are the pure encoders and decoders both use.
"""

from groundctl_kiss.ax25 import Address, Ax25Error, UiFrame, build_ui_frame, parse_ui_frame
from groundctl_kiss.kiss import KissDecoder, kiss_encode
from groundctl_kiss.link import KissLink
from groundctl_kiss.recording import KissRecording

__all__ = [
    "Address",
    "Ax25Error",
    "KissDecoder",
    "KissLink",
    "KissRecording",
    "UiFrame",
    "build_ui_frame",
    "kiss_encode",
    "parse_ui_frame",
]
