"""Offline training of the join model shipped in ``models/artifacts``."""
