"""Inspera Assessment (direct or through the Gravitee gateway): the client and its sandbox simulator."""
