"""The ground station's own hardware: antenna rotators and radios, driven through Hamlib's
network daemons (`rotctld`, `rigctld`), and the tracking that points and tunes them."""
