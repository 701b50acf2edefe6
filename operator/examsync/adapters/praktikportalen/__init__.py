"""Praktikportalen (DK): the source of internship supervisors."""
