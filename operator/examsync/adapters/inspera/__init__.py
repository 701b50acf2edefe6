"""Inspera Assessment (direct or through the Gravitee gateway): the client."""
