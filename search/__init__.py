"""Mixture search: backends behind one propose/recommend interface, and the driver."""
