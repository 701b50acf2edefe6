"""Slack incoming webhook (notifications): the client."""
