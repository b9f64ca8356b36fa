"""Mixture search: backends behind one propose/recommend interface, and the driver."""

from mixer.layout import check_layout

check_layout()  # fail loudly if another distribution owns this name
