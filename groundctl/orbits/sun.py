"""The Sun's position from the JPL DE421 ephemeris that skyfield-data ships (offline)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


@cache
def ephemeris() -> Any:
    """Open DE421 from skyfield-data's folder directly: no download, no expiry warnings."""
    # get_skyfield_data_path() warns about expired Earth-orientation files we do not use,
    # so locate the folder through the module rather than calling it.
    import skyfield_data
    from skyfield.jpllib import SpiceKernel
    from skyfield_data import get_skyfield_data_path

    del get_skyfield_data_path
    folder = Path(skyfield_data.__file__).parent / "data"
    return SpiceKernel(str(folder / "de421.bsp"))


def sun_gcrs_km(times: Any) -> NDArray[np.float64]:
    """Geocentric position of the Sun (km, GCRS), shape (3,) or (3, n) for Skyfield times."""
    eph = ephemeris()
    return np.asarray((eph["sun"] - eph["earth"]).at(times).position.km)
