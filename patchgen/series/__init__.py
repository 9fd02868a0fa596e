"""The generated patch series."""
